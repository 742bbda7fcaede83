from django.urls import path

from webhooks.views import evolution_webhook

urlpatterns = [
    path("webhook/evolution", evolution_webhook, name="evolution_webhook_default"),
    path("webhook/evolution/<str:name>", evolution_webhook, name="evolution_webhook"),
    path(
        "webhook/evolution/<str:name>/<str:event>",
        evolution_webhook,
        name="evolution_webhook_event",
    ),
]
