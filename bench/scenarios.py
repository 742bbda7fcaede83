"""The scenarios of one run, each on freshly started processes and a fresh copy of a prepared
database. Figures are kept per run (bench.context.Figures), to be reduced to medians."""

import asyncio
import itertools
import random
import time
from collections.abc import Sequence

from bench.context import TENANT, Bench, tenant_names
from bench.load import TIMED_OUT, LoadResult, Sustained, post_at_rate, quantile
from bench.servers import Proc


async def conversations(bench: Bench) -> None:
    """1. `conversations` distinct chats, each asked of an agent that takes `agent_delay`, with
    one worker at its defaults: time to ack them all, time until every reply reached the fake
    Evolution, and the worker's peak RSS."""
    sizes, figures = bench.sizes, bench.figures
    async with bench.serve() as (serve, watch):
        await bench.warm(serve)
        await bench.fakes.configure(agent_delay=sizes.agent_delay)
        texts, bodies = bench.messages(sizes.conversations, "conversation")
        result = await bench.post(f"{serve.url}/webhook/evolution/{TENANT}", bodies, 64)
        figures.add("conversations_ack", result.wall)
        began = min(start for start in result.starts if start)
        left = sizes.conversation_timeout - (time.monotonic() - began)
        arrivals = await bench.replies(texts, timeout=max(left, 1.0))
        answered = [min(arrivals[text]) for text in texts if text in arrivals]
        figures.add("conversations_answered", len(answered))
        done = max(answered) - began if len(answered) == len(texts) else float("inf")
        figures.add("conversations_all", done)
        assert serve.worker is not None
        figures.add("worker_peak_mib", watch.peak_mib(serve.worker))
        await bench.fakes.configure(agent_delay=0.0)


async def pipeline(bench: Bench) -> None:
    """On one `omnihub serve`, instant agent: 4 (end to end, idle and at 50 msg/s), ack
    throughput with the worker at 16 connections (7), 3 (`burst` at 64 connections) and 2 (CPU
    per answered message under sustained load)."""
    sizes, figures = bench.sizes, bench.figures
    async with bench.serve() as (serve, _watch):
        url = f"{serve.url}/webhook/evolution/{TENANT}"
        await bench.warm(serve)
        await bench.fakes.configure(agent_delay=0.0)
        texts, bodies = bench.messages(sizes.idle_messages, "idle")
        starts: list[float] = []
        for n, body in enumerate(bodies):
            starts.append((await bench.post(url, [body], 1)).starts[0])
            await bench.fakes.wait(n + 1, timeout=10)
            await asyncio.sleep(sizes.idle_gap)  # so each message finds the worker idle
        record_latency(bench, "e2e_idle", texts, starts, await bench.replies(texts, 10))

        await bench.fakes.configure(agent_delay=0.0)
        texts, bodies = bench.messages(sizes.stream_messages, "stream", chats=sizes.stream_chats)
        result = await post_at_rate(url, bodies, sizes.stream_rate)
        figures.statuses.update(result.statuses)
        arrivals = await bench.replies(texts, timeout=60)
        record_latency(bench, "e2e_stream", texts, result.starts, arrivals)

        for concurrency, tag in ((16, "ack16"), (64, "burst")):
            await bench.fakes.configure(agent_delay=0.0)
            texts, bodies = bench.messages(sizes.burst, tag, chats=sizes.burst_chats)
            result = await bench.post(url, bodies, concurrency)
            record_ack(bench, f"with_worker_{concurrency}", result)
            arrivals = await bench.replies(texts, timeout=max(120.0, sizes.burst * 0.1))
            lost, doubled = bench.lost_and_doubled(texts, arrivals)
            figures.totals[f"{tag}_lost"] += lost
            figures.totals[f"{tag}_doubled"] += doubled
            if concurrency == 64:
                figures.totals["burst_requests"] += len(bodies)
                figures.totals["burst_timeouts"] += result.statuses[TIMED_OUT]
                figures.totals["burst_failures"] += result.failures - result.statuses[TIMED_OUT]

        await bench.fakes.configure(agent_delay=0.0)
        load = Sustained(url, bench.endless("cpu", sizes.cpu_chats), 16)
        cpu, acked, answered = await cpu_window(bench, load, serve.processes(), answers=True)
        figures.add("cpu_per_answer", cpu[0] / answered if answered else float("inf"))
        figures.add("cpu_web_per_ack", cpu[1] / acked if acked else float("inf"))
        figures.add("cpu_worker_per_answer", cpu[2] / answered if answered else float("inf"))
        figures.add("cpu_acked_per_s", acked / sizes.cpu_window)
        figures.add("cpu_answered_per_s", answered / sizes.cpu_window)


