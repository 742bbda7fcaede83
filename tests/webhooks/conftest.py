import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client, override_settings
from django_tasks_db.models import DBTaskResult

from tests.factories import InstanceConfigFactory
from tests.fakes import FakeServer, agent_replying, evolution_accepting, serve
from webhooks.worker import WorkerProcess

FIXTURES = Path(__file__).parent / "fixtures"


def evolution_payload(name: str, **changes: Any) -> dict[str, Any]:
    """A real Evolution v2 webhook body from tests/webhooks/fixtures, with envelope changes."""
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    payload.update(changes)
    return payload


def post_json(path: str, body: object) -> HttpResponse:
    """POST `body` as JSON, as Evolution does."""
    return Client().post(path, json.dumps(body), content_type="application/json")


def with_message_id(
    payload: dict[str, Any], message_id: str, chat: str | None = None
) -> dict[str, Any]:
    key = {**payload["data"]["key"], "id": message_id}
    if chat:
        key["remoteJid"] = chat
    return {**payload, "data": {**payload["data"], "key": key}}


def drain_tasks(timeout: float = 10.0) -> None:
    """Run queued tasks in this thread, as a worker would, until none is left or waiting."""
    worker = WorkerProcess(concurrency=1, poll_interval=0.01)
    loop = worker.task_loop(0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.run_one_task(loop):
            continue
        if not DBTaskResult.objects.filter(status="READY").exists():
            return
        time.sleep(0.01)
    raise AssertionError("tasks were still queued after the timeout")


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[None]:
    with override_settings(RETRY_BASE_DELAY=0.01, RETRY_MAX_DELAY=0.05, EVOLUTION_TIMEOUT=5):
        yield


@pytest.fixture
def agent() -> Iterator[FakeServer]:
    with serve(agent_replying()) as fake:
        yield fake


@pytest.fixture
def evolution() -> Iterator[FakeServer]:
    with serve(evolution_accepting()) as fake:
        yield fake


@pytest.fixture
def tenant_at(agent: FakeServer, evolution: FakeServer) -> Callable[..., Any]:
    """Make a tenant whose agent and Evolution server are this test's fakes."""

    def make(**fields: Any) -> Any:
        return InstanceConfigFactory(evolution_url=evolution.url, agent_api_url=agent.url, **fields)

    return make
