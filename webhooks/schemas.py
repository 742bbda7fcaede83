from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import StrictInt

from webhooks.models import Message, MessageAttempt


class MessageOut(Schema):
    id: int
    instance: str
    whatsapp_id: str
    status: str
    chat_jid: str
    phone: str
    push_name: str
    kind: str
    text: str
    quoted_text: str
    media_mimetype: str
    media_size: int | None
    ignore_reason: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    reply_text: str | None
    reply_whatsapp_id: str
    retried_at: datetime | None
    agent_latency_ms: int | None
    received_at: datetime
    agent_answered_at: datetime | None
    answered_at: datetime | None
    updated_at: datetime

    @staticmethod
    def resolve_instance(obj: Message) -> str:
        return obj.instance.name


class AttemptOut(Schema):
    number: int
    stage: MessageAttempt.Stage
    result: MessageAttempt.Result
    started_at: datetime
    latency_ms: int
    error: str


class MessageDetailOut(MessageOut):
    raw_payload: dict[str, Any]
    # Every stage a worker finished, oldest first; kept across a person's retry.
    attempt_history: list[AttemptOut]

    @staticmethod
    def resolve_attempt_history(obj: Message) -> list[MessageAttempt]:
        return list(obj.attempt_log.all())


class ConversationOut(Schema):
    chat: str  # its WhatsApp JID
    contact_name: str
    last_message_at: datetime | None
    state: Literal["active", "paused"]
    paused_until: datetime | None  # None while active, or while paused until resumed
    paused_until_resumed: bool

    @staticmethod
    def resolve_paused_until(row: dict[str, Any]) -> datetime | None:
        ends_at: datetime | None = row["pause_ends_at"]
        return ends_at


class PauseIn(Schema):
    # None (or no body at all): paused until resumed.
    minutes: StrictInt | None = None
