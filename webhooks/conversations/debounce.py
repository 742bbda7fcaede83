"""Debounce: a chat's messages that arrive close together get one answer.

People often write in bursts ("Hi" / "I ordered yesterday" / "it has not arrived"). With the
tenant's `debounce_seconds` set, the worker waits until the chat has been quiet that long, then
asks the agent once for every message that arrived meanwhile. Decided by the worker under the
conversation's row lock (webhooks.conversations.turns.begin_turns), so intake is unchanged and
a burst is taken up once, by one worker, however many share the database.
"""

from datetime import datetime, timedelta

from webhooks.models import Message

# One agent call takes at most this many messages; a longer burst is answered in several.
MAX_BATCH = 50


def batch_or_quiet_at(first: Message, *, now: datetime) -> list[Message] | datetime:
    """The messages to answer with `first`, the chat's next message, never taken up before:
    `first` alone when its tenant does not debounce, else with the chat's other messages not
    taken up yet, in arrival order; or, while the newest of them is younger than the window,
    the time the chat will have been quiet long enough."""
    seconds = first.instance.debounce_seconds
    if not seconds:
        return [first]
    fresh = Message.objects.filter(
        conversation_id=first.conversation_id,
        status=Message.Status.RECEIVED,
        attempts=0,
        pk__gt=first.pk,
    )
    newest = fresh.order_by("-pk").values_list("received_at", flat=True).first()
    quiet_at = (newest or first.received_at) + timedelta(seconds=seconds)
    if quiet_at > now:
        return quiet_at
    return [first, *fresh.defer("raw_payload").order_by("pk")[: MAX_BATCH - 1]]
