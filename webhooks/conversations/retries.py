"""When a message that failed is tried again: by the worker after a backoff, or by a person."""

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from webhooks.conversations import leases
from webhooks.models import Message

logger = logging.getLogger(__name__)


class MessageNotRetryableError(Exception):
    pass


RETRYABLE_BY_A_PERSON = (Message.Status.FAILED, Message.Status.RETRYING)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter, so a recovering agent is not hit by every retry at once."""
    ceiling = min(settings.RETRY_MAX_DELAY, settings.RETRY_BASE_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def next_attempt_at(message: Message, now: datetime) -> datetime | None:
    """When to try `message` again after a failure that may pass; None once its retry window
    (RETRY_WINDOW_SECONDS from arrival, or from a person's retry) is over.

    A window rather than a count of attempts: an outage of a few minutes must not use up the
    tries of every message that arrived during it."""
    since_retry = message.attempts - message.attempts_before_retry
    return next_try_at(attempts=since_retry, window_start=retry_window_start(message), now=now)


def next_try_at(*, attempts: int, window_start: datetime, now: datetime) -> datetime | None:
    """When to try again after `attempts` tries, or None once RETRY_WINDOW_SECONDS from
    `window_start` are over: the one backoff of messages and of the notices sent for them."""
    window_ends = window_start + timedelta(seconds=settings.RETRY_WINDOW_SECONDS)
    at = now + timedelta(seconds=retry_delay(max(attempts, 1)))
    return at if at <= window_ends else None


def retry_window_start(message: Message) -> datetime:
    return message.retried_at or message.received_at


def retry_message(message: Message) -> Message:
    """A person's retry of a failed message, or of one waiting for its next try: queued now,
    with a new retry window. Its attempts and their history are kept, so it shows every try. A
    message answered with others (debounce) is retried with them: their answer is one. An error
    reply not yet sent for it is dropped: the message is being tried again."""
    if message.status not in RETRYABLE_BY_A_PERSON:
        raise MessageNotRetryableError(
            f"message {message.pk} is {message.status}, not failed or retrying"
        )
    now = timezone.now()
    carrier_id = message.answered_with_id or message.pk
    with transaction.atomic():
        # The chat's row first, as in every transaction that writes a chat's messages: a
        # worker taking the chat up locks it, then its messages.
        leases.mark_ready(message.conversation_id, now=now, new_message=False)
        # Guarded: a worker may have taken a retrying message up since it was read.
        batch = Message.objects.filter(
            Q(pk=carrier_id) | Q(answered_with_id=carrier_id), status__in=RETRYABLE_BY_A_PERSON
        )
        queued = batch.update(
            status=Message.Status.RECEIVED,
            next_attempt_at=None,
            retried_at=now,
            attempts_before_retry=F("attempts"),
            notice_due_at=None,
            updated_at=now,
        )
        if not queued:
            raise MessageNotRetryableError(f"message {message.pk} is being answered already")
    message.refresh_from_db()
    logger.info("message %s queued again", message.pk)
    return message
