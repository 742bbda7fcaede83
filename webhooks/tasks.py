from datetime import datetime
from uuid import uuid4

from django.tasks import task

from webhooks import doorbell


@task
def process_conversation(conversation_id: int) -> int:
    # Imported here: the pipeline enqueues this task, so it imports this module first.
    from webhooks.processing import answer_conversation

    return answer_conversation(conversation_id, worker_id=uuid4().hex)


def queue_conversation(conversation_id: int, *, run_after: datetime | None = None) -> None:
    """Queue the conversation for a worker; call it inside the transaction that makes the work."""
    if run_after is None:
        process_conversation.enqueue(conversation_id)
        doorbell.ring()
    else:
        process_conversation.using(run_after=run_after).enqueue(conversation_id)
