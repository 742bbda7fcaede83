"""Conversations: each chat with its state, and its thread as a person reads it."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from webhooks import selectors
from webhooks.admin.display import NOTHING, ReadOnlyAdmin, badge, excerpt, to_the_second
from webhooks.conversations.pausing import pause_conversation, resume_conversation
from webhooks.models import Conversation
from webhooks.selectors import ConversationState, ListedConversation

CONVERSATION_FIELDS = ("instance", "chat", "contact", "state_shown", "last_message_shown")


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(ConversationState.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin[Conversation]):
    list_display = ["chat", "instance", "contact", "last_message", "state_shown"]
    list_filter = [StateFilter, "instance"]
    search_fields = ["chat_jid", "instance__name"]
    list_per_page = 50
    change_form_template = "admin/webhooks/conversation/change_form.html"
    actions = ["pause_for_an_hour", "pause_until_resumed", "resume"]
    fields = readonly_fields = CONVERSATION_FIELDS

    def has_delete_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        # Its messages go with it: a conversation leaves the log only with its tenant.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return selectors.conversations(timezone.now())

    def page_context(self, obj: Conversation) -> dict[str, Any]:
        log = reverse("admin:webhooks_message_changelist")
        return {
            "thread": selectors.conversation_thread(obj.pk),
            "messages_url": f"{log}?conversation__id__exact={obj.pk}",
        }

    @admin.action(description="Pause the bot in the selected chats for an hour")
    def pause_for_an_hour(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            pause_conversation(conversation, 60)
        self.message_user(request, f"{len(queryset)} chat(s) paused for an hour.", messages.SUCCESS)

    @admin.action(description="Pause the bot in the selected chats until resumed")
    def pause_until_resumed(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            pause_conversation(conversation, None)
        self.message_user(
            request, f"{len(queryset)} chat(s) paused until resumed.", messages.SUCCESS
        )

    @admin.action(description="Resume the bot in the selected chats")
    def resume(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            resume_conversation(conversation)
        self.message_user(request, f"{len(queryset)} chat(s) resumed.", messages.SUCCESS)

    @admin.display(description="Chat", ordering="chat_jid")
    def chat(self, obj: Conversation) -> str:
        return str(obj)

    @admin.display(description="Contact")
    def contact(self, obj: ListedConversation) -> str:
        return obj.contact_name or NOTHING

    @admin.display(description="Last message", ordering="last_message_at")
    def last_message(self, obj: ListedConversation) -> SafeString:
        text = excerpt(obj.last_text)
        return format_html("{}<br><small>{}</small>", text, to_the_second(obj.last_message_at))

    @admin.display(description="Last message")
    def last_message_shown(self, obj: Conversation) -> str:
        return to_the_second(obj.last_message_at)

    @admin.display(description="State")
    def state_shown(self, obj: ListedConversation) -> SafeString:
        state = ConversationState(obj.state)
        label = state.label
        if state == ConversationState.PAUSED:
            until = obj.pause_ends_at
            label = f"{label} until {to_the_second(until)}" if until else f"{label}, until resumed"
        elif state == ConversationState.WAITING:
            label = f"{label} at {to_the_second(obj.ready_at)}"
        elif state == ConversationState.ANSWERING:
            label = f"{label} by {obj.lease_owner}"
        return badge(state, label)
