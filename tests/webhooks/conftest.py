import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from django.test import Client, override_settings

from tests.factories import InstanceConfigFactory
from tests.fakes import FakeServer, agent_replying, evolution_accepting, serve
from webhooks.worker.process import Worker

if TYPE_CHECKING:  # what the test client returns, as django-stubs names it
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

FIXTURES = Path(__file__).parent / "fixtures"


def evolution_payload(name: str, **changes: Any) -> dict[str, Any]:
    """A real Evolution v2 webhook body from tests/webhooks/fixtures, with envelope changes."""
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    payload.update(changes)
    return payload


def post_json(path: str, body: object) -> "TestResponse":
    """POST `body` as JSON, as Evolution does."""
    return Client().post(path, json.dumps(body), content_type="application/json")


def evolution_jwt(
    secret: str, *, algorithm: str = "HS256", issued: float | None = None, **claims: Any
) -> str:
    """A token as Evolution signs a webhook with its `jwt_key`; a claim given as None is left
    out."""
    iat = int(time.time() if issued is None else issued)
    made = {"iat": iat, "exp": iat + 600, "app": "evolution", "action": "webhook", **claims}
    key = "" if algorithm == "none" else secret  # "none" signs with no key at all
    return jwt.encode({k: v for k, v in made.items() if v is not None}, key, algorithm=algorithm)


def post_signed(path: str, body: object, **headers: str) -> "TestResponse":
    """POST `body` as JSON with these headers, as an Evolution with a jwt_key would."""
    return Client(headers=headers).post(path, json.dumps(body), content_type="application/json")


def post_webhook(tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST a webhook to a tenant's route ("" for the legacy one); it must be answered 200."""
    response = post_json(
        f"/webhook/evolution/{tenant}" if tenant else "/webhook/evolution", payload
    )
    assert response.status_code == 200, response.content
    answer: dict[str, Any] = response.json()
    return answer


def text_in_chat(chat_digits: str, text: str, message_id: str) -> dict[str, Any]:
    payload = evolution_payload("text_pn")
    payload["data"]["message"] = {"conversation": text}
    return with_message_id(payload, message_id, f"{chat_digits}@s.whatsapp.net")


def with_message_id(
    payload: dict[str, Any], message_id: str, chat: str | None = None
) -> dict[str, Any]:
    key = {**payload["data"]["key"], "id": message_id}
    if chat:
        key["remoteJid"] = chat
    return {**payload, "data": {**payload["data"], "key": key}}


def a_worker(**options: Any) -> Worker:
    settings = {"concurrency": 50, "poll_interval": 0.02, "lease_seconds": 60.0}
    return Worker(**{**settings, "grace_seconds": 5.0, **options})


def answer_all(**options: Any) -> Worker:
    """Answer every conversation that is ready now or soon (fast retries), as a worker would,
    then return."""
    worker = a_worker(**options)
    asyncio.run(worker.drain())
    return worker


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """The worker serving in a thread of its own, as in its own process; stopped on exit."""
    thread = threading.Thread(target=asyncio.run, args=(worker.serve(),), daemon=True)
    thread.start()
    assert worker.started.wait(10), "the worker did not start"
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop"


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
        servers = {"evolution_url": evolution.url, "agent_api_url": agent.url}
        return InstanceConfigFactory.create(**{**servers, **fields})

    return make
