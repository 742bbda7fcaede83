"""Answering messages: one worker per conversation at a time, each message asked of the agent
once and its answer sent once, with retries that survive restarts."""

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from webhooks import agents, evolution
from webhooks.leases import is_held, locked_lease
from webhooks.models import Conversation, Message
from webhooks.tasks import process_conversation, queue_conversation

logger = logging.getLogger(__name__)

MEDIA_KINDS = frozenset({"image", "video", "document", "audio"})


def answer_conversation(conversation_id: int, *, worker_id: str) -> int:
    """Answer the conversation's pending messages in arrival order; returns how many were done.

    Stops at a message that must wait for a retry: the messages behind it wait too, so the
    agent never sees a chat out of order.
    """
    done = 0
    while (message := _claim_next_message(conversation_id, worker_id)) is not None:
        _answer(message)
        done += 1
        if message.status in Message.PENDING:
            _release_until_retry(message, worker_id)
            break
    return done


def recover_expired_leases() -> int:
    """Requeue conversations whose worker died (kill -9, lost machine): those whose lease expired,
    and those whose task was taken but whose lease was never set, as a worker killed between the
    two leaves them."""
    now = timezone.now()
    expired = Conversation.objects.filter(leased_until__lt=now).values_list("pk", flat=True)
    recovered = 0
    for conversation_id in list(expired[:1000]):
        with transaction.atomic():
            # Conditional, so only one of several workers sweeping at once requeues it.
            taken = Conversation.objects.filter(pk=conversation_id, leased_until__lt=now).update(
                lease_owner="", leased_until=None
            )
            if taken:
                queue_conversation(conversation_id)
                recovered += 1
    recovered += _recover_abandoned_tasks(now)
    if recovered:
        logger.warning("requeued %d conversations whose worker stopped", recovered)
    return recovered


