"""`make bench`: Omnihub's webhook, pipeline and memory figures on SQLite and PostgreSQL.

Starts Omnihub as a user would (uvicorn web + `manage.py worker`), fake Agents and Evolution
servers (bench/fakes.py) and a load generator (bench/load.py); prints one table and writes it
to bench/results/latest.md. Each figure is the median of --runs runs; the slow-agent runs take
tens of seconds each, so they are run --slow-runs times.

    .venv/bin/python bench/run.py [--databases sqlite,postgres] [--runs 3] [--quick]
"""

import argparse
import asyncio
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop
from cryptography.fernet import Fernet

from bench import report
from bench.fakes import Fakes
from bench.scenarios import FULL, QUICK, Bench, Figures
from bench.servers import (
    ROOT,
    Database,
    PostgresDatabase,
    Process,
    SqliteDatabase,
    Supervisor,
    free_port,
)

RESULTS = ROOT / "bench" / "results"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/omnihub_bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--slow-runs", type=int, default=1, help="runs of the slow-agent scenario")
    parser.add_argument("--quick", action="store_true", help="fewer requests: a smoke run")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument(
        "--worker-concurrency", type=int, help="loops per worker (default: Omnihub's default)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    args = parser.parse_args()
    args.databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(args.databases) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown database: {', '.join(sorted(unknown))}")
    return args


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so the `finally` blocks stop every child


def own_cpu_seconds(fakes: Process) -> float:
    """CPU used by this process, its reaped children and the (still running) fakes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return used + fakes.cpu_seconds()


def bench_database(
    name: str, args: argparse.Namespace, env: dict[str, str], fakes: Process, log_root: Path
) -> tuple[Database, Bench]:
    """Every run on one database; the figures are in the returned Bench."""
    database: Database = (
        SqliteDatabase(Path(tempfile.mkdtemp(prefix="omnihub-bench-")))
        if name == "sqlite"
        else PostgresDatabase(args.postgres_url)
    )
    log_dir = log_root / name
    log_dir.mkdir(parents=True)
    supervisor = Supervisor(dict(env), log_dir)
    fakes_client = Fakes(f"http://127.0.0.1:{fakes.port}")
    bench = Bench(supervisor, database, fakes_client, QUICK if args.quick else FULL,
                  args.worker_concurrency)  # fmt: skip
    busy_before, own_before, started = (
        report.busy_cpu_seconds(),
        own_cpu_seconds(fakes),
        time.monotonic(),
    )
    try:
        print(f"{database.label}: preparing", flush=True)
        bench.prepare()
        for run in range(args.runs):
            print(f"{database.label}: run {run + 1} of {args.runs}", flush=True)
            asyncio.run(
                bench.run_once(slow=run < args.slow_runs), loop_factory=uvloop.new_event_loop
            )
    finally:
        supervisor.stop_all()
        database.drop()
    others = (report.busy_cpu_seconds() - busy_before) - (own_cpu_seconds(fakes) - own_before)
    bench.figures.add("others_cpu", others / (time.monotonic() - started))
    return database, bench


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    log_root = RESULTS / "logs.tmp"
    shutil.rmtree(log_root, ignore_errors=True)
    log_root.mkdir(parents=True)
    env = {
        "SECRET_KEY": Fernet.generate_key().decode(),
        "OMNIHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "OMNIHUB_API_KEY": Fernet.generate_key().decode(),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "OMNIHUB_ENV_FILE": "/dev/null",
        "LOG_LEVEL": "WARNING",
    }
    results: dict[str, Figures] = {}
    versions: dict[str, str] = {}
    log_problems: dict[str, Counter[str]] = {}
    load_before, started = os.getloadavg()[0], time.monotonic()
    code_before = report.code_version(ROOT)
    fakes_supervisor = Supervisor(env, log_root)
    try:
        fakes = fakes_supervisor.start_fakes(free_port())
        for name in args.databases:
            database, bench = bench_database(name, args, env, fakes, log_root)
            versions[name] = database.version()
            problems = report.scan_logs(log_root / name)
            if problems:
                bench.figures.problems.append(
                    f"{sum(problems.values())} log lines at WARNING or above, or exceptions"
                )
            log_problems[database.label] = problems
            results[database.label] = bench.figures
    finally:
        fakes_supervisor.stop_all()
    sizes = QUICK if args.quick else FULL
    code = report.code_version(ROOT)
    if code != code_before:
        code = report.changed_between(ROOT, code_before, code)
    text = "\n".join(
        [
            "# Omnihub benchmark",
            "",
            f"- Date: {report.now()}; took {time.monotonic() - started:.0f} s; median of "
            f"{args.runs} runs per figure (slow agents: {min(args.slow_runs, args.runs)})"
            f"{'; --quick' if args.quick else ''}",
            f"- Machine: {report.machine()}; load average at start {load_before:.1f}",
            f"- Omnihub code: {code}",
            f"- Versions: {report.versions(versions)}",
            "- Omnihub: uvicorn (1 process) + `manage.py worker"
            f"{report.concurrency_flag(args.worker_concurrency)}`, default settings; "
            "fake Agents/Evolution (asyncio, one process) and the load generator (asyncio, "
            "keep-alive) on the same machine",
            "",
            report.table(results, sizes, args.worker_concurrency),
            "",
            "Notes:",
            *report.notes(results, log_problems),
            f"- Logs of every process: {log_root.relative_to(ROOT)}/",
            "",
        ]
    )
    report.write(args.output, text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
