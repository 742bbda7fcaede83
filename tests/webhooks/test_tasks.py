from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from webhooks import tasks as tasks_module
from webhooks.tasks import process_conversation, prune_finished_tasks

pytestmark = pytest.mark.django_db


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
