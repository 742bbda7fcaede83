from datetime import datetime, timedelta
from uuid import uuid4

from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from webhooks import doorbell

# Rows deleted per statement, so that no delete holds its locks for long.
PRUNE_BATCH = 1000


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


def prune_finished_tasks(*, older_than: timedelta, batches: int = 10) -> int:
    """Delete finished tasks (successful or failed) that finished over `older_than` ago, at most
    `batches` statements' worth; returns how many were deleted."""
    finished = DBTaskResult.objects.filter(
        status__in=[TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED],
        finished_at__lt=timezone.now() - older_than,
    )
    deleted = 0
    for _ in range(batches):
        ids = list(finished.values_list("id", flat=True)[:PRUNE_BATCH])
        if not ids:
            break
        deleted += DBTaskResult.objects.filter(id__in=ids).delete()[0]
    return deleted
