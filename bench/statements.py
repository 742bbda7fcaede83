"""Statements and CPU per message, web side and worker side, in one process.

Posts N webhooks through Omnihub's ASGI application (middleware, view, intake: what uvicorn
calls), then answers them all with one Worker.drain() against the fake Agents/Evolution
(bench/fakes.py, started as its own process). For each side: CPU of this process per message
(the fakes' is not counted), SQL statements per message by kind, and with --profile the
functions that took the most of that CPU (cProfile).

    .venv/bin/python bench/statements.py [--database-url URL] [--messages 500] [--profile]
        [--in-flight 16] [--web-only]

--in-flight N keeps N webhooks posted at once (as N connections would), so the web's batches
form as under load; the default, 1, posts them one after another. --web-only stops after the
web side.

Without --database-url, a fresh SQLite file in a temporary directory; a PostgreSQL database
named by --database-url is dropped and made anew (use an omnihub_bench* name).
"""

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet

from bench.load import text_payload
from bench.servers import Supervisor
from bench.setup_db import WEBHOOK_SECRET

STATEMENTS: Counter[str] = Counter()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sql", action="store_true", help="list each statement kind")
    parser.add_argument("--in-flight", type=int, default=1, help="webhooks posted at once")
    parser.add_argument("--web-only", action="store_true", help="do not answer them")
    return parser.parse_args()


def _count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    STATEMENTS[sql] += 1  # classified when reported: the count must cost next to nothing
    return execute(sql, params, many, context)


def _kind(sql: str) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    text = re.sub(r"\(\s*(%s|\?)(\s*,\s*(%s|\?))*\s*\)", "(…)", text)
    match = re.match(r'(\w+)(?: .*?(?:FROM|INTO|UPDATE) "?(\w+)"?)?', text, re.IGNORECASE)
    if match:
        verb, table = match.group(1).upper(), match.group(2) or ""
        where = " ".join(re.findall(r'"(\w+)" (?:=|IN|<=|>|FOR)', text)[:4])
        return f"{verb} {table} {where}".strip()
    return text[:60]


class Side:
    def __init__(self, name: str, profile: bool) -> None:
        self.name = name
        self.profiler = cProfile.Profile() if profile else None

    def __enter__(self) -> "Side":
        STATEMENTS.clear()
        self.cpu, self.wall = time.process_time(), time.monotonic()
        if self.profiler:
            self.profiler.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.profiler:
            self.profiler.disable()
        self.cpu = time.process_time() - self.cpu
        self.wall = time.monotonic() - self.wall
        self.statements: Counter[str] = Counter()
        for sql, count in STATEMENTS.items():
            self.statements[_kind(sql)] += count

    def report(self, messages: int, top: int, sql: bool) -> str:
        total = sum(self.statements.values())
        lines = [
            f"{self.name}: {1000 * self.cpu / messages:.2f} ms CPU per message "
            f"({self.wall:.1f} s wall for {messages}); {total / messages:.2f} statements "
            "per message"
        ]
        if sql:
            lines += [
                f"    {n / messages:6.2f}  {kind}" for kind, n in self.statements.most_common()
            ]
        if self.profiler:
            out = io.StringIO()
            stats = pstats.Stats(self.profiler, stream=out)
            # Unlike CPU seconds on a shared machine, a count that does not drift.
            calls: int = stats.total_calls  # type: ignore[attr-defined]
            lines.append(f"  {calls / messages:.0f} Python function calls per message")
            if top:
                stats.sort_stats("cumulative").print_stats(top)
                stats.sort_stats("tottime").print_stats(top)
                lines.append(out.getvalue())
        return "\n".join(lines)


async def post(application: Any, path: str, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"x-omnihub-token", WEBHOOK_SECRET.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays connected
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await application(scope, receive, send)
    return status


async def main_async(args: argparse.Namespace, fakes_url: str) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.backends.signals import connection_created

    def instrument(sender: Any, connection: Any, **kwargs: Any) -> None:
        if _count not in connection.execute_wrappers:  # a pooled connection is "created" again
            connection.execute_wrappers.append(_count)

    connection_created.connect(instrument)
    await asyncio.to_thread(_setup, call_command, fakes_url)
    from omnihub.asgi import application
    from webhooks.worker.process import Worker

    del connection, settings
    bodies = [text_payload("bench", f"WARM{n:06d}", 900000 + n, f"warm-{n}") for n in range(20)] + [
        text_payload("bench", f"MSG{n:08d}", n % args.chats, f"message-{n}")
        for n in range(args.messages)
    ]
    worker = Worker(concurrency=1000, poll_interval=0.2, lease_seconds=60, grace_seconds=5)
    for body in bodies[:20]:
        assert await post(application, "/webhook/evolution/bench", body) == 200
    await worker.drain()
    with Side("web", args.profile) as web:
        await post_all(application, bodies[20:], args.in_flight)
    print(web.report(args.messages, args.top, args.sql))
    if args.web_only:
        return
    with Side("worker", args.profile) as answering:
        await worker.drain()
    print(answering.report(args.messages, args.top, args.sql))


async def post_all(application: Any, bodies: list[bytes], in_flight: int) -> None:
    """Post every body, `in_flight` at a time: each poster sends its next once answered."""
    queued = iter(bodies)

    async def poster() -> None:
        for body in queued:
            status = await post(application, "/webhook/evolution/bench", body)
            assert status == 200, status

    await asyncio.gather(*(poster() for _ in range(in_flight)))


def _setup(call_command: Callable[..., Any], fakes_url: str) -> None:
    call_command("migrate", "--noinput", verbosity=0)
    call_command(
        "instance_add", "--name", "bench", "--whatsapp-instance", "bench",
        "--evolution-url", fakes_url, "--evolution-key", "k", "--agent-api-url", fakes_url,
        "--agent-api-key", "k", "--default-agent", "bot", "--agent-timeout", "30",
        "--webhook-secret", WEBHOOK_SECRET, stdout=io.StringIO(),
    )  # fmt: skip


def _fresh_postgres(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main() -> int:
    args = parse_args()
    if args.database_url.startswith("postgres"):
        _fresh_postgres(args.database_url)
    directory = Path(tempfile.mkdtemp(prefix="omnihub-statements-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "omnihub.settings",
            "OMNIHUB_ENV_FILE": "/dev/null",
            "SECRET_KEY": Fernet.generate_key().decode(),
            "OMNIHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": args.database_url or f"sqlite:///{directory / 'omnihub.db'}",
        }
    )
    supervisor = Supervisor({"LOG_LEVEL": "WARNING"}, directory)
    try:
        fakes = supervisor.start_fakes()
        import django

        django.setup()
        import uvloop

        asyncio.run(main_async(args, fakes.url), loop_factory=uvloop.new_event_loop)
    finally:
        supervisor.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
