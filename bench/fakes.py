"""Fake Agents API and Evolution API in one asyncio process (served by uvicorn).

A separate process, so its work does not share a GIL with the load generator, and asyncio, so
a thousand slow agent calls cost a sleeping coroutine each rather than a thread. Each sendText
arrival is stamped with time.monotonic(): CLOCK_MONOTONIC is system-wide on Linux, so the
benchmark compares it with its own request start times.

    POST /api/v1/agent/{agent}/run       {"message": <message_content>} after `agent_delay`
    POST /message/sendText/{instance}    records (text, arrival time); 201 {"key": {"id": ..}}
    POST /chat/findMessages/{instance}   the texts sent to that chat, as Evolution lists them
    POST /chat/sendPresence/{instance}   201 {}
    POST /_bench/config                  {"agent_delay": seconds}; also forgets the sends
    GET  /_bench/wait?count=N&timeout=T  waits until N sends arrived (or T s passed), then
                                         {"sends": n, "agent_calls": n}
    GET  /_bench/sends                   {"sends": [[text, monotonic], ...], ...}

Run: python -m uvicorn bench.fakes:app --host 127.0.0.1 --port PORT; the benchmark drives it
with `Fakes`.
"""

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NO_MESSAGES = {"messages": {"total": 0, "pages": 0, "currentPage": 1, "records": []}}


class FakeGateways:
    """The ASGI app; its state lives on the instance, one per server process."""

    def __init__(self) -> None:
        self.agent_delay = 0.0
        self.agent_calls = 0
        self.sends: list[tuple[str, float]] = []
        # What each chat was sent, for findMessages: a send that timed out is looked up there.
        self.stored: dict[str, list[dict[str, Any]]] = {}
        self._arrived: asyncio.Event | None = None  # made on the server's own loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        status, answer = await self.route(scope["method"], scope["path"], body, scope)
        payload = json.dumps(answer).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def route(self, method: str, path: str, body: bytes, scope: Scope) -> tuple[int, Any]:
        if method == "POST" and path.startswith("/message/sendText/"):
            sent = json.loads(body)
            self.sends.append((str(sent.get("text", "")), time.monotonic()))
            self._wake()
            key = {"id": f"SENT{len(self.sends)}", "fromMe": True}
            self.stored.setdefault(str(sent.get("number", "")), []).append(
                {
                    "key": key,
                    "message": {"conversation": sent.get("text", "")},
                    "messageTimestamp": int(time.time()),
                }
            )
            return 201, {"key": key, "status": "PENDING"}
        if method == "POST" and path.startswith("/api/v1/agent/") and path.endswith("/run"):
            self.agent_calls += 1
            content = json.loads(body).get("message_content", "")
            if self.agent_delay:
                await asyncio.sleep(self.agent_delay)
            return 200, {"message": content}
        if method == "POST" and path.startswith("/chat/findMessages/"):
            jid = json.loads(body).get("where", {}).get("key", {}).get("remoteJid", "")
            records = self.stored.get(str(jid).partition("@")[0], [])[::-1]
            return 200, {"messages": {**NO_MESSAGES["messages"], "records": records}}
        if method == "POST" and path.startswith("/chat/sendPresence/"):
            return 201, {}
        if method == "POST" and path == "/_bench/config":
            self.agent_delay = float(json.loads(body).get("agent_delay", 0.0))
            self.sends.clear()
            self.stored.clear()
            self.agent_calls = 0
            return 200, {"agent_delay": self.agent_delay}
        if method == "GET" and path == "/_bench/wait":
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            await self._wait(int(query.get("count", 0)), float(query.get("timeout", 0)))
            return 200, {"sends": len(self.sends), "agent_calls": self.agent_calls}
        if method == "GET" and path == "/_bench/sends":
            return 200, {"sends": self.sends, "agent_calls": self.agent_calls}
        return 404, {"detail": f"no fake for {method} {path}"}

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    async def _wait(self, count: int, timeout: float) -> None:
        """Woken by each arrival rather than polling, so a long wait costs nothing meanwhile."""
        deadline = time.monotonic() + timeout
        while len(self.sends) < count and (left := deadline - time.monotonic()) > 0:
            if self._arrived is None:
                self._arrived = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


app = FakeGateways()


class Fakes:
    """Drives the fake Agents/Evolution process (bench/fakes.py) over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def configure(self, *, agent_delay: float) -> None:
        """Set the agent's delay and forget the sends recorded so far."""
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                f"{self.url}/_bench/config", json={"agent_delay": agent_delay}
            )
            answer.raise_for_status()

    async def wait(self, count: int, timeout: float) -> int:
        """Sends recorded once `count` arrived or `timeout` passed."""
        async with httpx.AsyncClient(timeout=timeout + 10) as client:
            answer = await client.get(
                f"{self.url}/_bench/wait", params={"count": count, "timeout": timeout}
            )
        return int(answer.json()["sends"])

    async def sends(self) -> dict[str, list[float]]:
        """Arrival times by reply text (a text sent twice has two)."""
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(f"{self.url}/_bench/sends")
        arrivals: dict[str, list[float]] = defaultdict(list)
        for text, arrived in answer.json()["sends"]:
            arrivals[text].append(arrived)
        return arrivals