async def bare(bench: Bench) -> None:
    """2's baseline: the bare Django app under the same 16-connection load and window."""
    server = bench.supervisor.start_bare()
    try:
        _, bodies = bench.messages(bench.sizes.warmup, "bare-warmup")
        load = Sustained(f"{server.url}/webhook/evolution/{TENANT}", itertools.cycle(bodies), 16)
        (cpu, *_), acked, _ = await cpu_window(bench, load, [server.proc], answers=False)
        per_request = cpu / acked if acked else float("inf")
        bench.figures.add("cpu_bare_per_request", per_request)
        # Per run, since the two figures are compared within a run: a slower host slows both.
        if answer := bench.figures.values.get("cpu_per_answer"):
            bench.figures.add("cpu_ratio", answer[-1] / per_request)
        bench.figures.add("bare_16_rps", acked / bench.sizes.cpu_window)
    finally:
        bench.supervisor.stop(server)


async def cpu_window(
    bench: Bench, load: Sustained, processes: Sequence[Proc], *, answers: bool
) -> tuple[list[float], int, int]:
    """Run `load`, and over its steady window (after `cpu_warmup`) measure the CPU seconds of
    `processes` (total, then each), requests acked and (if `answers`) replies sent."""
    sizes = bench.sizes
    load.start()
    try:
        await asyncio.sleep(sizes.cpu_warmup)
        cpu_before = [proc.cpu_seconds() for proc in processes]
        acked_before = load.answered
        sent_before = await bench.fakes.wait(0, 0) if answers else 0
        await asyncio.sleep(sizes.cpu_window)
        cpu = [
            proc.cpu_seconds() - before for proc, before in zip(processes, cpu_before, strict=True)
        ]
        acked = load.answered - acked_before
        sent = (await bench.fakes.wait(0, 0)) - sent_before if answers else 0
    finally:
        result = await load.stop()
    bench.figures.statuses.update(result.statuses)
    return [sum(cpu), *cpu], acked, sent


async def web_alone(bench: Bench) -> None:
    """7's comparison: the same ack loads on `omnihub serve --no-worker`."""
    async with bench.serve(worker=False) as (serve, _watch):
        url = f"{serve.url}/webhook/evolution/{TENANT}"
        _, bodies = bench.messages(bench.sizes.warmup, "alone-warmup")
        await bench.post(url, bodies, 4)
        for concurrency in (16, 64):
            _, bodies = bench.messages(bench.sizes.burst, "alone", chats=bench.sizes.burst_chats)
            record_ack(
                bench, f"web_alone_{concurrency}", await bench.post(url, bodies, concurrency)
            )


async def tenants(bench: Bench) -> None:
    """5. Ack p50 at one connection: one serve whose database has one tenant, one with many,
    where each message goes to a random tenant; side by side and asked in alternating blocks,
    so the machine's drift weighs on both alike."""
    sizes, block = bench.sizes, bench.sizes.tenant_block
    names = tenant_names(sizes.tenants)
    chooser = random.Random(sizes.tenants)
    latencies: dict[str, list[float]] = {"one": [], "many": []}
    texts: list[str] = []
    await bench.fakes.configure(agent_delay=0.0)
    async with (
        bench.serve("one_tenant") as (one, _),
        bench.serve("many_tenants", second=True) as (many, _),
    ):
        for number in range(-(sizes.warmup // block), sizes.tenant_requests // block):
            for kind, serve in (("one", one), ("many", many)):
                chosen = [TENANT] * block if kind == "one" else chooser.choices(names, k=block)
                block_texts, bodies = bench.messages(block, "tenants", tenants=chosen)
                texts += block_texts
                urls = [f"{serve.url}/webhook/evolution/{name}" for name in chosen]
                result = await bench.post(urls, bodies, 1)
                if number >= 0:  # the first blocks warm both up
                    latencies[kind] += result.latencies
        await bench.replies(texts, timeout=60)
    one_p50, many_p50 = quantile(latencies["one"], 50), quantile(latencies["many"], 50)
    bench.figures.add("tenants_1_p50", one_p50)
    bench.figures.add("tenants_many_p50", many_p50)
    bench.figures.add("tenants_ratio", many_p50 / one_p50)


def record_ack(bench: Bench, name: str, result: LoadResult) -> None:
    bench.figures.add(f"{name}_rps", result.throughput)
    bench.figures.add(f"{name}_p50", result.p50)
    bench.figures.add(f"{name}_p99", result.p99)


def record_latency(
    bench: Bench,
    name: str,
    texts: Sequence[str],
    starts: Sequence[float],
    arrivals: dict[str, list[float]],
) -> None:
    """Webhook sent → its first sendText received, per message answered."""
    latencies = [
        min(arrivals[text]) - start
        for text, start in zip(texts, starts, strict=True)
        if text in arrivals and start
    ]
    if latencies:
        bench.figures.add(f"{name}_p50", quantile(latencies, 50))
        bench.figures.add(f"{name}_p99", quantile(latencies, 99))


SCENARIOS = {step.__name__: step for step in (conversations, pipeline, bare, web_alone, tenants)}


async def run_once(bench: Bench, names: Sequence[str] = tuple(SCENARIOS)) -> None:
    """One run of the scenarios named (default: every one), in their usual order."""
    bench.web_peaks.clear()
    for name, step in SCENARIOS.items():
        if name in names:
            await step(bench)
            print(f"  {time.strftime('%H:%M:%S')} {name} done", flush=True)
    if bench.web_peaks:
        bench.figures.add("web_peak_mib", max(bench.web_peaks))
