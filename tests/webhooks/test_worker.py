import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.conftest import evolution_payload, post_json, with_message_id
from webhooks import worker as worker_module
from webhooks.models import Conversation, Message
from webhooks.processing import _claim_next_message
from webhooks.worker import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def running(worker: WorkerProcess) -> Iterator[WorkerProcess]:
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    time.sleep(0.2)  # let the doorbell start listening
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_an_idle_worker_is_woken_by_a_new_message_long_before_its_poll(agent, evolution, tenant_at):
    tenant_at(name="acme")

    with running(WorkerProcess(concurrency=2, poll_interval=60)):
        started = time.monotonic()
        post_json("/webhook/evolution/acme", evolution_payload("text_pn"))
        evolution.wait_for(1, timeout=5)
        elapsed = time.monotonic() - started

    assert len(evolution.requests) == 1
    assert elapsed < 5


def test_a_worker_recovers_a_conversation_whose_worker_died(
    agent, evolution, tenant_at, monkeypatch
):
    monkeypatch.setattr(worker_module, "RECOVERY_INTERVAL", 0.05)
    tenant_at(name="acme")
    post_json("/webhook/evolution/acme", evolution_payload("text_pn"))
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.update(status="RUNNING")  # its worker was killed mid-task
    _claim_next_message(Conversation.objects.get().pk, "dead-worker")
    Conversation.objects.update(leased_until=timezone.now() - timedelta(seconds=1))

    with running(WorkerProcess(concurrency=1, poll_interval=0.05)):
        evolution.wait_for(1, timeout=5)

    assert len(evolution.requests) == 1
    assert Message.objects.get().status == Message.Status.ANSWERED


@pytest.fixture
def no_doorbell(monkeypatch):
    """Rings come only from the test."""
    monkeypatch.setattr(worker_module.doorbell, "listen", lambda on_ring, stopping: stopping.wait())


def counting_claims(worker: WorkerProcess, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The loops' ids, one per claim they try."""
    claims: list[str] = []
    claim = worker._claim
    monkeypatch.setattr(
        worker, "_claim", lambda worker_id: claims.append(worker_id) or claim(worker_id)
    )
    return claims


def forget_start_up_claims(claims: list[str], loops: int) -> None:
    """Each loop looks once on starting: wait for all of them, then forget those claims."""
    deadline = time.monotonic() + 5
    while len(set(claims)) < loops and time.monotonic() < deadline:
        time.sleep(0.01)
    claims.clear()


def test_a_ring_wakes_one_idle_loop_not_every_loop(no_doorbell, monkeypatch):
    worker = WorkerProcess(concurrency=4, poll_interval=60)
    claims = counting_claims(worker, monkeypatch)

    with running(worker):
        forget_start_up_claims(claims, 4)
        worker.wake()
        time.sleep(0.5)

    assert len(claims) == 1


def test_a_loop_that_takes_the_only_task_wakes_no_other(
    no_doorbell, agent, evolution, tenant_at, monkeypatch
):
    tenant_at(name="acme")
    worker = WorkerProcess(concurrency=4, poll_interval=60)
    claims = counting_claims(worker, monkeypatch)

    with running(worker):
        forget_start_up_claims(claims, 4)
        post_json("/webhook/evolution/acme", evolution_payload("text_pn"))
        worker.wake()
        evolution.wait_for(1, timeout=5)
        time.sleep(0.3)

    assert len(evolution.requests) == 1
    assert len(set(claims)) == 1  # the loop that answered looked again; no other loop did


def test_a_loop_that_takes_a_task_wakes_another_for_the_rest(
    no_doorbell, agent, evolution, tenant_at
):
    tenant_at(name="acme")
    payload = evolution_payload("text_pn")
    agent.delay = 0.5  # each answer takes half a second; three loops answer them side by side

    with running(WorkerProcess(concurrency=3, poll_interval=60)) as worker:
        for n in range(3):
            chat = f"55119000000{n:02d}@s.whatsapp.net"
            post_json("/webhook/evolution/acme", with_message_id(payload, f"M{n}", chat=chat))
        started = time.monotonic()
        worker.wake()  # one ring for all three, as one SQLite data_version change can be
        evolution.wait_for(3, timeout=5)
        elapsed = time.monotonic() - started

    assert elapsed < 1.2


def test_a_worker_deletes_old_finished_tasks(no_doorbell, monkeypatch, settings):
    monkeypatch.setattr(worker_module, "RECOVERY_INTERVAL", 0.05)
    settings.TASK_RESULTS_KEEP_HOURS = 1
    from django_tasks_db.models import DBTaskResult

    from webhooks.tasks import process_conversation

    old = process_conversation.enqueue(1).id
    DBTaskResult.objects.filter(id=old).update(
        status="SUCCESSFUL", finished_at=timezone.now() - timedelta(hours=2)
    )

    with running(WorkerProcess(concurrency=1, poll_interval=60)):
        deadline = time.monotonic() + 5
        while DBTaskResult.objects.filter(id=old).exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    assert not DBTaskResult.objects.filter(id=old).exists()
