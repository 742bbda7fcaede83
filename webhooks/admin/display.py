"""How the admin shows times, texts and states, and what its read-only pages share."""

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from webhooks.models import Conversation, Message

EXCERPT_CHARS = 60
NOTHING = "—"


def to_the_second(moment: datetime | None) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i:s") if moment else NOTHING


def excerpt(text: str | None) -> str:
    return Truncator(text).chars(EXCERPT_CHARS) if text else NOTHING


def badge(state: str, label: str) -> SafeString:
    """A state in its colour (webhooks/static/webhooks/admin.css)."""
    return format_html('<span class="omnihub-badge omnihub-{}">{}</span>', state, label)


def status_badge(message: Message) -> SafeString:
    shown = badge(message.status, message.get_status_display())
    if message.status == Message.Status.RETRYING and message.next_attempt_at:
        when = to_the_second(message.next_attempt_at)
        return format_html("{}<br><small>next try {}</small>", shown, when)
    return shown


class ReadOnlyAdmin[M: Conversation | Message](admin.ModelAdmin[M]):
    """A log is read, not edited: no adding or changing rows by hand."""

    class Media:
        css = {"all": ["webhooks/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def page_context(self, obj: M) -> dict[str, Any]:
        """What a row's own page shows beside its fields."""
        return {}

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: M | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.page_context(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)
