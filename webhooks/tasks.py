from datetime import datetime, timedelta
from uuid import uuid4

from django.tasks import Task, TaskResultStatus, task
from django.utils import timezone
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from webhooks.prepared_insert import PreparedInsert

# Rows deleted per statement, so that no delete holds its locks for long.
PRUNE_BATCH = 1000

insert_task = PreparedInsert(DBTaskResult)


@task
def process_conversation(conversation_id: int) -> int:
    # Imported here: the pipeline enqueues this task, so it imports this module first.
    from webhooks.processing import answer_conversation

    return answer_conversation(conversation_id, worker_id=uuid4().hex)


def queue_conversation(conversation_id: int, *, run_after: datetime | None = None) -> None:
    """Queue the conversation for a worker; call it inside the transaction that makes the work.
    Idle workers wake when it commits (webhooks.doorbell; on PostgreSQL, not for a task that
    `run_after` defers).

    It stores the row that `process_conversation.enqueue(conversation_id)` stores, with an
    INSERT compiled once: every webhook queues a task, and enqueue()'s save() and the result
    object it builds twice took 0.5-0.75 ms of the webhook's 1.7 ms of database work on SQLite,
    against about 0.2 ms. It sends no task_enqueued signal (Django only logs it at DEBUG level).
    tests/webhooks/test_tasks.py compares the two rows. Another task backend, or a database
    backend that makes its own task ids (its id_function option), gets enqueue() itself.
    """
    task = process_conversation.using(run_after=run_after) if run_after else process_conversation
    if stores_plain_rows(task):
        insert_task.insert(task_row(task, conversation_id))
    else:
        task.enqueue(conversation_id)


def stores_plain_rows(task: Task[[int], int]) -> bool:
    """Whether `task` is queued as a plain row (see queue_conversation)."""
    backend = task.get_backend()
    return isinstance(backend, DatabaseBackend) and not backend.options.get("id_function")


def task_row(task: Task[[int], int], conversation_id: int) -> DBTaskResult:
    return DBTaskResult(
        # As django-tasks-db's DatabaseBackend._task_to_db_task; its pre_save handler
        # stores a run_after of None as "far future", which the worker reads as "now".
        args_kwargs={"args": [conversation_id], "kwargs": {}},
        priority=task.priority,
        task_path=task.module_path,
        queue_name=task.queue_name,
        run_after=task.run_after,
        backend_name=task.backend,
    )


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
