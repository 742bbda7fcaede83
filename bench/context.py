"""What every scenario shares: sizes, the figures collected, messages, and serving Omnihub on a
fresh copy of a prepared database."""

import asyncio
import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bench.databases import Database
from bench.fakes import Fakes
from bench.load import LoadResult, post_all, text_payload
from bench.probes import HealthReport, Watch
from bench.servers import OMNIHUB, PYTHON, Serve, Supervisor
from bench.setup_db import WEBHOOK_SECRET, tenant_name

TENANT = "bench"


@dataclass(frozen=True)
class Sizes:
    conversations: int = 1000  # scenario 1
    agent_delay: float = 10.0
    conversation_timeout: float = 300.0
    cpu_warmup: float = 4.0  # scenario 2: seconds of load before the window
    cpu_window: float = 20.0
    cpu_chats: int = 300
    burst: int = 2000  # scenario 3, and the ack throughput rows
    burst_chats: int = 500
    idle_messages: int = 50  # scenario 4
    idle_gap: float = 0.1
    stream_messages: int = 500
    stream_rate: float = 50.0  # messages per second
    stream_chats: int = 50
    tenants: int = 10_000  # scenario 5
    tenant_requests: int = 600
    tenant_block: int = 25
    warmup: int = 50


FULL = Sizes()
QUICK = Sizes(
    conversations=100,
    conversation_timeout=120.0,
    cpu_warmup=2.0,
    cpu_window=6.0,
    burst=500,
    idle_messages=15,
    stream_messages=150,
    tenant_requests=150,
    warmup=25,
)


@dataclass
class Figures:
    """One database's figures: a value per run for each name, totals, and what went wrong."""

    values: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    totals: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)  # every webhook of every run
    health: HealthReport = field(default_factory=HealthReport)
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
    figures: Figures = field(default_factory=Figures)
    web_peaks: list[float] = field(default_factory=list)  # MiB, every web process of this run
    _ids: "itertools.count[int]" = field(default_factory=itertools.count)

    def messages(
        self, count: int, tag: str, chats: int | None = None, tenants: Sequence[str] = (TENANT,)
    ) -> tuple[list[str], list[bytes]]:
        """`count` distinct messages (texts, bodies) over `chats` chats not used before (default:
        a chat each), each to the tenant of the same rank in `tenants` (cycled)."""
        numbers = [next(self._ids) for _ in range(count)]
        texts = [f"{tag}-{number}" for number in numbers]
        bodies = [
            text_payload(
                tenants[n % len(tenants)],
                f"BENCH{number:010d}",
                numbers[0] + n % (chats or count),
                text,
            )
            for n, (number, text) in enumerate(zip(numbers, texts, strict=True))
        ]
        return texts, bodies

    def endless(self, tag: str, chats: int) -> Iterator[bytes]:
        """Distinct messages for as long as asked, over `chats` new chats."""
        first = next(self._ids)
        for n in itertools.count():
            number = next(self._ids)
            yield text_payload(TENANT, f"BENCH{number:010d}", first + n % chats, f"{tag}-{number}")

    def prepare(self) -> None:
        """Two templates: migrated with one tenant (added as a user would), and with many; and
        the static files `make run` collects, which the web process serves and indexes."""
        db, fakes = self.database, self.fakes.url
        self.supervisor.run("collectstatic", [*OMNIHUB, "collectstatic", "--noinput", "-v", "0"])
        db.create_template("one_tenant")
        env = {"DATABASE_URL": db.template_url("one_tenant")}
        self.supervisor.run("migrate", [*OMNIHUB, "migrate", "--noinput"], env)
        add = [*OMNIHUB, "instance_add", "--name", TENANT, "--whatsapp-instance", TENANT,
               "--evolution-url", fakes, "--evolution-key", "k", "--agent-api-url", fakes,
               "--agent-api-key", "k", "--default-agent", "bot",
               "--agent-timeout", "30", "--webhook-secret", WEBHOOK_SECRET]  # fmt: skip
        self.supervisor.run("instance_add", add, env)
        db.create_template("many_tenants", copy_of="one_tenant")
        extra = [PYTHON, "-m", "bench.setup_db", "--count", str(self.sizes.tenants - 1),
                 "--agent-url", fakes, "--evolution-url", fakes]  # fmt: skip
        self.supervisor.run("setup_db", extra, {"DATABASE_URL": db.template_url("many_tenants")})

    @asynccontextmanager
    async def serve(
        self, template: str = "one_tenant", *, worker: bool = True, second: bool = False
    ) -> AsyncIterator[tuple[Serve, Watch]]:
        """`omnihub serve` on a fresh copy of `template`, watched while the caller uses it."""
        # In a thread: another serve's Watch may be running on this loop meanwhile.
        url = await asyncio.to_thread(self.database.reset, template, second=second)
        serve = await asyncio.to_thread(self.supervisor.start_serve, url, worker=worker)
        try:
            async with Watch(f"{serve.url}/health", serve.processes()) as watch:
                yield serve, watch
            self.web_peaks.append(watch.peak_mib(serve.web))
            self.figures.health.merge(watch.health)
        finally:
            await asyncio.to_thread(self.supervisor.stop, serve)

    async def post(self, url: str | Sequence[str], bodies: Sequence[bytes], c: int) -> LoadResult:
        result = await post_all(url, bodies, c)
        self.figures.statuses.update(result.statuses)
        return result

    async def warm(self, serve: Serve) -> None:
        """A few messages answered end to end, so the first measured one pays no start-up."""
        await self.fakes.configure(agent_delay=0.0)
        texts, bodies = self.messages(5, "warmup")
        await self.post(f"{serve.url}/webhook/evolution/{TENANT}", bodies, 1)
        await self.replies(texts, timeout=60)

    async def replies(self, texts: Sequence[str], timeout: float) -> dict[str, list[float]]:
        """Arrival times of the replies to `texts`, once all arrived or `timeout` passed;
        replies missing or sent twice are noted as problems."""
        await self.fakes.wait(len(texts), timeout)
        arrivals = await self.fakes.sends()
        lost, doubled = self.lost_and_doubled(texts, arrivals)
        tag = texts[0].rpartition("-")[0] if texts else "?"
        if lost:
            self.figures.problems.append(
                f"{lost} of {len(texts)} replies ({tag}) not sent within {timeout:g} s"
            )
        if doubled:
            self.figures.problems.append(f"{doubled} replies ({tag}) sent more than once")
        return arrivals

    @staticmethod
    def lost_and_doubled(texts: Sequence[str], arrivals: dict[str, list[float]]) -> tuple[int, int]:
        lost = sum(1 for text in texts if text not in arrivals)
        doubled = sum(1 for text in texts if len(arrivals.get(text, ())) > 1)
        return lost, doubled


def tenant_names(count: int) -> list[str]:
    """The tenants bench/setup_db.py adds beside TENANT."""
    return [tenant_name(number) for number in range(count - 1)]
