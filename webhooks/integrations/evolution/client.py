"""Client of the Evolution API (the WhatsApp gateway): send a text, find one already sent, show
"typing…", and set up and check an instance's webhook and connection.

Every tenant-specific value (server, key, instance, deadline) is an argument; the shared client
(webhooks.integrations.transport) carries no cookies or credentials between tenants.
"""

# Reference: https://doc.evolution-api.com/v2/api-reference/message-controller/send-text
# Reference: https://doc.evolution-api.com/v2/api-reference/chat-controller/find-messages
# Reference: https://doc.evolution-api.com/v2/api-reference/chat-controller/send-presence
# Reference: https://doc.evolution-api.com/v2/api-reference/webhook/set
# Reference: https://doc.evolution-api.com/v2/api-reference/webhook/get
# Reference: https://doc.evolution-api.com/v2/api-reference/instance-controller/connection-state

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from webhooks.integrations.transport import (
    HttpClient,
    OutboundError,
    exchange_json,
    origin,
    raise_for_status,
)

SERVICE = "Evolution"
MAX_SEND_ANSWER_BYTES = 256 * 1024
MAX_SETUP_ANSWER_BYTES = 64 * 1024
MAX_PRESENCE_ANSWER_BYTES = 16 * 1024
# Records may carry media thumbnails as base64, hence more room than a send's answer.
MAX_FIND_ANSWER_BYTES = 4 * 1024 * 1024
# The newest messages we sent to the chat; a send whose outcome is unknown is among them.
FIND_PAGE_SIZE = 20
# Evolution stamps a message with its own clock, in whole seconds.
CLOCK_SLACK_SECONDS = 60
LICENSE_REQUIRED = "LICENSE_REQUIRED"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookOnFile:
    """The webhook an Evolution instance has configured (GET /webhook/find/{instance})."""

    url: str
    enabled: bool
    events: list[str]
    by_events: bool
    jwt_key: str = field(repr=False)  # the secret it signs with; "" when none


@dataclass(frozen=True, slots=True)
class _SentRecord:
    id: str
    text: str
    timestamp: float | None


async def send_text(
    client: HttpClient,
    *,
    base_url: str,
    api_key: str,
    instance: str,
    number: str,
    text: str,
    delay_ms: int = 0,
    deadline: float,
) -> str:
    """Send `text` to `number` and return the sent message's id ("" when Evolution gives none).

    Evolution looks the number up on WhatsApp first and, with `delay_ms`, shows "typing…" that
    long before it sends and answers: `deadline` must cover both (the worker passes its
    Evolution timeout plus the delay)."""
    body: dict[str, Any] = {"number": number, "text": text}
    if delay_ms > 0:
        body["delay"] = delay_ms
    data = await _call(
        client,
        f"{base_url}/message/sendText/{quote(instance, safe='')}",
        body=body,
        api_key=api_key,
        deadline=deadline,
        max_bytes=MAX_SEND_ANSWER_BYTES,
    )
    return _text(_field(_field(data, "key"), "id"))


async def find_sent_text(
    client: HttpClient,
    *,
    base_url: str,
    api_key: str,
    instance: str,
    remote_jid: str,
    text: str,
    since: datetime,
    not_ids: Collection[str] = (),
    deadline: float,
) -> str | None:
    """The id of a message we sent to `remote_jid` with exactly `text`, at `since` or later,
    and not one of `not_ids` (sends already accounted for, such as an earlier part with the
    same words), or None: for a send whose outcome is unknown. `since` must be timezone-aware.

    None also when Evolution keeps no messages (DATABASE_SAVE_DATA_NEW_MESSAGE off) or has not
    stored the send yet: it stores a message only once WhatsApp has taken it."""
    data = await _call(
        client,
        f"{base_url}/chat/findMessages/{quote(instance, safe='')}",
        # v2 pages with `page` and `offset` (the page size), v1 with `limit`; each ignores the
        # other's. Newest first in both.
        body={
            "where": {"key": {"remoteJid": remote_jid, "fromMe": True}},
            "page": 1,
            "offset": FIND_PAGE_SIZE,
            "limit": FIND_PAGE_SIZE,
        },
        api_key=api_key,
        deadline=deadline,
        max_bytes=MAX_FIND_ANSWER_BYTES,
    )
    earliest = since.timestamp() - CLOCK_SLACK_SECONDS
    for record in _records(data):
        # A record without a time could be an old reply with the same words ("Ok"): not it.
        if (
            record.text == text
            and record.timestamp is not None
            and record.timestamp >= earliest
            and record.id not in not_ids
        ):
            return record.id
    return None


