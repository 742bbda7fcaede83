"""The send path: the parts of a reply, or a notice, sent through Evolution in order, each once.

Every send is recorded before the call (mark_part_sending). A part whose earlier send
has an unknown outcome (a timeout after the request went out, a crash) is looked for among the
chat's recent messages in Evolution first, and recorded as sent if it is there: Evolution takes
no idempotency key. Parts already sent are never sent again, so a failed part is retried alone.
One worker holds the chat's lease while it sends, so no other reply is sent between the parts.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from omnihub.db_threads import run_in_db_thread
from webhooks.conversations import pacing
from webhooks.conversations.leases import LeaseLostError
from webhooks.integrations.evolution import client as evolution
from webhooks.integrations.transport import HttpClient, OutboundError
from webhooks.models import Message, ReplyPart

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sender:
    worker_id: str
    client: HttpClient

    async def deliver(
        self, message: Message, parts: Sequence[ReplyPart], *, started: ReplyPart | None = None
    ) -> tuple[ReplyPart, str] | None:
        """Send `message`'s `parts` that are not sent yet, in order. The last one's send is not
        recorded but returned, with the id Evolution gave it, for the caller to record with the
        message's outcome in one transaction; None when every part was sent before.
        `started` is a part whose send was recorded just now, with the stored answer."""
        unsent = [part for part in parts if part.sent_at is None]
        for number, part in enumerate(unsent, start=1):
            sent_id = await self._send(message, part, fresh=part is started, of=len(parts))
            if number == len(unsent):
                return part, sent_id
            await run_in_db_thread(record_part_sent, part, sent_id, self.worker_id)
        return None

    async def _send(self, message: Message, part: ReplyPart, *, fresh: bool, of: int) -> str:
        base_url, api_key = evolution_server(message)
        if not fresh:
            if part.send_started_at is not None:
                found = await self._find(message, part, part.send_started_at, base_url, api_key)
                if found is not None:
                    logger.warning(
                        "message %s: its %s (part %d) reached Evolution; not sent again",
                        message.pk, part.label, part.position + 1,
                    )  # fmt: skip
                    return found
            await run_in_db_thread(mark_part_sending, part, self.worker_id)
        tenant = message.instance
        delay_ms = pacing.typing_delay_ms(part.text, ms_per_char=tenant.typing_ms_per_char)
        try:
            return await evolution.send_text(
                self.client,
                base_url=base_url,
                api_key=api_key,
                instance=tenant.whatsapp_instance,
                number=message.reply_to,
                text=part.text,
                delay_ms=delay_ms,
                # Evolution waits out the delay before it sends, and only then answers.
                deadline=settings.EVOLUTION_TIMEOUT + delay_ms / 1000,
            )
        except OutboundError as error:
            await run_in_db_thread(
                record_part_failure, part, str(error), self.worker_id,
                maybe_delivered=error.maybe_delivered,
            )  # fmt: skip
            where = f" at part {part.position + 1} of {of}" if of > 1 else ""
            raise OutboundError(
                f"sending the {part.label} failed{where}: {error}",
                retryable=error.retryable,
                status_code=error.status_code,
                maybe_delivered=error.maybe_delivered,
            ) from None

    async def _find(
        self, message: Message, part: ReplyPart, since: datetime, base_url: str, api_key: str
    ) -> str | None:
        known = await run_in_db_thread(_sent_ids_since, message.conversation_id, since)
        return await evolution.find_sent_text(
            self.client,
            base_url=base_url,
            api_key=api_key,
            instance=message.instance.whatsapp_instance,
            remote_jid=message.chat_jid,
            text=part.text,
            since=since,
            not_ids=known,
            deadline=settings.EVOLUTION_TIMEOUT,
        )


def evolution_server(message: Message) -> tuple[str, str]:
    """The Evolution server and key that answer this message's tenant: its own, or the one its
    webhook named if intake found it trusted (webhooks.inbound.relay); never any other."""
    tenant = message.instance
    if tenant.evolution_url:
        return tenant.evolution_url, tenant.evolution_key
    if not message.reply_evolution_url:
        raise OutboundError(
            "no trusted Evolution server is known for this message: give the tenant an "
            "Evolution URL, or list the webhook's server in EVOLUTION_TRUSTED_SERVERS",
            retryable=False,
        )
    return message.reply_evolution_url, message.reply_evolution_key


def _sent_ids_since(conversation_id: int, since: datetime) -> set[str]:
    """The ids of the chat's parts recorded as sent around `since` or later: a lookup must not
    take one of them (an earlier part with the same words) for the part it looks for."""
    earliest = since - timedelta(seconds=evolution.CLOCK_SLACK_SECONDS)
    return set(
        ReplyPart.objects.filter(message__conversation_id=conversation_id, sent_at__gte=earliest)
        .exclude(whatsapp_id="")
        .values_list("whatsapp_id", flat=True)
    )


# What is recorded of each part's send, by its chat's lease holder only.


def mark_part_sending(part: ReplyPart, worker_id: str) -> None:
    """Recorded before each send: if its outcome is never learnt (a crash, a timeout after the
    request went out), the next try looks for the part in Evolution before sending it again."""
    _write_part(part, worker_id, send_started_at=timezone.now(), attempts=part.attempts + 1)


def record_part_sent(part: ReplyPart, whatsapp_id: str, worker_id: str) -> None:
    _write_part(part, worker_id, sent_at=timezone.now(), whatsapp_id=whatsapp_id, last_error="")


def record_part_failure(
    part: ReplyPart, error: str, worker_id: str, *, maybe_delivered: bool
) -> None:
    """A send that failed: when it surely reached no one, the next try sends it without
    looking for it first."""
    changes: dict[str, Any] = {"last_error": error}
    if not maybe_delivered:
        changes["send_started_at"] = None
    _write_part(part, worker_id, **changes)


def _write_part(part: ReplyPart, worker_id: str, **changes: Any) -> None:
    held = ReplyPart.objects.filter(pk=part.pk, message__conversation__lease_owner=worker_id)
    if not held.update(**changes):
        raise LeaseLostError(part.message.conversation_id)
    for name, value in changes.items():
        setattr(part, name, value)
