"""The history of a message's attempts: each stage a worker finished, with how it ended.

Written by the answering steps (webhooks.conversations.progress) when an attempt ends (answered,
failed, or withheld), in the transaction that records that on the message, so the history and
the message never disagree: the agent's stage with the send's, when the agent answered in that
attempt. An attempt a worker did not live to finish has no rows.
"""

from datetime import datetime

from django.utils import timezone

from webhooks.models import Message, MessageAttempt

Stage = MessageAttempt.Stage
Result = MessageAttempt.Result


def attempt_ended(
    message: Message, stage: MessageAttempt.Stage, result: MessageAttempt.Result, *, error: str = ""
) -> list[MessageAttempt]:
    """The rows of the message's current attempt, which ends now with `stage`'s `result`, not
    yet stored: the agent's answer first, when it came in this attempt and `stage` is the
    send."""
    rows = []
    if stage == Stage.SEND and agent_answered_in_attempt(message):
        rows.append(
            new_attempt(message, Stage.AGENT, Result.OK, latency_ms=message.agent_latency_ms)
        )
    rows.append(new_attempt(message, stage, result, error=error))
    return rows


def agent_answered_in_attempt(message: Message) -> bool:
    answered, started = message.agent_answered_at, message.attempt_started_at
    return answered is not None and (started is None or answered >= started)


def new_attempt(
    message: Message,
    stage: MessageAttempt.Stage,
    result: MessageAttempt.Result,
    *,
    error: str = "",
    latency_ms: int | None = None,
) -> MessageAttempt:
    """How `stage` of the message's current attempt ended, not yet stored: for a step that
    stores those of many messages at once. Its latency is measured from the stage's start
    unless given (the agent client measures its own call)."""
    now = timezone.now()
    started_at = _stage_started_at(message, stage) or now
    if latency_ms is None:
        latency_ms = round((now - started_at).total_seconds() * 1000)
    return MessageAttempt(
        message=message,
        number=message.attempts,
        stage=stage,
        result=result,
        started_at=started_at,
        latency_ms=max(latency_ms, 0),
        error=error,
    )


def current_stage(message: Message) -> MessageAttempt.Stage:
    """The stage an attempt at `message` is at: asking the agent until its answer is stored."""
    return Stage.AGENT if message.reply_text is None else Stage.SEND


def _stage_started_at(message: Message, stage: MessageAttempt.Stage) -> datetime | None:
    """The agent stage starts with the attempt; the send stage when the send was recorded as
    starting in this attempt (an earlier attempt's send, being looked for in Evolution, does not
    count), else with the attempt, which went straight to sending a stored reply."""
    attempt_started = message.attempt_started_at
    sending = message.send_started_at
    if stage == Stage.SEND and sending and (attempt_started is None or sending >= attempt_started):
        return sending
    return attempt_started
