"""The results: one markdown table (medians over runs, with targets and PASS/FAIL) and notes."""

import math
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.context import Figures, Sizes
from bench.load import NO_ANSWER, TIMED_OUT

Cell = tuple[str, str]  # (value, PASS/FAIL or "")


@dataclass(frozen=True)
class Row:
    label: str
    target: str
    cell: Callable[[Figures], Cell]


def ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if math.isinf(seconds):
        return "∞"
    millis = seconds * 1000
    if millis >= 1000:
        return f"{seconds:.2f} s"
    return f"{millis:.2f} ms" if millis < 10 else f"{millis:.0f} ms"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "FAIL")


def runs_note(figures: Figures, name: str) -> str:
    runs = figures.runs(name)
    return f" ({runs} runs)" if runs > 1 else ""


def below(name: str, limit: float, show: Callable[[float], str] = ms) -> Callable[[Figures], Cell]:
    """The median of `name`, which passes under `limit`."""

    def cell(figures: Figures) -> Cell:
        value = figures.median(name)
        if value is None:
            return "n/a", "FAIL"
        return show(value) + runs_note(figures, name), verdict(value < limit)

    return cell


def conversations_cell(sizes: Sizes) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        value = figures.median("conversations_all")
        if value is None:
            return "n/a", "FAIL"
        if math.isinf(value):
            answered = figures.median("conversations_answered") or 0
            return (f"not all within {sizes.conversation_timeout:g} s: {answered:.0f} of "
                    f"{sizes.conversations:,} answered", "FAIL")  # fmt: skip
        return f"{value:.1f} s{runs_note(figures, 'conversations_all')}", verdict(value < 15)

    return cell


def mib(value: float) -> str:
    return f"{value:.0f} MiB"


def peak_cell(name: str, limit: float) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        value, values = figures.median(name), figures.values.get(name, [])
        if value is None:
            return "n/a", "FAIL"
        return f"{value:.0f} MiB (max {max(values):.0f})", verdict(value < limit)

    return cell


def cpu_cell(figures: Figures) -> Cell:
    omnihub, bare = figures.median("cpu_per_answer"), figures.median("cpu_bare_per_request")
    ratio = figures.median("cpu_ratio")
    if omnihub is None or not bare or ratio is None:
        return "n/a", "FAIL"
    web, worker = figures.median("cpu_web_per_ack"), figures.median("cpu_worker_per_answer")
    acked, answered = figures.median("cpu_acked_per_s"), figures.median("cpu_answered_per_s")
    return (
        f"**{ratio:.1f}x**: {ms(omnihub)} per answered message vs bare {ms(bare)} per "
        f"request (web {ms(web)}/ack + worker {ms(worker)}/answer; {acked or 0:.0f} acked/s, "
        f"{answered or 0:.0f} answered/s)",
        verdict(ratio <= 5),
    )


def burst_statuses_cell(figures: Figures) -> Cell:
    totals = figures.totals
    failures, timeouts = totals["burst_failures"], totals["burst_timeouts"]
    text = f"{failures} non-2xx, {timeouts} timeouts of {totals['burst_requests']:,} (all runs)"
    return text, verdict(totals["burst_requests"] > 0 and failures == 0 and timeouts == 0)


def burst_ack_cell(figures: Figures) -> Cell:
    p99, p50 = figures.median("with_worker_64_p99"), figures.median("with_worker_64_p50")
    if p99 is None:
        return "n/a", "FAIL"
    return f"p99 {ms(p99)} (p50 {ms(p50)})", verdict(p99 < 0.5)


def replies_cell(tag: str) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        lost, doubled = figures.totals[f"{tag}_lost"], figures.totals[f"{tag}_doubled"]
        return f"{lost} lost, {doubled} doubled (all runs)", verdict(lost == 0 and doubled == 0)

    return cell


def e2e_cell(name: str, limit: float) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        p50, p99 = figures.median(f"{name}_p50"), figures.median(f"{name}_p99")
        if p50 is None:
            return "n/a", "FAIL"
        return f"p50 {ms(p50)} (p99 {ms(p99)})", verdict(p50 < limit)

    return cell


def tenants_cell(figures: Figures) -> Cell:
    one, many = figures.median("tenants_1_p50"), figures.median("tenants_many_p50")
    ratio = figures.median("tenants_ratio")  # of each run's pair, measured side by side
    if one is None or many is None or ratio is None:
        return "n/a", "FAIL"
    return f"{ms(one)} vs {ms(many)} ({ratio - 1:+.0%})", verdict(ratio <= 1.2)


def throughput_cell(concurrency: int) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        worker = figures.median(f"with_worker_{concurrency}_rps")
        alone = figures.median(f"web_alone_{concurrency}_rps")
        return f"with worker **{worker or 0:.0f}** req/s · web alone {alone or 0:.0f} req/s", ""

    return cell


def health_cell(figures: Figures) -> Cell:
    report = figures.health
    total = report.answered + report.failed
    return (f"{report.answered}/{total} answered 200, slowest {ms(report.slowest)}",
            verdict(report.ok))  # fmt: skip