async def send_presence(
    client: HttpClient,
    *,
    base_url: str,
    api_key: str,
    instance: str,
    number: str,
    delay_ms: int,
    deadline: float,
) -> None:
    """Show `number` that we are typing ("composing") for `delay_ms`. Evolution answers only
    once that time is over, then shows nothing: `deadline` must cover the delay (the worker
    passes its Evolution timeout plus the delay)."""
    await _call(
        client,
        f"{base_url}/chat/sendPresence/{quote(instance, safe='')}",
        body={"number": number, "presence": "composing", "delay": delay_ms},
        api_key=api_key,
        deadline=deadline,
        max_bytes=MAX_PRESENCE_ANSWER_BYTES,
    )


async def set_webhook(
    client: HttpClient,
    *,
    base_url: str,
    api_key: str,
    instance: str,
    webhook: dict[str, Any],
    deadline: float,
) -> None:
    """Replace the instance's webhook configuration with `webhook` (Evolution's `webhook`
    object: enabled, url, byEvents, base64, events, headers)."""
    await _call(
        client,
        f"{base_url}/webhook/set/{quote(instance, safe='')}",
        body={"webhook": webhook},
        api_key=api_key,
        deadline=deadline,
        max_bytes=MAX_SETUP_ANSWER_BYTES,
    )


async def find_webhook(
    client: HttpClient, *, base_url: str, api_key: str, instance: str, deadline: float
) -> WebhookOnFile | None:
    """The instance's webhook configuration, or None when it has none."""
    data = await _call(
        client,
        f"{base_url}/webhook/find/{quote(instance, safe='')}",
        body=None,
        api_key=api_key,
        deadline=deadline,
        max_bytes=MAX_SETUP_ANSWER_BYTES,
        method="GET",
    )
    if not isinstance(data, dict):
        return None
    events = _field(data, "events")
    headers = _field(data, "headers")
    return WebhookOnFile(
        url=_text(_field(data, "url")),
        enabled=_field(data, "enabled") is True,
        events=[event for event in events if isinstance(event, str)]
        if isinstance(events, list)
        else [],
        by_events=_field(data, "webhookByEvents") is True,
        jwt_key=_text(_field(headers, "jwt_key")),
    )


async def connection_state(
    client: HttpClient, *, base_url: str, api_key: str, instance: str, deadline: float
) -> str:
    """The instance's WhatsApp connection: "open", "connecting" or "close" ("" if unsaid)."""
    data = await _call(
        client,
        f"{base_url}/instance/connectionState/{quote(instance, safe='')}",
        body=None,
        api_key=api_key,
        deadline=deadline,
        max_bytes=MAX_SETUP_ANSWER_BYTES,
        method="GET",
    )
    return _text(_field(_field(data, "instance"), "state"))


async def _call(
    client: HttpClient,
    url: str,
    *,
    body: dict[str, Any] | None,
    api_key: str,
    deadline: float,
    max_bytes: int,
    method: str = "POST",
) -> Any:
    answer = await exchange_json(
        client,
        url,
        body=body,
        headers={"apikey": api_key},
        deadline=deadline,
        max_bytes=max_bytes,
        service=SERVICE,
        method=method,
    )
    if answer.status_code == 503 and (
        _field(answer.data, "code") == LICENSE_REQUIRED or LICENSE_REQUIRED in answer.text
    ):
        # Evolution 2.4+ until someone activates the server in its manager: no retry helps.
        raise OutboundError(
            f"Evolution at {origin(url)} refuses API calls until the server is activated "
            f"(503 {LICENSE_REQUIRED})",
            retryable=False,
            status_code=503,
        )
    raise_for_status(answer, url=url, service=SERVICE)
    return answer.data


def _records(data: Any) -> Iterator[_SentRecord]:
    """The records of a findMessages answer: v2 answers {"messages": {"records": [...]}},
    v1 a bare list. Anything unexpected is skipped rather than failing the search."""
    records = _field(_field(data, "messages"), "records") if isinstance(data, dict) else data
    if not isinstance(records, list):
        return
    for record in records:
        message = _field(record, "message")
        text = _field(message, "conversation") or _field(
            _field(message, "extendedTextMessage"), "text"
        )
        message_id = _text(_field(_field(record, "key"), "id"))
        if message_id and isinstance(text, str):
            yield _SentRecord(message_id, text, _seconds(_field(record, "messageTimestamp")))


def _seconds(value: Any) -> float | None:
    """A Unix time in seconds as Evolution stores it: a number, a numeric string, or a
    protobuf Long ({"low": ..., "high": ...}) from Baileys."""
    if isinstance(value, dict):
        low, high = _field(value, "low"), _field(value, "high")
        if isinstance(low, int) and isinstance(high, int):
            return float((high << 32) | (low & 0xFFFFFFFF))
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