def _recover_abandoned_tasks(now: datetime) -> int:
    # A task older than the shortest possible lease whose conversation holds no lease has lost
    # its worker: a live one leases its conversation within milliseconds of taking the task.
    cutoff = now - timedelta(seconds=1 + settings.EVOLUTION_TIMEOUT + settings.LEASE_MARGIN)
    stale = DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING,
        task_path=process_conversation.module_path,
        started_at__lt=cutoff,
    )
    recovered = 0
    for task_id, arguments in list(stale.values_list("id", "args_kwargs")[:1000]):
        conversation_id = arguments["args"][0]
        with transaction.atomic():
            held = Conversation.objects.filter(pk=conversation_id, leased_until__gte=now).exists()
            if held:
                continue
            # Marked failed first and conditionally, so two sweepers never both requeue it.
            if DBTaskResult.objects.filter(id=task_id, status=TaskResultStatus.RUNNING).update(
                status=TaskResultStatus.FAILED, finished_at=now
            ):
                queue_conversation(conversation_id)
                recovered += 1
    return recovered


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter, so a recovering agent is not hit by every retry at once."""
    ceiling = min(settings.RETRY_MAX_DELAY, settings.RETRY_BASE_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _claim_next_message(conversation_id: int, worker_id: str) -> Message | None:
    now = timezone.now()
    with transaction.atomic():
        lease = locked_lease(conversation_id)
        if lease is None:
            return None
        owner, leased_until = lease
        if owner != worker_id and is_held(owner, leased_until, now):
            # Its holder sees every message stored before it lets go: nothing is stranded.
            return None
        conversation = Conversation.objects.filter(pk=conversation_id)
        message = (
            Message.objects.filter(conversation_id=conversation_id, status__in=Message.PENDING)
            .select_related("instance")
            .defer("raw_payload")
            .order_by("id")
            .first()
        )
        if message is None or (message.next_attempt_at and message.next_attempt_at > now):
            # Nothing to do yet; a deferred task wakes the conversation for a waiting retry.
            if owner:
                conversation.update(lease_owner="", leased_until=None)
            return None
        conversation.update(lease_owner=worker_id, leased_until=now + _lease_length(message))
        # Counted at the claim, so a message that kills its worker still runs out of attempts.
        if message.attempts >= settings.MESSAGE_MAX_ATTEMPTS:
            message.status = Message.Status.FAILED
            message.last_error = message.last_error or "its worker stopped while answering it"
            message.save(update_fields=["status", "last_error", "updated_at"])
            return message
        message.status = Message.Status.PROCESSING
        message.attempts += 1
        message.next_attempt_at = None
        message.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    return message


def _lease_length(message: Message) -> timedelta:
    worst_case = message.instance.agent_timeout + settings.EVOLUTION_TIMEOUT
    return timedelta(seconds=worst_case + settings.LEASE_MARGIN)


def _release_until_retry(message: Message, worker_id: str) -> None:
    with transaction.atomic():
        Conversation.objects.filter(pk=message.conversation_id, lease_owner=worker_id).update(
            lease_owner="", leased_until=None
        )
        queue_conversation(message.conversation_id, run_after=message.next_attempt_at)


def _answer(message: Message) -> None:
    if message.status != Message.Status.PROCESSING:
        return
    try:
        if message.reply_text is None:
            _release_connection()
            if not _ask_agent(message):
                return
        _send_reply(message)
    except Exception as error:
        # A bug or a database hiccup: counted like any failed attempt, so it cannot loop forever.
        logger.exception("message %s: unexpected error", message.pk)
        _record_failure(message, f"unexpected error: {error!r}", retryable=True)


def _release_connection() -> None:
    """While the agent thinks (seconds, up to its timeout), a pooled Postgres connection goes
    back to the pool: the loops of a worker need not hold one each. SQLite keeps its own."""
    if not connection.in_atomic_block:
        close_old_connections()


def _ask_agent(message: Message) -> bool:
    instance = message.instance
    try:
        reply = agents.run_agent(
            base_url=instance.agent_api_url,
            api_key=instance.agent_api_key,
            agent=instance.default_agent,
            request=agent_request(message),
            timeout=instance.agent_timeout,
        )
    except agents.AgentError as error:
        _record_failure(message, str(error), retryable=error.retryable)
        return False
    # Stored before sending: a failed send is retried alone, never asking the agent again.
    message.reply_text = reply.text
    message.agent_latency_ms = reply.latency_ms
    message.agent_answered_at = timezone.now()
    message.save(
        update_fields=["reply_text", "agent_latency_ms", "agent_answered_at", "updated_at"]
    )
    return True


def agent_request(message: Message) -> agents.AgentRequest:
    instance = message.instance
    content = message.text
    if message.quoted_text:
        content = f'[In reply to: "{message.quoted_text}"]\n{content}'
    media = []
    if message.kind in MEDIA_KINDS and (message.media_base64 or message.media_url):
        media.append(
            agents.AgentMedia(
                mime_type=message.media_mimetype or "application/octet-stream",
                data=message.media_base64 or None,
                media_url=None if message.media_base64 else message.media_url,
                name=message.media_file_name,
                alt_text=message.text,
            )
        )
    # Without a phone number (a LID chat) the LID itself names the session.
    user_key = message.phone or message.reply_to.partition("@")[0]
    return agents.AgentRequest(
        message_content=content,
        message_type=message.kind if message.kind in MEDIA_KINDS else "text",
        session_name=f"{instance.session_id_prefix}{user_key}",
        phone_number=f"+{message.phone}" if message.phone else None,
        user_name=message.push_name,
        whatsapp_id=message.whatsapp_user_id,
        media=media,
    )


def _send_reply(message: Message) -> None:
    if message.reply_text:
        instance = message.instance
        base_url = instance.evolution_url or message.reply_evolution_url
        api_key = instance.evolution_key or message.reply_evolution_key
        if not base_url:
            _record_failure(
                message, "no Evolution server is known for this tenant", retryable=False
            )
            return
        try:
            evolution.send_text(
                base_url=base_url,
                api_key=api_key,
                instance=instance.whatsapp_instance,
                number=message.reply_to,
                text=message.reply_text,
                timeout=settings.EVOLUTION_TIMEOUT,
            )
        except evolution.EvolutionError as error:
            _record_failure(
                message, f"sending the reply failed: {error}", retryable=error.retryable
            )
            return
    message.status = Message.Status.ANSWERED
    message.answered_at = timezone.now()
    message.last_error = ""
    message.media_base64 = ""
    message.save(
        update_fields=[
            "status", "answered_at", "last_error", "media_base64", "updated_at",
        ]
    )  # fmt: skip
    logger.info("message %s answered", message.pk)


def _record_failure(message: Message, error: str, *, retryable: bool) -> None:
    message.last_error = error
    if retryable and message.attempts < settings.MESSAGE_MAX_ATTEMPTS:
        message.next_attempt_at = _later(retry_delay(message.attempts))
        logger.warning(
            "message %s attempt %d failed, retrying: %s", message.pk, message.attempts, error
        )
    else:
        message.status = Message.Status.FAILED
        message.next_attempt_at = None
        logger.error("message %s failed after %d attempts: %s", message.pk, message.attempts, error)
    message.save(update_fields=["last_error", "next_attempt_at", "status", "updated_at"])


def _later(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)
