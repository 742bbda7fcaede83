from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from omnihub.api import api
from omnihub.health import health

admin.site.site_header = admin.site.site_title = admin.site.index_title = "Omnihub"
# The admin is the site: there is no other to view (its pages link the API docs instead).
admin.site.site_url = None
# Lists are wide (the message log has eight columns): the page is theirs, not a side menu's.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("health", health, name="health"),
    path("", include("webhooks.urls")),
]
