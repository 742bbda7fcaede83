"""The measurements, each on a fresh copy of a prepared database and freshly started processes.

Per run: `acknowledgement` (web alone: bare view vs webhook at each concurrency),
`pipeline` (web + worker: end-to-end idle, back-to-back and burst, then slow agents with one worker
and with two) and `tenants` (ack p50 with one tenant vs many). Figures are kept per run, to be
reduced to medians by the report.
"""

import asyncio
import itertools
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.fakes import Fakes
from bench.load import (
    HealthProbe,
    HealthReport,
    LoadResult,
    post_all,
    post_at_rate,
    quantile,
    text_payload,
)
from bench.servers import PYTHON, Database, Process, Supervisor, free_port
from bench.setup_db import tenant_name

TENANT = "bench"
ACK_CONCURRENCY = (1, 10, 32, 256)


@dataclass(frozen=True)
class Sizes:
    ack_requests: dict[int, int]  # per concurrency
    idle_messages: int = 30
    idle_gap: float = 0.2
    burst_messages: int = 200
    burst_chats: int = 50
    burst_concurrency: int = 32
    stream_messages: int = 200
    stream_rate: float = 50.0  # messages per second
    slow_conversations: int = 200
    slow_agent_delay: float = 2.0
    tenant_requests: int = 300
    many_tenants: int = 10_000
    warmup: int = 50


FULL = Sizes(ack_requests={1: 200, 10: 600, 32: 600, 256: 768})
QUICK = Sizes(
    ack_requests={1: 100, 10: 200, 32: 200, 256: 512},
    idle_messages=10,
    burst_messages=50,
    stream_messages=50,
    slow_conversations=40,
    tenant_requests=100,
    many_tenants=2_000,
    warmup=20,
)


@dataclass
class Figures:
    """One database's figures: a value per run for each name, and what went wrong."""

    values: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    webhook_statuses: Counter[int] = field(default_factory=Counter)
    health: defaultdict[str, HealthReport] = field(
        default_factory=lambda: defaultdict(HealthReport)
    )
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, value: float) -> None:
        self.values[name].append(value)

    def median(self, name: str) -> float | None:
        values = self.values.get(name)
        return statistics.median(values) if values else None

    def runs(self, name: str) -> int:
        return len(self.values.get(name, []))


