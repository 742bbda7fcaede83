import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from webhooks import tasks as tasks_module
from webhooks.tasks import process_conversation, prune_finished_tasks, queue_conversation

pytestmark = pytest.mark.django_db

# What enqueue() sets itself, differently each time.
OWN_VALUES = {"id", "enqueued_at"}


@pytest.mark.parametrize("run_after", [None, timezone.now() + timedelta(minutes=5)])
def test_it_queues_the_row_that_enqueue_would(run_after) -> None:
    task = process_conversation.using(run_after=run_after) if run_after else process_conversation
    enqueued_id = task.enqueue(7).id

    queue_conversation(7, run_after=run_after)

    enqueued = DBTaskResult.objects.filter(id=enqueued_id).values().get()
    queued = DBTaskResult.objects.exclude(id=enqueued_id).values().get()
    assert {k: v for k, v in queued.items() if k not in OWN_VALUES} == {
        k: v for k, v in enqueued.items() if k not in OWN_VALUES
    }
    assert process_conversation.get_result(str(queued["id"])).args == [7]


def test_another_task_backend_gets_enqueue_itself(settings) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}

    queue_conversation(7)

    [result] = process_conversation.get_backend().results
    assert result.args == [7]
    assert not DBTaskResult.objects.exists()


FIXED_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_a_database_backend_with_its_own_ids_gets_enqueue_itself(settings) -> None:
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_db.DatabaseBackend",
            "OPTIONS": {"id_function": lambda: FIXED_ID},
        }
    }

    queue_conversation(7)

    assert DBTaskResult.objects.get().id == FIXED_ID


def a_task(status: str, finished_hours_ago: float | None = None) -> str:
    result = process_conversation.enqueue(1)
    finished_at = None
    if finished_hours_ago is not None:
        finished_at = timezone.now() - timedelta(hours=finished_hours_ago)
    DBTaskResult.objects.filter(id=result.id).update(status=status, finished_at=finished_at)
    return result.id


def test_it_deletes_tasks_finished_longer_ago_than_kept() -> None:
    old_success, old_failure = a_task("SUCCESSFUL", 25), a_task("FAILED", 30)
    kept = {
        a_task("SUCCESSFUL", 23),
        a_task("FAILED", 1),
        a_task("READY"),
        a_task("RUNNING"),
    }

    deleted = prune_finished_tasks(older_than=timedelta(hours=24))

    assert deleted == 2
    assert {str(task_id) for task_id in DBTaskResult.objects.values_list("id", flat=True)} == kept
    assert not DBTaskResult.objects.filter(id__in=[old_success, old_failure]).exists()


def test_it_deletes_in_batches_and_stops_after_the_last_one_allowed(monkeypatch) -> None:
    monkeypatch.setattr(tasks_module, "PRUNE_BATCH", 2)
    for _ in range(5):
        a_task("SUCCESSFUL", 48)

    assert prune_finished_tasks(older_than=timedelta(hours=24), batches=2) == 4
    assert prune_finished_tasks(older_than=timedelta(hours=24), batches=2) == 1
    assert DBTaskResult.objects.count() == 0
