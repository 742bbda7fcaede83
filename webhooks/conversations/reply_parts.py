"""The parts a reply is sent in: made once, when the reply is stored (so a failed part is
retried alone, and never re-split differently), and read back for a retry."""

from collections import defaultdict
from datetime import datetime

from webhooks.conversations import pacing
from webhooks.models import Message, ReplyPart


def stored(carriers: list[Message]) -> dict[int, list[ReplyPart]]:
    """The parts each carrier's stored reply is sent as, by carrier. A canned reply, set at
    intake without parts (the web path stays one insert), gets them when first taken up."""
    replied = [message for message in carriers if message.reply_text]
    if not replied:
        return {}
    parts: dict[int, list[ReplyPart]] = defaultdict(list)
    for part in ReplyPart.objects.filter(message__in=replied, kind=ReplyPart.Kind.REPLY):
        parts[part.message_id].append(part)
    for message in replied:
        if not parts[message.pk]:
            assert message.reply_text is not None
            parts[message.pk] = _create_parts(message, message.reply_text)
    return parts


def _create_parts(
    message: Message, text: str, *, started_at: datetime | None = None
) -> list[ReplyPart]:
    """`text` as the parts it is sent in, to be stored; `started_at`: the first part's send
    begins then, recorded with them."""
    texts = pacing.reply_parts(text, split=message.instance.split_replies)
    return ReplyPart.objects.bulk_create(parts_of(message, texts, started_at=started_at))


def parts_of(
    message: Message, texts: list[str], *, started_at: datetime | None = None
) -> list[ReplyPart]:
    """Unsaved parts of `message`'s reply, one per text, in order."""
    return [
        ReplyPart(
            message=message,
            position=position,
            text=text,
            attempts=1 if started_at and position == 0 else 0,
            send_started_at=started_at if position == 0 else None,
        )
        for position, text in enumerate(texts)
    ]
