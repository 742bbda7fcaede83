from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks.conversations.retries import MessageNotRetryableError, retry_message
from webhooks.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = ["received_at", "instance", "phone", "push_name", "kind", "status", "attempts"]
    list_filter = ["status", "kind", "instance"]
    search_fields = ["whatsapp_id", "phone", "push_name", "text"]
    list_select_related = ["instance"]
    date_hierarchy = "received_at"
    actions = ["retry_failed"]
    exclude = ["media_base64", "reply_evolution_key"]
    readonly_fields = [
        field.name
        for field in Message._meta.get_fields()
        if field.concrete and field.name not in ("media_base64", "reply_evolution_key")
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        # Read-only log: viewing is allowed, editing is not.
        return False

    @admin.action(description="Retry the selected failed messages")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        retried = 0
        for message in queryset:
            try:
                retry_message(message)
                retried += 1
            except MessageNotRetryableError as error:
                self.message_user(request, str(error), messages.WARNING)
        if retried:
            self.message_user(request, f"{retried} message(s) queued again.", messages.SUCCESS)