@dataclass
class Bench:
    supervisor: Supervisor
    database: Database
    fakes: Fakes
    sizes: Sizes
    worker_concurrency: int | None
    figures: Figures = field(default_factory=Figures)
    _ids: "itertools.count[int]" = field(default_factory=itertools.count)

    def messages(
        self, count: int, tag: str, chats: int | None = None, tenants: Sequence[str] = (TENANT,)
    ) -> tuple[list[str], list[bytes]]:
        """`count` distinct messages (ids and texts) over `chats` new chats, each to the tenant
        of the same rank in `tenants` (cycled)."""
        first = next(self._ids)
        for _ in range(count - 1):
            next(self._ids)
        texts = [f"{tag}-{first + n}" for n in range(count)]
        bodies = [
            text_payload(
                tenants[n % len(tenants)],
                f"BENCH{first + n:010d}",
                first + n % (chats or count),
                text,
            )
            for n, text in enumerate(texts)
        ]
        return texts, bodies

    def prepare(self) -> None:
        """Two templates: migrated with one tenant (added as a user would), and with many."""
        db, fakes = self.database, self.fakes.url
        db.create_template("one_tenant")
        env = {"DATABASE_URL": db.template_url("one_tenant")}
        self.supervisor.run("migrate", [PYTHON, "manage.py", "migrate", "--noinput"], env)
        add = [PYTHON, "manage.py", "instance_add", "--name", TENANT, "--whatsapp-instance",
               TENANT, "--evolution-url", fakes, "--evolution-key", "k", "--agent-api-url",
               fakes, "--agent-api-key", "k", "--default-agent", "bot", "--agent-timeout",
               "30"]  # fmt: skip
        self.supervisor.run("instance_add", add, env)
        db.create_template("many_tenants", copy_of="one_tenant")
        extra = [PYTHON, "-m", "bench.setup_db", "--count", str(self.sizes.many_tenants - 1),
                 "--agent-url", fakes, "--evolution-url", fakes]  # fmt: skip
        self.supervisor.run("setup_db", extra, {"DATABASE_URL": db.template_url("many_tenants")})

    def fresh(self, template: str) -> None:
        self.supervisor.env["DATABASE_URL"] = self.database.reset(template)

    async def acknowledgement(self, web: Process, base: str) -> None:
        """The webhook against the bare view, same server, same generator, same bodies."""
        figures = self.figures
        _, bodies = self.messages(self.sizes.warmup, "warmup")
        await post_all(f"{base}/bench/bare", bodies, 4)
        await post_all(f"{base}/webhook/evolution/{TENANT}", bodies, 4)
        for concurrency in ACK_CONCURRENCY:
            _, bodies = self.messages(self.sizes.ack_requests[concurrency], "ack", chats=500)
            for kind, url in (("bare", f"{base}/bench/bare"),
                              ("hook", f"{base}/webhook/evolution/{TENANT}")):  # fmt: skip
                cpu_before = web.cpu_seconds()
                async with HealthProbe(f"{base}/health") as probe:
                    result = await post_all(url, bodies, concurrency)
                figures.health["ack"].merge(probe.report)
                if not probe.report.after_ok:
                    figures.problems.append(f"/health failed right after {kind} c={concurrency}")
                self._record_load(f"{kind}_{concurrency}", result)
                figures.add(f"{kind}_web_cpu_{concurrency}",
                            (web.cpu_seconds() - cpu_before) / result.wall)  # fmt: skip
                if kind == "hook":
                    figures.webhook_statuses.update(result.statuses)
            figures.add(f"web_peak_mib_after_{concurrency}", (web.status_kib("VmHWM") or 0) / 1024)

    def _record_load(self, name: str, result: LoadResult) -> None:
        self.figures.add(f"{name}_rps", result.throughput)
        self.figures.add(f"{name}_p50", result.p50)
        self.figures.add(f"{name}_p99", result.p99)
        self.figures.add(f"{name}_gen_cpu", result.cpu / result.wall)

    async def end_to_end(self, base: str, worker: Process) -> None:
        """Webhook sent → sendText received, with an agent that answers at once."""
        sizes, url = self.sizes, f"{base}/webhook/evolution/{TENANT}"
        await self.fakes.configure(agent_delay=0.0)
        texts, bodies = self.messages(5, "warmup")
        await post_all(url, bodies, 1)
        await self._wait_replies(texts, timeout=30)
        # Idle: each message waits for the previous reply and a pause, so it finds workers idle.
        await self.fakes.configure(agent_delay=0.0)
        texts, bodies = self.messages(sizes.idle_messages, "idle")
        starts: list[float] = []
        for n, body in enumerate(bodies):
            result = await post_all(url, [body], 1)
            self.figures.webhook_statuses.update(result.statuses)
            starts.append(result.starts[0])
            await self.fakes.sends(n + 1, timeout=10)
            await asyncio.sleep(sizes.idle_gap)
        self._record_latency("e2e_idle", texts, starts, await self._wait_replies(texts, 10))
        # Back-to-back: a message every 1/stream_rate s, each sent without waiting for earlier
        # ones to be answered, over many chats: workers are busy when the next one arrives.
        await self.fakes.configure(agent_delay=0.0)
        texts, bodies = self.messages(sizes.stream_messages, "stream", chats=sizes.burst_chats)
        result = await post_at_rate(url, bodies, sizes.stream_rate)
        self.figures.webhook_statuses.update(result.statuses)
        arrivals = await self._wait_replies(texts, timeout=30)
        self._record_latency("e2e_stream", texts, result.starts, arrivals)
        # Burst: as fast as the web answers, 32 at a time. This measures capacity: at that
        # concurrency even the bare view's own answer takes tens of milliseconds.
        await self.fakes.configure(agent_delay=0.0)  # forgets the replies recorded so far
        texts, bodies = self.messages(sizes.burst_messages, "burst", chats=sizes.burst_chats)
        cpu_before = worker.cpu_seconds()
        async with HealthProbe(f"{base}/health") as probe:
            result = await post_all(url, bodies, sizes.burst_concurrency)
            arrivals = await self._wait_replies(texts, timeout=60)
        self.figures.add("worker_cpu_per_message", (worker.cpu_seconds() - cpu_before) / len(texts))
        self.figures.health["pipeline"].merge(probe.report)
        self.figures.webhook_statuses.update(result.statuses)
        self._record_latency("e2e_burst", texts, result.starts, arrivals)
        replies = [min(arrivals[text]) for text in texts if text in arrivals]
        started = [start for start in result.starts if start]  # 0.0: never connected
        if replies and started:  # answered per second, from the first sent to the last reply
            self.figures.add("e2e_burst_rate", len(replies) / (max(replies) - min(started)))

    async def slow_agents(self, base: str, workers: int) -> None:
        """Distinct conversations, each asked of an agent that takes `slow_agent_delay`."""
        sizes, url = self.sizes, f"{base}/webhook/evolution/{TENANT}"
        await self.fakes.configure(agent_delay=sizes.slow_agent_delay)
        count = sizes.slow_conversations
        texts, bodies = self.messages(count, f"slow{workers}")
        async with HealthProbe(f"{base}/health", interval=1.0) as probe:
            result = await post_all(url, bodies, sizes.burst_concurrency)
            arrivals = await self._wait_replies(texts, timeout=max(120.0, count * 1.5))
        self.figures.health["pipeline"].merge(probe.report)
        self.figures.webhook_statuses.update(result.statuses)
        done = [min(arrivals[text]) for text in texts if text in arrivals]
        if len(done) == count:
            self.figures.add(f"slow_{workers}", max(done) - min(result.starts))
        await self.fakes.configure(agent_delay=0.0)

    async def _wait_replies(self, texts: Sequence[str], timeout: float) -> dict[str, list[float]]:
        arrivals = await self.fakes.sends(len(texts), timeout)
        missing = [text for text in texts if text not in arrivals]
        if missing:
            self.figures.problems.append(
                f"{len(missing)} of {len(texts)} replies ({texts[0].rpartition('-')[0]}) "
                f"not sent within {timeout:g} s"
            )
        doubled = [text for text in texts if len(arrivals.get(text, ())) > 1]
        if doubled:
            self.figures.problems.append(f"{len(doubled)} replies sent more than once")
        return arrivals

    def _record_latency(
        self,
        name: str,
        texts: Sequence[str],
        starts: Sequence[float],
        arrivals: dict[str, list[float]],
    ) -> None:
        latencies = [
            min(arrivals[text]) - start for text, start in zip(texts, starts, strict=True)
            if text in arrivals
        ]  # fmt: skip
        if latencies:
            self.figures.add(f"{name}_p50", quantile(latencies, 50))
            self.figures.add(f"{name}_p99", quantile(latencies, 99))

    async def tenant_lookup(self, one: str, many: str) -> None:
        """Ack p50 at concurrency 1: `one` serves a database with one tenant, `many` one with
        many, where each message goes to a random tenant. Served side by side and asked in
        alternating blocks, so the machine's drift weighs on both alike."""
        sizes, block = self.sizes, 25
        names = [tenant_name(n) for n in range(sizes.many_tenants - 1)]
        chooser = random.Random(sizes.many_tenants)
        latencies: dict[str, list[float]] = {one: [], many: []}
        probe_one, probe_many = (
            HealthProbe(f"{one}/health", 1.0),
            HealthProbe(f"{many}/health", 1.0),
        )
        async with probe_one, probe_many:
            for number in range(-sizes.warmup // block, sizes.tenant_requests // block):
                for base in (one, many):
                    tenants = [TENANT] * block if base == one else chooser.choices(names, k=block)
                    _, bodies = self.messages(block, "tenants", tenants=tenants)
                    urls = [f"{base}/webhook/evolution/{name}" for name in tenants]
                    result = await post_all(urls, bodies, 1)
                    self.figures.webhook_statuses.update(result.statuses)
                    if number >= 0:  # the first blocks warm both servers up
                        latencies[base] += result.latencies
        for probe in (probe_one, probe_many):
            self.figures.health["tenants"].merge(probe.report)
        self.figures.add("tenants_1_p50", quantile(latencies[one], 50))
        self.figures.add(f"tenants_{sizes.many_tenants}_p50", quantile(latencies[many], 50))

    async def run_once(self, *, slow: bool) -> None:
        """One run of every scenario; `slow` adds the slow-agent ones (tens of seconds each)."""
        supervisor, port = self.supervisor, free_port()
        base = f"http://127.0.0.1:{port}"
        peaks: dict[str, int] = {}
        self.fresh("one_tenant")
        web = supervisor.start_web(port)
        try:
            await self.acknowledgement(web, base)
            progress("acknowledgement")
        finally:
            peaks["web"] = web.status_kib("VmHWM") or 0
            supervisor.stop(web)
        self.fresh("one_tenant")
        web = supervisor.start_web(port)
        worker = supervisor.start_worker(self.worker_concurrency)
        try:
            await self.end_to_end(base, worker)
            progress("end to end")
            if slow:
                await self.slow_agents(base, workers=1)
                second = supervisor.start_worker(self.worker_concurrency)
                await self.slow_agents(base, workers=2)
                supervisor.stop(second)
                progress("slow agents")
        finally:
            peaks["web"] = max(peaks["web"], web.status_kib("VmHWM") or 0)
            peaks["worker"] = worker.status_kib("VmHWM") or 0
            supervisor.stop_all(keep=("fakes",))
        for name, kib in peaks.items():
            self.figures.add(f"{name}_peak_mib", kib / 1024)
        self.fresh("one_tenant")
        other = free_port(other_than=port)
        many = self.database.reset("many_tenants", second=True)
        supervisor.start_web(port)
        supervisor.start_web(other, database_url=many)
        try:
            await self.tenant_lookup(base, f"http://127.0.0.1:{other}")
        finally:
            supervisor.stop_all(keep=("fakes",))
        progress("tenants")


def progress(step: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {step} done", flush=True)
