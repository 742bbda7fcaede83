"""`make bench`: Omnihub as users run it (`omnihub serve`: web + worker), on SQLite and
PostgreSQL, against fake Agents and Evolution servers (bench/fakes.py) and beside a bare Django
app (bench/baseline.py). Prints one table and writes it to bench/results/latest.md; each figure
is the median of --runs runs. See bench/README.md for what each row measures.

    .venv/bin/python bench/run.py [--databases sqlite,postgres] [--runs 3] [--quick]
"""

import argparse
import asyncio
import os
import re
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

from bench import environment, report
from bench.context import FULL, QUICK, Bench, Figures
from bench.databases import Database, PostgresDatabase, SqliteDatabase
from bench.fakes import Fakes
from bench.scenarios import SCENARIOS, run_once
from bench.servers import ROOT, Child, Supervisor

RESULTS = ROOT / "bench" / "results"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/omnihub_bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--runs", type=int, help="runs per figure, reported as the median "
                        "(default 3; 1 with --quick)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smaller scenarios: a smoke run")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="WORKER_CONCURRENCY for the worker (default: unset, Omnihub's own)",
    )
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of Omnihub's processes")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"some of {', '.join(SCENARIOS)} (default: all); 'bare' is row 2's baseline",
    )
    parser.add_argument("--note", action="append", default=[], help="a line for the results")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    args = parser.parse_args()
    args.databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    if unknown := set(args.databases) - {"sqlite", "postgres"}:
        parser.error(f"unknown database: {', '.join(sorted(unknown))}")
    args.runs = args.runs or (1 if args.quick else 3)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenario: {', '.join(sorted(unknown))}")
    return args  # fmt: skip


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so the `finally` blocks stop every child


def own_cpu_seconds(fakes: Child) -> float:
    """CPU used by this process, its reaped children (and theirs) and the running fakes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return used + fakes.proc.cpu_seconds()


def bench_database(
    name: str, args: argparse.Namespace, env: dict[str, str], fakes: Child, log_dir: Path
) -> tuple[Database, Figures]:
    """Every run on one database."""
    database: Database = (
        SqliteDatabase(Path(tempfile.mkdtemp(prefix="omnihub-bench-")))
        if name == "sqlite"
        else PostgresDatabase(args.postgres_url)
    )
    log_dir.mkdir(parents=True)
    supervisor = Supervisor(dict(env), log_dir)
    bench = Bench(supervisor, database, Fakes(fakes.url), QUICK if args.quick else FULL)
    busy_before, own_before = environment.busy_cpu_seconds(), own_cpu_seconds(fakes)
    started = time.monotonic()
    try:
        print(f"{database.label}: preparing", flush=True)
        bench.prepare()
        for run in range(args.runs):
            print(f"{database.label}: run {run + 1} of {args.runs}", flush=True)
            asyncio.run(run_once(bench, args.scenarios), loop_factory=uvloop.new_event_loop)
    finally:
        supervisor.stop_all()
        database.drop()
    busy = environment.busy_cpu_seconds() - busy_before
    others = busy - (own_cpu_seconds(fakes) - own_before)
    bench.figures.add("others_cpu", others / (time.monotonic() - started))
    return database, bench.figures


def read_logs(figures: Figures, log_dir: Path) -> dict[str, Counter[str]]:
    """Count serve's ERROR lines into `figures`; the notable lines of every log, by kind."""
    serve_logs = sorted(log_dir.glob("*-serve*.log"))
    errors = environment.scan_logs(serve_logs, environment.ERROR_LINE)
    figures.totals["error_lines"] += sum(errors.values())
    others = [log for log in sorted(log_dir.glob("*.log")) if log not in serve_logs]
    return {
        "serve output, ERROR or above": errors,
        "serve output, WARNING": environment.scan_logs(serve_logs, environment.WARNING_LINE),
        "other logs (fakes, bare app, setup)": environment.scan_logs(
            others,
            re.compile(f"{environment.ERROR_LINE.pattern}|{environment.WARNING_LINE.pattern}"),
        ),
    }


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    log_root = RESULTS / "logs.tmp"
    shutil.rmtree(log_root, ignore_errors=True)
    log_root.mkdir(parents=True)
    # Only the variables Omnihub documents; no DJANGO_SETTINGS_MODULE: `omnihub` picks its own.
    env = {
        "SECRET_KEY": Fernet.generate_key().decode(),
        "OMNIHUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "OMNIHUB_ENV_FILE": "/dev/null",
        "LOG_LEVEL": args.log_level,
    }
    if args.worker_concurrency is not None:
        env["WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    results: dict[str, Figures] = {}
    versions: dict[str, str] = {}
    logs: dict[str, dict[str, Counter[str]]] = {}
    load_before, started = os.getloadavg()[0], time.monotonic()
    code_before = environment.code_version(ROOT)
    fakes_supervisor = Supervisor(env, log_root)
    try:
        fakes = fakes_supervisor.start_fakes()
        for name in args.databases:
            database, figures = bench_database(name, args, env, fakes, log_root / name)
            versions[name] = database.version()
            logs[database.label] = read_logs(figures, log_root / name)
            results[database.label] = figures
    finally:
        fakes_supervisor.stop_all()
    sizes = QUICK if args.quick else FULL
    code = environment.code_version(ROOT)
    if code != code_before:
        code = environment.changed_between(ROOT, code_before, code)
    concurrency = env.get("WORKER_CONCURRENCY", "unset (Omnihub's default)")
    text = "\n".join(
        [
            "# Omnihub benchmark",
            "",
            f"- Date: {environment.now()}; took {time.monotonic() - started:.0f} s; median of "
            f"{args.runs} run{'s' * (args.runs > 1)} per figure{'; --quick' if args.quick else ''}"
            + (
                ""
                if set(args.scenarios) == set(SCENARIOS)
                else f"; scenarios: {', '.join(args.scenarios)}"
            ),
            *(f"- Note: {note}" for note in args.note),
            f"- Machine: {environment.machine()}; load average at start {load_before:.1f}",
            f"- Omnihub code: {code}",
            f"- Versions: {environment.versions(versions)}",
            "- Omnihub: `omnihub serve` (uvicorn web + `omnihub worker`, as `make run` starts "
            f"them); WORKER_CONCURRENCY {concurrency}, LOG_LEVEL {args.log_level}; fake "
            "Agents/Evolution (asyncio, one uvicorn process), the bare Django app and the load "
            "generator (asyncio, keep-alive) on the same machine",
            "",
            report.table(results, sizes),
            "",
            "Notes:",
            *report.notes(results, logs),
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
