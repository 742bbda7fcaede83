"""Child processes: `omnihub serve` (and the web and worker it spawns), the bare baseline, the
fakes and setup commands.

Every child runs in its own session, with its output in a log file, and is stopped by the
Supervisor: SIGTERM, then SIGKILL to its whole process group if it has not gone within the
grace period, so a serve that hangs cannot leave its web or worker behind.
"""

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
OMNIHUB = [PYTHON, "-m", "omnihub.cli"]
# Only these reach the children from the caller's environment: a developer's DEBUG or
# AGENT_API_URL must not change what is measured.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nothing listens on, below the ephemeral range: the kernel gives ports of that range
    to outgoing connections, and one of those could take the port before the server binds it."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    for port in random.sample(range(10_000, int(ephemeral[0])), 100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass(frozen=True)
class Proc:
    """A running process read through /proc: ours, or a child of one of ours."""

    pid: int

    def status_kib(self, key: str) -> int:
        """A /proc/<pid>/status figure in KiB, e.g. VmRSS or VmHWM (the peak RSS); 0 if gone."""
        try:
            lines = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        except OSError:
            return 0
        for line in lines:
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """utime + stime so far."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def cmdline(self) -> list[str]:
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]

    def children(self) -> list["Proc"]:
        pids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                pids += [int(pid) for pid in (task / "children").read_text().split()]
            except OSError:
                continue
        return [Proc(pid) for pid in pids]


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def proc(self) -> Proc:
        return Proc(self.popen.pid)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Serve(Child):
    """`omnihub serve`: `web` is the uvicorn it spawned, `worker` the worker (None: --no-worker)."""

    web: Proc = Proc(0)
    worker: Proc | None = None

    def processes(self) -> list[Proc]:
        return [self.web] + ([self.worker] if self.worker else [])

    def cpu_seconds(self) -> float:
        return sum(process.cpu_seconds() for process in self.processes())


@dataclass
class Supervisor:
    """Starts processes with one environment and always stops them."""

    env: dict[str, str]
    log_dir: Path
    children: list[Child] = field(default_factory=list)
    _counter: int = 0

    def _start(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> Child:
        self._counter += 1
        log = self.log_dir / f"{self._counter:03d}-{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env={
                    **{key: os.environ[key] for key in PASSED_THROUGH if key in os.environ},
                    **self.env,
                    **(extra or {}),
                },
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which stops them in order
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def run(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> None:
        """Run a setup command to completion (migrate, instance_add, setup_db)."""
        child = self._start(name, args, extra)
        try:
            code = child.popen.wait(timeout=300)
        finally:
            self.stop(child)
        if code != 0:
            raise RuntimeError(f"{' '.join(args[1:4])} failed ({code}):\n{child.tail()}")

    def start_serve(self, database_url: str, *, worker: bool = True) -> Serve:
        """`omnihub serve`, exactly as `make run` starts it, on a free port."""
        port = free_port()
        args = [*OMNIHUB, "serve", "--host", "127.0.0.1", "--port", str(port)]
        name = "serve" if worker else "serve-no-worker"
        child = self._start(name, args + ([] if worker else ["--no-worker"]),
                            {"DATABASE_URL": database_url})  # fmt: skip
        serve = Serve(name, child.popen, child.log, port)
        self.children[-1] = serve
        wait_http(f"{serve.url}/health", serve)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = serve.proc.children()
            webs = [proc for proc in children if any("uvicorn" in a for a in proc.cmdline())]
            others = [proc for proc in children if proc not in webs]
            if webs and (others or not worker):
                serve.web, serve.worker = webs[0], others[0] if worker else None
                return serve
            time.sleep(0.05)
        raise RuntimeError(f"serve's children not found: {serve.proc.children()}")

    def start_bare(self) -> Child:
        """The bare Django app, under the same uvicorn flags as `serve` gives Omnihub's web."""
        port = free_port()
        args = [PYTHON, "-m", "uvicorn", "bench.baseline:application", "--host", "127.0.0.1",
                "--port", str(port), "--lifespan", "off", "--no-access-log"]  # fmt: skip
        bare = self._start("bare", args)
        bare.port = port
        wait_http(f"{bare.url}/health", bare)
        return bare

    def start_fakes(self) -> Child:
        # A cancelled long poll would otherwise hold uvicorn's graceful shutdown; the backlog
        # takes a burst of a thousand agent calls opening their connections at once.
        port = free_port()
        args = [PYTHON, "-m", "uvicorn", "bench.fakes:app", "--host", "127.0.0.1",
                "--port", str(port), "--lifespan", "off", "--no-access-log", "--backlog", "4096",
                "--log-level", "warning", "--timeout-graceful-shutdown", "1"]  # fmt: skip
        fakes = self._start("fakes", args)
        fakes.port = port
        wait_http(f"{fakes.url}/_bench/sends", fakes)
        return fakes

    def stop(self, child: Child, grace: float = 20.0) -> None:
        if child.popen.poll() is None:
            started = time.monotonic()
            child.popen.send_signal(signal.SIGTERM)
            try:
                child.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"  {child.name} ignored SIGTERM for {grace:g} s: killed", flush=True)
            if (took := time.monotonic() - started) > 5:
                print(f"  stopping {child.name} took {took:.1f} s", flush=True)
        # Its session is its process group: whatever it spawned and left behind goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.popen.pid, signal.SIGKILL)
        child.popen.wait()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self, keep: tuple[str, ...] = ()) -> None:
        """Stop every child, newest first, except those named in `keep`."""
        for child in reversed(list(self.children)):
            if child.name not in keep:
                self.stop(child)


def wait_http(url: str, child: Child, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise RuntimeError(f"{child.name} exited at start:\n{child.tail()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:g} s")
