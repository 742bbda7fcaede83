"""Where the CPU of an answered message goes, per process, as users run Omnihub.

Starts the fakes and one `omnihub serve` (web + worker) on a fresh database, drives the
instant-agent closed loop of row 2 (16 connections, distinct messages over 300 chats), measures
CPU per ack and per answer over a window, then samples the web and the worker with py-spy
(`pip install py-spy`; not a dependency of Omnihub) over a second window and prints, per
process, the functions that hold the most CPU (samples of the thread holding the GIL, so
waits and C code that releases it, such as SQLite's, do not show): inclusive and self.

    .venv/bin/python bench/spy.py [--database sqlite|postgres] [--seconds 15]
"""

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop
from cryptography.fernet import Fernet

from bench.context import FULL, Bench
from bench.databases import Database, PostgresDatabase, SqliteDatabase
from bench.fakes import Fakes
from bench.load import Sustained
from bench.servers import OMNIHUB, ROOT, Proc, Supervisor

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/omnihub_bench_profile"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--seconds", type=float, default=15.0, help="each window")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=45, help="functions listed per process")
    parser.add_argument("--no-spy", action="store_true", help="measure CPU only")
    parser.add_argument(
        "--wall", action="store_true", help="sample every running thread, not only the GIL's holder"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "spy.tmp")
    return parser.parse_args()


def prepare(bench: Bench) -> None:
    """As Bench.prepare, without the 10,000-tenant template."""
    db, fakes = bench.database, bench.fakes.url
    bench.supervisor.run("collectstatic", [*OMNIHUB, "collectstatic", "--noinput", "-v", "0"])
    db.create_template("one_tenant")
    env = {"DATABASE_URL": db.template_url("one_tenant")}
    bench.supervisor.run("migrate", [*OMNIHUB, "migrate", "--noinput"], env)
    from bench.setup_db import WEBHOOK_SECRET

    add = [*OMNIHUB, "instance_add", "--name", "bench", "--whatsapp-instance", "bench",
           "--evolution-url", fakes, "--evolution-key", "k", "--agent-api-url", fakes,
           "--agent-api-key", "k", "--default-agent", "bot",
           "--agent-timeout", "30", "--webhook-secret", WEBHOOK_SECRET]  # fmt: skip
    bench.supervisor.run("instance_add", add, env)


def spy(proc: Proc, seconds: float, out: Path, *, wall: bool) -> subprocess.Popen[bytes]:
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    args = [spy_bin, "record", "--pid", str(proc.pid), "--duration", str(int(seconds)),
            "--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking",
            *([] if wall else ["--gil"])]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise(raw: Path, top: int) -> str:
    """Inclusive and self samples per function from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [_short(frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    lines = [f"  {total} samples"]
    lines.append("  inclusive:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"; line numbers merged.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0]
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})"


async def measure(args: argparse.Namespace, bench: Bench) -> None:
    async with bench.serve() as (serve, _watch):
        await bench.warm(serve)
        assert serve.worker is not None
        url = f"{serve.url}/webhook/evolution/bench"
        load = Sustained(url, bench.endless("cpu", FULL.cpu_chats), args.connections)
        load.start()
        try:
            await asyncio.sleep(4)
            windows = [("plain", False)] + ([] if args.no_spy else [("with py-spy", True)])
            for label, spying in windows:
                spies = []
                if spying:
                    spies = [
                        spy(serve.web, args.seconds, args.out / "web.raw", wall=args.wall),
                        spy(serve.worker, args.seconds, args.out / "worker.raw", wall=args.wall),
                    ]
                    await asyncio.sleep(0.5)
                web0, worker0 = serve.web.cpu_seconds(), serve.worker.cpu_seconds()
                acked0, sent0 = load.answered, await bench.fakes.wait(0, 0)
                await asyncio.sleep(args.seconds - 1)
                web = serve.web.cpu_seconds() - web0
                worker = serve.worker.cpu_seconds() - worker0
                acked, sent = load.answered - acked0, await bench.fakes.wait(0, 0) - sent0
                seconds = args.seconds - 1
                print(
                    f"{label}: {acked / seconds:.0f} acked/s, {sent / seconds:.0f} answered/s; "
                    f"web {1000 * web / max(acked, 1):.2f} ms/ack "
                    f"({web / seconds:.2f} cores), worker {1000 * worker / max(sent, 1):.2f} "
                    f"ms/answer ({worker / seconds:.2f} cores); "
                    f"total {1000 * (web + worker) / max(sent, 1):.2f} ms/answer",
                    flush=True,
                )
                for process in spies:
                    await asyncio.to_thread(process.wait)
        finally:
            await load.stop()


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {
        "SECRET_KEY": Fernet.generate_key().decode(),
        "OMNIHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "OMNIHUB_ENV_FILE": "/dev/null",
        "LOG_LEVEL": "WARNING",
    }
    supervisor = Supervisor(env, args.out)
    database: Database = (
        SqliteDatabase(Path(tempfile.mkdtemp(prefix="omnihub-profile-")))
        if args.database == "sqlite"
        else PostgresDatabase(args.postgres_url)
    )
    try:
        fakes = supervisor.start_fakes()
        bench = Bench(supervisor, database, Fakes(fakes.url), FULL)
        prepare(bench)
        asyncio.run(measure(args, bench), loop_factory=uvloop.new_event_loop)
    finally:
        supervisor.stop_all()
        database.drop()
    if not args.no_spy:
        for name in ("web", "worker"):
            raw = args.out / f"{name}.raw"
            if raw.exists():
                print(f"\n{name}:\n{summarise(raw, args.top)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
