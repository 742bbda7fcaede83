from django.contrib import admin
from django.urls import include, path

from omnihub.api import api
from omnihub.health import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("health", health, name="health"),
    path("", include("webhooks.urls")),
]