def errors_cell(figures: Figures) -> Cell:
    count = figures.totals["error_lines"]
    return f"{count}", verdict(count == 0)


def rows(sizes: Sizes) -> list[Row]:
    conv = f"{sizes.conversations:,} conversations x {sizes.agent_delay:g} s agent, 1 worker"
    burst = f"{sizes.burst:,} webhooks at 64 connections, worker answering"
    return [
        Row(f"1. {conv}: all replies at the fake Evolution", "< 15 s", conversations_cell(sizes)),
        Row(f"1. {conv}: all webhooks acked", "< 5 s",
            below("conversations_ack", 5.0, lambda value: f"{value:.2f} s")),
        Row(f"1. {conv}: worker peak RSS", "< 200 MiB", peak_cell("worker_peak_mib", 200)),
        Row(f"2. CPU per answered message, web + worker, instant agent, 16 connections, "
            f"{sizes.cpu_window:g} s window, vs the bare Django app's per request",
            "≤ 5x bare", cpu_cell),
        Row(f"3. {burst}: non-2xx answers, timeouts ({10:g} s)", "0", burst_statuses_cell),
        Row(f"3. {burst}: ack latency", "p99 < 500 ms", burst_ack_cell),
        Row(f"3. {burst}: replies lost or sent twice", "0", replies_cell("burst")),
        Row("4. End to end (webhook sent → sendText received), idle: one at a time",
            "p50 < 20 ms", e2e_cell("e2e_idle", 0.020)),
        Row(f"4. End to end, open loop: {sizes.stream_rate:g} msg/s over {sizes.stream_chats} "
            f"chats ({sizes.stream_messages} msgs)", "p50 < 50 ms",
            e2e_cell("e2e_stream", 0.050)),
        Row(f"5. Ack p50 at 1 connection: 1 tenant vs {sizes.tenants:,} (a random one per "
            "message)", "within 20%", tenants_cell),
        Row("6. Web process peak RSS (every web process of a run)", "< 100 MiB",
            peak_cell("web_peak_mib", 100)),
        Row(f"7. Ack throughput, 16 connections ({sizes.burst:,} webhooks): `serve` (WITH "
            "worker) · `serve --no-worker` (web alone)", "", throughput_cell(16)),
        Row(f"7. Ack throughput, 64 connections ({sizes.burst:,} webhooks): `serve` (WITH "
            "worker) · `serve --no-worker` (web alone)", "", throughput_cell(64)),
        Row("7. /health during every serve, every scenario", "always 200", health_cell),
        Row("7. Log lines at ERROR or above (and tracebacks) in serve output", "0", errors_cell),
    ]  # fmt: skip


def table(results: dict[str, Figures], sizes: Sizes) -> str:
    header = ["Measurement", "Target"]
    for label in results:
        header += [label, ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(sizes):
        cells = [row.label, row.target]
        for figures in results.values():
            cells += list(row.cell(figures))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_run(figures: Figures, name: str, show: Callable[[float], str] = ms) -> str:
    return ", ".join(show(value) for value in figures.values.get(name, []))


def notes(results: dict[str, Figures], logs: dict[str, dict[str, Counter[str]]]) -> list[str]:
    lines = []
    for label, figures in results.items():
        lines += [
            f"- {label}, per run: scenario 1 all replies "
            f"{per_run(figures, 'conversations_all')}, acked "
            f"{per_run(figures, 'conversations_ack')}; CPU per answered message "
            f"{per_run(figures, 'cpu_per_answer')}, bare "
            f"{per_run(figures, 'cpu_bare_per_request')}; tenants 1 / many "
            f"{per_run(figures, 'tenants_1_p50')} / {per_run(figures, 'tenants_many_p50')}.",
            f"- {label}: bare Django app at 16 connections: "
            f"{figures.median('bare_16_rps') or 0:.0f} req/s; web alone p50/p99 at 64: "
            f"{ms(figures.median('web_alone_64_p50'))}/{ms(figures.median('web_alone_64_p99'))}.",
        ]
        bad = {code: n for code, n in figures.statuses.items() if not 200 <= code < 300}
        named = {NO_ANSWER: "no answer", TIMED_OUT: "timeout"}
        shown = ", ".join(f"{named.get(code, code)} x{n}" for code, n in sorted(bad.items()))
        lines.append(f"- {label}: every webhook of every scenario: "
                     f"{sum(figures.statuses.values()):,} sent, {shown or 'all 2xx'}.")  # fmt: skip
        others = figures.median("others_cpu")
        if others is not None:
            lines.append(f"- {label}: processes outside the benchmark (PostgreSQL's included) "
                         f"used {others:.2f} cores on average meanwhile.")  # fmt: skip
        for problem in dict.fromkeys(figures.problems):
            lines.append(f"- {label}: {problem}")
        for kind, found in logs.get(label, {}).items():
            for line, count in found.most_common(8):
                lines.append(f"- {label} {kind}, {count}x: `{line[:200]}`")
    return lines


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    sys.stdout.write(text)
