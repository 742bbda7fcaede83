import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from instances import connection, services, tenant_fields
from instances.evolution_webhook import evolution_webhook_config, webhook_url
from instances.forms import InstanceConfigForm
from instances.message_log import MessageLog, counted_models, message_log_of
from instances.models import InstanceConfig, previous_secret_valid_until
from instances.tenant_fields import Access

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec  # django-stubs' type, not Django's

# The admin's own displays, beside the tenant fields of instances.tenant_fields.
_SHOWN_AFTER = {"webhook_secret": "evolution_webhook"}


def _fieldsets() -> "_FieldsetSpec":
    """One fieldset per group of instances.tenant_fields, in its order."""
    groups: dict[str, list[str]] = {}
    for field in tenant_fields.FIELDS:
        if field.is_column:
            names = groups.setdefault(field.group.value, [])
            names += [field.name, *filter(None, [_SHOWN_AFTER.get(field.name)])]
    return [(group, {"fields": tuple(names)}) for group, names in groups.items()]


READ_ONLY = [
    *(field.name for field in tenant_fields.FIELDS if field.access is Access.READ_ONLY),
    *_SHOWN_AFTER.values(),
]


@admin.register(InstanceConfig)
class InstanceConfigAdmin(admin.ModelAdmin[InstanceConfig]):
    form = InstanceConfigForm
    list_display = [
        "name", "whatsapp_instance", "default_agent", "is_default", "webhook_url",
        "webhook_authenticated", "webhook_rejections", "updated_at",
    ]  # fmt: skip
    search_fields = ["name", "whatsapp_instance", "default_agent", "agent_api_url"]
    list_filter = ["is_default", "require_webhook_auth", "default_agent"]
    ordering = ["name"]
    actions = ["make_default", "connect_to_evolution", "test_connection", "rotate_webhook_secret"]
    fieldsets = _fieldsets()

    def get_readonly_fields(
        self, request: HttpRequest, obj: InstanceConfig | None = None
    ) -> list[str]:
        # The name is in webhook URLs and services.update_instance refuses to change it.
        # The pin is cleared with `omnihub instance_clear_pin`, never typed in.
        if obj is None:
            return READ_ONLY
        return ["name", *READ_ONLY]

    @admin.display(description="Webhook URL (for Evolution)")
    def webhook_url(self, obj: InstanceConfig) -> str:
        # An input, read-only: one click selects the whole URL to copy, with no script.
        url = webhook_url(obj)
        return format_html(
            '<input type="text" readonly value="{}" size="{}" aria-label="Webhook URL of {}" '
            'class="webhook-url">',
            url,
            len(url),
            obj.name,
        )

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

    def get_deleted_objects(
        self, objs: Sequence[InstanceConfig] | QuerySet[InstanceConfig], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        """What the delete confirmation lists: each tenant with the size of its message log, and
        the counts. Django's own would load and list every message, of which there may be
        millions."""
        tenants = list(objs)
        logs = [message_log_of(InstanceConfig.objects.filter(pk=tenant.pk)) for tenant in tenants]
        lines = [
            f"Instance {tenant}, with its message log: {tenant_log}"
            for tenant, tenant_log in zip(tenants, logs, strict=True)
        ]
        log = MessageLog(
            messages=sum(each.messages for each in logs),
            conversations=sum(each.conversations for each in logs),
        )
        counts = {
            str(self.opts.verbose_name_plural): len(tenants),
            "messages": log.messages,
            "conversations": log.conversations,
        }
        return lines, counts, self._lacking_delete_permissions(request, log), []

    def _lacking_delete_permissions(self, request: HttpRequest, log: MessageLog) -> set[str]:
        """As Django's own confirmation: rows of the admin's models that the user may not
        delete keep the tenant from being deleted."""
        lacking = set()
        for model, count in counted_models(log):
            opts = model._meta
            permission = f"{opts.app_label}.{get_permission_codename('delete', opts)}"
            registered = self.admin_site.is_registered(model)
            if count and registered and not request.user.has_perm(permission):
                lacking.add(str(opts.verbose_name_plural))
        return lacking

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
