import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from instances import connection, services
from instances.evolution_webhook import evolution_webhook_config
from instances.forms import InstanceConfigForm
from instances.models import InstanceConfig, previous_secret_valid_until

# Shown on the tenant's page; the rotation's own page is the only one that shows the secret.
WEBHOOK_READONLY = [
    "evolution_webhook",
    "webhook_rejections",
    "webhook_last_rejected_at",
    "webhook_last_rejection",
    "webhook_secret_rotated_at",
]


@admin.register(InstanceConfig)
class InstanceConfigAdmin(admin.ModelAdmin[InstanceConfig]):
    form = InstanceConfigForm
    list_display = [
        "name", "whatsapp_instance", "default_agent", "is_default", "webhook_authenticated",
        "webhook_rejections", "updated_at",
    ]  # fmt: skip
    search_fields = ["name", "whatsapp_instance", "default_agent", "agent_api_url"]
    list_filter = ["is_default", "require_webhook_auth", "default_agent"]
    ordering = ["name"]
    actions = ["make_default", "connect_to_evolution", "test_connection", "rotate_webhook_secret"]
    fieldsets = [
        (None, {"fields": ["name", "is_default"]}),
        (
            "Evolution API",
            {
                "fields": [
                    "evolution_url",
                    "evolution_key",
                    "whatsapp_instance",
                    "pinned_evolution_origin",
                ]
            },
        ),
        (
            "Agent",
            {
                "fields": [
                    "agent_api_url",
                    "agent_api_key",
                    "default_agent",
                    "session_id_prefix",
                    "agent_timeout",
                ]
            },
        ),
        (
            "Webhook",
            {"fields": ["require_webhook_auth", "webhook_secret", *WEBHOOK_READONLY]},
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_readonly_fields(
        self, request: HttpRequest, obj: InstanceConfig | None = None
    ) -> list[str]:
        # The name is in webhook URLs and services.update_instance refuses to change it.
        # The pin is cleared with `omnihub instance_clear_pin`, never typed in.
        shown = ["pinned_evolution_origin", *WEBHOOK_READONLY, "created_at", "updated_at"]
        if obj is None:
            return shown
        return ["name", *shown]

    @admin.display(boolean=True, description="Webhook authenticated")
    def webhook_authenticated(self, obj: InstanceConfig) -> bool:
        # A tenant flagged False takes webhooks that prove nothing.
        return obj.require_webhook_auth

    @admin.display(description="Evolution webhook configuration")
    def evolution_webhook(self, obj: InstanceConfig) -> str:
        if obj._state.adding:
            return "Shown once the instance is saved."
        config = json.dumps(
            {"webhook": evolution_webhook_config(obj)}, indent=2, ensure_ascii=False
        )
        return format_html(
            "<pre>{}</pre>Give Evolution this configuration (POST /webhook/set/{}); the "
            'secret is shown only when rotated: use the action "Rotate webhook secret".',
            config,
            obj.whatsapp_instance,
        )

    def save_model(
        self, request: HttpRequest, obj: InstanceConfig, form: InstanceConfigForm, change: bool
    ) -> None:
        if change:
            # The form has already written every value onto obj, is_default too, which would
            # trip the one-default constraint; the service applies only the changes instead.
            obj.refresh_from_db()
            services.update_instance(obj, **form.service_changes())
            return
        created = services.create_instance(**form.service_fields())
        # The admin goes on to log and redirect with obj, so obj must become the saved row.
        obj.pk = created.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: InstanceConfig) -> None:
        services.delete_instance(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[InstanceConfig]) -> None:
        for instance in queryset:
            services.delete_instance(instance)

    @admin.action(description="Make the selected instance the default")
    def make_default(self, request: HttpRequest, queryset: QuerySet[InstanceConfig]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one instance.", messages.ERROR)
            return
        instance = services.set_default_instance(queryset.get())
        self.message_user(request, f"{instance} is now the default instance.", messages.SUCCESS)

    @admin.action(description="Rotate the webhook secret of the selected instance")
    def rotate_webhook_secret(
        self, request: HttpRequest, queryset: QuerySet[InstanceConfig]
    ) -> TemplateResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one instance.", messages.ERROR)
            return None
        instance = services.rotate_webhook_secret(queryset.get())
        # Rendered at once rather than put in a message, which would keep the secret in the
        # session or a cookie.
        context = {
            **self.admin_site.each_context(request),
            "title": f"New webhook secret for {instance}",
            "instance": instance,
            "opts": self.opts,
            "webhook_secret": instance.webhook_secret,
            "previous_valid_until": previous_secret_valid_until(instance.webhook_secret_rotated_at),
            "config": json.dumps(
                {"webhook": evolution_webhook_config(instance, reveal=True)},
                indent=2,
                ensure_ascii=False,
            ),
        }
        return TemplateResponse(
            request, "admin/instances/instanceconfig/webhook_secret.html", context
        )

    @admin.action(description="Connect to Evolution (set the webhook, require authentication)")
    def connect_to_evolution(
        self, request: HttpRequest, queryset: QuerySet[InstanceConfig]
    ) -> None:
        for instance in queryset:
            try:
                connection.connect_instance(instance)
            except (connection.ConnectionNotPossibleError, connection.EvolutionCallError) as error:
                self.message_user(request, f"{instance}: not connected: {error}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{instance}: Evolution's webhook now points here.", messages.SUCCESS
                )

    @admin.action(description="Test connection (Evolution, its webhook, the Agents API)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[InstanceConfig]) -> None:
        for instance in queryset:
            status = connection.connection_status(instance)
            for label, check in [
                ("Evolution", status.evolution),
                ("webhook", status.webhook),
                ("Agents API", status.agent),
            ]:
                level = messages.SUCCESS if check.ok else messages.ERROR
                self.message_user(request, f"{instance}: {label}: {check.message}", level)
