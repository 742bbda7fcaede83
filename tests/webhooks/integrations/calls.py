"""Calls through the outbound transport for its tests: each with its own client, unless made in
turn through one (`post_in_turn`). Options default to a small JSON body, no headers, a 5 s
deadline and a 1 MiB cap, named as Evolution."""

import asyncio
from typing import Any

import pytest

from tests.misbehaving import MiB
from webhooks.integrations.transport import JsonAnswer, OutboundError, new_client, post_json


def options(given: dict[str, Any]) -> dict[str, Any]:
    return {
        "body": {"n": 1},
        "headers": {},
        "deadline": 5.0,
        "max_bytes": MiB,
        "service": "Evolution",
        **given,
    }


def post(url: str, **given: Any) -> JsonAnswer:
    async def call() -> JsonAnswer:
        async with new_client() as client:
            return await post_json(client, url, **options(given))

    return asyncio.run(call())


def post_in_turn(*calls: tuple[str, dict[str, str]]) -> None:
    """POST to each (url, headers) in turn, through one client."""

    async def in_turn() -> None:
        async with new_client() as client:
            for url, headers in calls:
                await post_json(client, url, **options({"headers": headers}))

    asyncio.run(in_turn())


def failure(url: str, **given: Any) -> OutboundError:
    with pytest.raises(OutboundError) as caught:
        post(url, **given)
    return caught.value
