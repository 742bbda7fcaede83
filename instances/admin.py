from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from instances import services
from instances.forms import InstanceConfigForm
from instances.models import InstanceConfig


@admin.register(InstanceConfig)
class InstanceConfigAdmin(admin.ModelAdmin[InstanceConfig]):
    form = InstanceConfigForm
    list_display = ["name", "whatsapp_instance", "default_agent", "is_default", "updated_at"]
    search_fields = ["name", "whatsapp_instance", "default_agent", "agent_api_url"]
    list_filter = ["is_default", "default_agent"]
    ordering = ["name"]
    actions = ["make_default"]
    fieldsets = [
        (None, {"fields": ["name", "is_default"]}),
        ("Evolution API", {"fields": ["evolution_url", "evolution_key", "whatsapp_instance"]}),
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
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_readonly_fields(
        self, request: HttpRequest, obj: InstanceConfig | None = None
    ) -> list[str]:
        # The name is in webhook URLs and services.update_instance refuses to change it.
        if obj is None:
            return ["created_at", "updated_at"]
        return ["name", "created_at", "updated_at"]

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
