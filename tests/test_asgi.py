import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import ThreadSensitiveContext, async_to_sync, sync_to_async

from omnihub.asgi import BoundedRequests, SharedSyncThread
from tests.processes import ROOT, child_env

HTTP = {"type": "http", "headers": []}


async def _empty_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: object) -> None:
    pass


def _bounded(app: Any, limit: int = 1, **options: Any) -> BoundedRequests:
    return BoundedRequests(app, limit, **{"body_timeout": 30, "max_body_size": None, **options})


def _arriving(*chunks: bytes) -> Callable[[], Any]:
    """A client sending its body in these chunks, then waiting for the answer until told to
    leave (a disconnect) once every chunk has been taken."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def receive() -> Mapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


def _stalling_after(first_chunk: bytes) -> Callable[[], Any]:
    """A client that sends the start of its body and then nothing more, ever."""
    sent = False

    async def receive() -> Mapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": first_chunk, "more_body": True}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


class _Answers:
    """What the server sent back: a send() that records each message."""

    def __init__(self) -> None:
        self.messages: list[Mapping[str, Any]] = []

    async def __call__(self, message: Mapping[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    def json(self) -> Any:
        return json.loads(self.messages[1]["body"])


async def _answer_ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_it_lets_at_most_the_limit_in_at_once_and_queues_the_rest():
    inside, most_inside, served = 0, 0, 0

    async def app(scope: dict[str, Any], receive: object, send: object) -> None:
        nonlocal inside, most_inside, served
        inside += 1
        most_inside = max(most_inside, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        served += 1

    bounded = _bounded(app, limit=3)

    async def burst() -> None:
        await asyncio.gather(*(bounded(HTTP, _empty_body, _discard) for _ in range(20)))

    async_to_sync(burst)()

    assert served == 20
    assert most_inside == 3


def test_a_failing_request_gives_its_place_back():
    async def app(scope: dict[str, Any], receive: object, send: object) -> None:
        raise RuntimeError("boom")

    bounded = _bounded(app, limit=1)

    async def twice() -> list[BaseException | None]:
        calls = (bounded(HTTP, _empty_body, _discard) for _ in range(2))
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=5)

    assert [type(error) for error in async_to_sync(twice)()] == [RuntimeError, RuntimeError]


def test_a_stalled_body_holds_no_place_while_other_requests_are_served():
    bounded = _bounded(_answer_ok, limit=1)
    answers = _Answers()

    async def scenario() -> bool:
        stalled = asyncio.ensure_future(bounded(HTTP, _stalling_after(b'{"da'), _discard))
        # With one place, this is served only if the stalled request does not hold it.
        await asyncio.wait_for(bounded(HTTP, _arriving(b"{}"), answers), timeout=5)
        still_waiting = not stalled.done()
        stalled.cancel()
        return still_waiting

    assert async_to_sync(scenario)()
    assert answers.status == 200


def test_a_body_that_does_not_arrive_in_time_is_answered_408_outside_the_app():
    async def app(scope: dict[str, Any], receive: object, send: object) -> None:
        raise AssertionError("a request without its body must not reach the app")

    answers = _Answers()
    bounded = _bounded(app, body_timeout=0.05)

    async_to_sync(bounded)(HTTP, _stalling_after(b'{"da'), answers)

    assert answers.status == 408
    assert "did not arrive" in answers.json()["detail"]
    assert (b"connection", b"close") in answers.messages[0]["headers"]


def test_the_app_gets_the_whole_body_at_once_then_the_client_s_own_messages():
    received: list[Mapping[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received.extend([await receive(), await receive()])

    async_to_sync(_bounded(app))(HTTP, _arriving(b'{"da', b'ta": ', b"1}"), _discard)

    assert received == [
        {"type": "http.request", "body": b'{"data": 1}', "more_body": False},
        {"type": "http.disconnect"},
    ]


def test_a_body_over_the_limit_is_answered_413_as_it_arrives():
    answers = _Answers()
    bounded = _bounded(_answer_ok, max_body_size=5)

    async_to_sync(bounded)(HTTP, _arriving(b"abc", b"def"), answers)

    assert answers.status == 413


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read():
    async def receive() -> Mapping[str, Any]:
        raise AssertionError("nothing of a body declared too large is read")

    answers = _Answers()
    scope = {**HTTP, "headers": [(b"content-length", b"6")]}

    async_to_sync(_bounded(_answer_ok, max_body_size=5))(scope, receive, answers)

    assert answers.status == 413


def test_a_client_gone_before_its_body_arrived_is_not_answered():
    answers = _Answers()

    async def gone() -> Mapping[str, Any]:
        return {"type": "http.disconnect"}

    async_to_sync(_bounded(_answer_ok))(HTTP, gone, answers)

    assert answers.messages == []


def _threads_of_sync_work(paths: list[str]) -> list[threading.Thread]:
    """The thread that ran the sync work (a thread-sensitive call, as Django's request signals
    are) of a request to each path, each request in a ThreadSensitiveContext of its own, as
    Django's ASGI handler gives it."""
    threads: list[threading.Thread] = []

    async def django_like(scope: dict[str, Any], receive: object, send: object) -> None:
        async with ThreadSensitiveContext():
            threads.append(await sync_to_async(threading.current_thread)())

    app = SharedSyncThread(django_like, "/webhook/")

    async def serve_all() -> None:
        requests = [app({**HTTP, "path": path}, _empty_body, _discard) for path in paths]
        await asyncio.gather(*requests)

    # A loop of its own, as a server's: under async_to_sync every thread-sensitive call would
    # run on the calling thread.
    asyncio.run(serve_all())
    return threads


def test_webhooks_share_one_thread_for_their_sync_work():
    threads = _threads_of_sync_work(["/webhook/evolution/a", "/webhook/evolution/b"] * 2)

    assert len(set(threads)) == 1
    assert threads[0].name.startswith("webhook-sync")


def test_other_requests_keep_a_thread_each_for_their_sync_work():
    threads = _threads_of_sync_work(["/admin/", "/api/v1/instances", "/webhook/evolution/a"])

    assert len(set(threads)) == 3
    assert not any(thread.name.startswith("webhook-sync") for thread in threads[:2])


def test_the_web_application_loads_no_outbound_client(tmp_path):
    # The web makes outbound calls only when an operator asks for a link or a check
    # (instances.connection): the client (aiohttp, ~14 MiB) stays out of every web process
    # until then. A fresh interpreter, as uvicorn starts one, with the admin and API loaded.
    loads = (
        "import sys, omnihub.asgi, omnihub.urls;"
        "print(sorted({'aiohttp', 'yarl'} & set(sys.modules)))"
    )
    env = child_env(DATABASE_URL=f"sqlite:///{tmp_path / 'unused.db'}")
    run = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-c", loads], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"
