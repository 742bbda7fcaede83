import asyncio
from typing import Any

from asgiref.sync import async_to_sync

from omnihub.asgi import BoundedRequests


async def _no_message() -> dict[str, Any]:
    return {}


async def _discard(message: object) -> None:
    pass


def test_it_lets_at_most_the_limit_in_at_once_and_queues_the_rest():
    inside, most_inside, served = 0, 0, 0

    async def app(scope: dict[str, Any], receive: object, send: object) -> None:
        nonlocal inside, most_inside, served
        inside += 1
        most_inside = max(most_inside, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        served += 1

    bounded = BoundedRequests(app, limit=3)

    async def burst() -> None:
        await asyncio.gather(*(bounded({"type": "http"}, _no_message, _discard) for _ in range(20)))

    async_to_sync(burst)()

    assert served == 20
    assert most_inside == 3


def test_a_failing_request_gives_its_place_back():
    async def app(scope: dict[str, Any], receive: object, send: object) -> None:
        raise RuntimeError("boom")

    bounded = BoundedRequests(app, limit=1)

    async def twice() -> list[BaseException | None]:
        calls = (bounded({"type": "http"}, _no_message, _discard) for _ in range(2))
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=5)

    assert [type(error) for error in async_to_sync(twice)()] == [RuntimeError, RuntimeError]
