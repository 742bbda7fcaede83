"""The message log: what arrived, what became of it, and retrying it."""

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from webhooks import selectors
from webhooks.admin.display import NOTHING, ReadOnlyAdmin, excerpt, status_badge, to_the_second
from webhooks.conversations.retries import (
    RETRYABLE_BY_A_PERSON,
    MessageNotRetryableError,
    retry_message,
)
from webhooks.models import Message

WHAT_ARRIVED = (
    "instance", "conversation_link", "contact", "kind", "text", "quoted_text", "media_shown",
    "sent_at_shown", "received", "whatsapp_id",
)  # fmt: skip
WHAT_HAPPENED = (
    "status_shown", "attempts", "ignore_reason", "canned_reply", "last_error", "reply",
    "answered_with", "sent_parts", "reply_whatsapp_id", "agent_latency_ms", "answered", "retried",
    "attempt_history",
)  # fmt: skip


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin[Message]):
    list_display = [
        "received", "instance", "contact", "text_excerpt", "reply_excerpt", "error_excerpt",
        "status_shown", "attempts",
    ]  # fmt: skip
    list_display_links = ["received", "text_excerpt"]
    list_filter = ["status", "kind", "instance"]
    search_fields = ["phone", "push_name", "text", "whatsapp_id"]
    search_help_text = "Phone (written any way), name, text or WhatsApp message id."
    list_select_related = ["instance"]
    list_per_page = 50
    date_hierarchy = "received_at"
    actions = ["retry_failed"]
    change_form_template = "admin/webhooks/message/change_form.html"
    fieldsets = [
        ("What arrived", {"fields": WHAT_ARRIVED}),
        ("What happened", {"fields": WHAT_HAPPENED}),
        ("Raw payload", {"classes": ["collapse"], "fields": ("payload",)}),
    ]
    readonly_fields = (*WHAT_ARRIVED, *WHAT_HAPPENED, "payload")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        # The payload is read on the message's own page only.
        return (
            super()
            .get_queryset(request)
            .defer("media_base64", "reply_evolution_key", "raw_payload")
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if digits := selectors.phone_search_digits(search_term):
            found |= queryset.filter(phone__contains=digits)
        return found, may_have_duplicates

    def get_urls(self) -> list[URLPattern]:
        retry = self.admin_site.admin_view(require_POST(self.retry_view))
        own = [path("<int:message_id>/retry/", retry, name="webhooks_message_retry")]
        return own + super().get_urls()

    def page_context(self, obj: Message) -> dict[str, Any]:
        return {"can_retry": obj.status in RETRYABLE_BY_A_PERSON}

    def retry_view(self, request: HttpRequest, message_id: int) -> HttpResponse:
        message = self.get_object(request, str(message_id))
        if message is None:
            raise Http404(f"message {message_id} not found")
        if not self.has_view_permission(request, message):
            raise PermissionDenied
        if self._retry(request, message):
            self.message_user(request, f"Message {message.pk} queued again.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:webhooks_message_change", args=[message.pk]))

    @admin.action(description="Retry the selected failed or retrying messages")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        retried = sum(self._retry(request, message) for message in queryset)
        if retried:
            self.message_user(request, f"{retried} message(s) queued again.", messages.SUCCESS)

    def _retry(self, request: HttpRequest, message: Message) -> bool:
        try:
            retry_message(message)
        except MessageNotRetryableError as error:
            self.message_user(request, str(error), messages.WARNING)
            return False
        return True

    @admin.display(description="Received", ordering="received_at")
    def received(self, obj: Message) -> str:
        return to_the_second(obj.received_at)

    @admin.display(description="Sent at (WhatsApp's clock)")
    def sent_at_shown(self, obj: Message) -> str:
        return to_the_second(obj.sent_at)

    @admin.display(description="Answered")
    def answered(self, obj: Message) -> str:
        return to_the_second(obj.answered_at)

    @admin.display(description="Retried by a person")
    def retried(self, obj: Message) -> str:
        return to_the_second(obj.retried_at)

    @admin.display(description="Contact")
    def contact(self, obj: Message) -> SafeString:
        number = f"+{obj.phone}" if obj.phone else obj.chat_jid
        return format_html("{}<br><small>{}</small>", obj.push_name or NOTHING, number)

    @admin.display(description="Text")
    def text_excerpt(self, obj: Message) -> str:
        return excerpt(selectors.message_content(obj))

    @admin.display(description="Reply")
    def reply_excerpt(self, obj: Message) -> str:
        return "(nothing to send)" if obj.reply_text == "" else excerpt(obj.reply_text)

    @admin.display(description="Error")
    def error_excerpt(self, obj: Message) -> str:
        return excerpt(obj.last_error or obj.ignore_reason)

    @admin.display(description="Status", ordering="status")
    def status_shown(self, obj: Message) -> SafeString:
        return status_badge(obj)

    @admin.display(description="Reply")
    def reply(self, obj: Message) -> str:
        if obj.reply_text is None:
            return "The agent has not answered yet."
        return obj.reply_text or "The agent answered with nothing to send."

    @admin.display(description="Sent")
    def sent_parts(self, obj: Message) -> str:
        """Each WhatsApp message sent for it (the reply's parts, an error reply) and its fate."""
        parts = obj.parts.all()
        if not parts:
            return NOTHING
        return format_html_join(
            "\n",
            "<div>{} {}: {} <small>{}</small></div>",
            (
                (
                    part.label,
                    part.position + 1,
                    "sent " + to_the_second(part.sent_at) if part.sent_at else "not sent yet",
                    part.last_error,
                )
                for part in parts
            ),
        )

    @admin.display(description="Media")
    def media_shown(self, obj: Message) -> str:
        if not obj.media_mimetype:
            return NOTHING
        size = f"{obj.media_size:,} bytes" if obj.media_size is not None else "size unknown"
        described = ", ".join(filter(None, [obj.media_mimetype, obj.media_file_name, size]))
        return f"{described} {obj.media_url}".strip()

    @admin.display(description="Conversation")
    def conversation_link(self, obj: Message) -> SafeString:
        url = reverse("admin:webhooks_conversation_change", args=[obj.conversation_id])
        return format_html('<a href="{}">{}</a>', url, "The whole conversation")

    @admin.display(description="History")
    def attempt_history(self, obj: Message) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (a.number, a.get_stage_display(), a.get_result_display(),
                 to_the_second(a.started_at), f"{a.latency_ms} ms", a.error)
                for a in obj.attempt_log.all()
            ),
        )  # fmt: skip
        if not rows:
            return format_html("{}", "No attempt has finished yet.")
        return format_html(
            '<table class="omnihub-attempts"><thead><tr><th>Attempt</th><th>Stage</th>'
            "<th>Result</th><th>Started</th><th>Took</th><th>Error</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Webhook body (without its apikey and media)")
    def payload(self, obj: Message) -> SafeString:
        pretty = json.dumps(obj.raw_payload, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre class="omnihub-payload">{}</pre>', pretty)
