"""Child processes (uvicorn web, workers, the fakes) and the benchmark's databases.

Every child runs in its own session, with its output in a log file, and is stopped by the
Supervisor: SIGTERM, then SIGKILL if it has not gone within the grace period.
"""

import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Only these reach the children from the caller's environment: a developer's DEBUG or
# AGENT_API_URL must not change what is measured.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port(*, other_than: int = 0) -> int:
    """A port nothing listens on, below the ephemeral range: the kernel gives ports of that range
    to outgoing connections, and one of those could take the port before the server binds it
    (seen: uvicorn's "address already in use")."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    for port in random.sample(range(10_000, int(ephemeral[0])), 100):
        if port == other_than:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def status_kib(self, key: str) -> int | None:
        """A /proc/<pid>/status figure in KiB, e.g. VmRSS or VmHWM (the peak RSS)."""
        try:
            lines = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        return None

    def threads(self) -> int:
        return self.status_kib("Threads") or 0

    def cpu_seconds(self) -> float:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Supervisor:
    """Starts Omnihub's processes with one environment and always stops them."""

    env: dict[str, str]
    log_dir: Path
    processes: list[Process] = field(default_factory=list)
    _counter: int = 0

    def child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
        return {**base, **self.env, **(extra or {})}

    def start(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> Process:
        self._counter += 1
        log = self.log_dir / f"{self._counter:03d}-{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.child_env(extra),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which stops them in order
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def run(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> None:
        """Run a setup command to completion (migrate, instance_add)."""
        process = self.start(name, args, extra)
        try:
            code = process.popen.wait(timeout=300)
        finally:
            self.stop(process)
        if code != 0:
            raise RuntimeError(f"{' '.join(args[1:3])} failed ({code}):\n{process.tail()}")

    def start_web(self, port: int, database_url: str = "") -> Process:
        args = [PYTHON, "-m", "uvicorn", "omnihub.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--lifespan", "off", "--no-access-log",
                "--log-level", "warning"]  # fmt: skip
        web = self.start("web", args, {"DATABASE_URL": database_url} if database_url else None)
        web.port = port
        wait_http(f"http://127.0.0.1:{port}/health", web)
        return web

    def start_worker(self, concurrency: int | None) -> Process:
        """`concurrency` None: Omnihub's default (WORKER_CONCURRENCY)."""
        args = [PYTHON, "manage.py", "worker"]
        if concurrency is not None:
            args += ["--concurrency", str(concurrency)]
        worker = self.start("worker", args)
        # Ready once it has started its loop threads; a worker without threads gets 10 s.
        deadline = time.monotonic() + 10
        while worker.threads() < 2 and time.monotonic() < deadline:
            if worker.popen.poll() is not None:
                raise RuntimeError(f"the worker exited at start:\n{worker.tail()}")
            time.sleep(0.05)
        time.sleep(0.3)
        return worker

    def start_fakes(self, port: int) -> Process:
        # A cancelled long poll would otherwise hold uvicorn's graceful shutdown.
        args = [PYTHON, "-m", "uvicorn", "bench.fakes:app", "--host", "127.0.0.1",
                "--port", str(port), "--lifespan", "off", "--no-access-log",
                "--log-level", "warning", "--timeout-graceful-shutdown", "1"]  # fmt: skip
        fakes = self.start("fakes", args)
        fakes.port = port
        wait_http(f"http://127.0.0.1:{port}/_bench/sends", fakes)
        return fakes

    def stop(self, process: Process, grace: float = 15.0) -> None:
        if process.popen.poll() is None:
            started = time.monotonic()
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"  {process.name} ignored SIGTERM for {grace:g} s: killed", flush=True)
                process.popen.kill()
                process.popen.wait()
            if (took := time.monotonic() - started) > 3:
                print(f"  stopping {process.name} took {took:.1f} s", flush=True)
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self, keep: tuple[str, ...] = ()) -> None:
        """Stop every child, newest first, except those named in `keep`."""
        for process in reversed(list(self.processes)):
            if process.name not in keep:
                self.stop(process)


def wait_http(url: str, process: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited at start:\n{process.tail()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer {url} within {timeout:g} s")


class Database:
    """A live database for Omnihub plus templates it is reset from, in milliseconds."""

    label = ""
    templates: tuple[str, ...] = ("one_tenant", "many_tenants")

    def template_url(self, template: str) -> str:
        raise NotImplementedError

    def create_template(self, template: str, copy_of: str | None = None) -> None:
        """An empty database, or a copy of another template."""
        raise NotImplementedError

    def reset(self, template: str, *, second: bool = False) -> str:
        """Make the live database (or a second one, served beside it) a copy of `template`;
        returns its URL."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    label = "SQLite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.live = directory / "omnihub_bench.db"

    def _path(self, template: str) -> Path:
        return self.directory / f"{template}.db"

    def template_url(self, template: str) -> str:
        return f"sqlite:///{self._path(template)}"

    def create_template(self, template: str, copy_of: str | None = None) -> None:
        self._copy(self._path(copy_of) if copy_of else None, self._path(template))

    def reset(self, template: str, *, second: bool = False) -> str:
        live = self.live.with_stem(f"{self.live.stem}_second") if second else self.live
        self._copy(self._path(template), live)
        return f"sqlite:///{live}"

    def _copy(self, source: Path | None, target: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        if source is None:
            return
        # The backup API copies a consistent image, WAL content included.
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (WAL)"

    def drop(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresDatabase(Database):
    label = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.url = url
        base, _, self.name = url.rpartition("/")
        self.base = base
        self.admin_url = f"{base}/postgres"

    def _name(self, template: str) -> str:
        return f"{self.name}_{template}"

    def template_url(self, template: str) -> str:
        return f"{self.base}/{self._name(template)}"

    def _execute(self, *statements: sql.Composed) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def _recreate(self, name: str, template: str | None) -> None:
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self._execute(drop, create)

    def create_template(self, template: str, copy_of: str | None = None) -> None:
        self._recreate(self._name(template), self._name(copy_of) if copy_of else None)

    def reset(self, template: str, *, second: bool = False) -> str:
        name = self._name("second") if second else self.name
        self._recreate(name, self._name(template))
        return f"{self.base}/{name}"

    def version(self) -> str:
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            limit = conn.execute("SHOW max_connections").fetchone()
        return f"PostgreSQL {row[0] if row else '?'} (max_connections {limit[0] if limit else '?'})"

    def drop(self) -> None:
        """Drop the templates; the live database stays, to be looked into after a run."""
        self._execute(
            *(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self._name(template))
                )
                for template in (*self.templates, "second")
            )
        )
