"""The results: one markdown table (medians over runs, with targets and PASS/FAIL) and notes."""

import os
import platform
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench.scenarios import ACK_CONCURRENCY, Figures, Sizes

Cell = tuple[str, str]  # (value, PASS/FAIL or "")
# Log records at WARNING or above, and the last line of each traceback (the exception).
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROBLEM_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|^[\w.]+(Error|Exception|Warning): ")


@dataclass(frozen=True)
class Row:
    label: str
    target: str
    cell: Callable[[Figures], Cell]


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    millis = seconds * 1000
    if millis >= 1000:
        return f"{seconds:.2f} s"
    return f"{millis:.1f} ms" if millis < 10 else f"{millis:.0f} ms"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "FAIL")


def ack_cell(kind: str, concurrency: int) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        name = f"{kind}_{concurrency}"
        rps = figures.median(f"{name}_rps")
        if rps is None:
            return "n/a", ""
        text = f"{rps:.0f} req/s"
        ok = None
        bare = figures.median(f"bare_{concurrency}_rps")
        if kind == "hook" and bare:
            text += f" ({rps / bare:.0%})"
            ok = rps >= 0.6 * bare
        p50, p99 = figures.median(f"{name}_p50"), figures.median(f"{name}_p99")
        return f"{text} · p50 {ms(p50)} · p99 {ms(p99)}", verdict(ok)

    return cell


def health_cell(group: str) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        report = figures.health.get(group)
        if report is None or report.answered + report.failed == 0:
            return "n/a", ""
        total = report.answered + report.failed
        text = f"{report.answered}/{total} answered 200, slowest {ms(report.slowest)}"
        return text, verdict(report.ok)

    return cell


def latency_cell(name: str, limit: float | None) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        p50, p99 = figures.median(f"{name}_p50"), figures.median(f"{name}_p99")
        if p50 is None:
            return "n/a", "" if limit is None else "FAIL"
        rate = figures.median(f"{name}_rate")
        text = f"p50 {ms(p50)} · p99 {ms(p99)}" + (f" at {rate:.0f} msg/s" if rate else "")
        return text, verdict(None if limit is None else p50 < limit)

    return cell


def seconds_cell(name: str, limit: float | None) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        value = figures.median(name)
        if value is None:
            return "not finished", "FAIL" if limit else ""
        runs = figures.runs(name)
        text = f"{value:.1f} s" + (f" ({runs} run{'s' * (runs > 1)})" if runs else "")
        return text, verdict(value < limit if limit else None)

    return cell


def tenants_cell(tenants: int) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        value, one = figures.median(f"tenants_{tenants}_p50"), figures.median("tenants_1_p50")
        if value is None:
            return "n/a", ""
        if tenants == 1 or not one:
            return f"p50 {ms(value)}", ""
        return f"p50 {ms(value)} ({value / one - 1:+.0%})", verdict(value <= one * 1.2)

    return cell


def memory_cell(process: str, limit: float) -> Callable[[Figures], Cell]:
    def cell(figures: Figures) -> Cell:
        values = figures.values.get(f"{process}_peak_mib")
        if not values:
            return "n/a", ""
        return f"{figures.median(f'{process}_peak_mib'):.0f} MiB (max {max(values):.0f})", verdict(
            max(values) < limit
        )

    return cell


def statuses_cell(figures: Figures) -> Cell:
    bad = {status: n for status, n in figures.webhook_statuses.items() if not 200 <= status < 300}
    total = sum(figures.webhook_statuses.values())
    if not bad:
        return f"0 of {total}", "PASS"
    shown = ", ".join(
        f"{'no answer' if status == 0 else status} x{n}" for status, n in sorted(bad.items())
    )
    return f"{sum(bad.values())} of {total}: {shown}", "FAIL"


def problems_cell(figures: Figures) -> Cell:
    return (
        (f"{len(figures.problems)} (see notes)", "FAIL") if figures.problems else ("none", "PASS")
    )


def concurrency_flag(worker_concurrency: int | None) -> str:
    return "" if worker_concurrency is None else f" --concurrency {worker_concurrency}"


def rows(sizes: Sizes, worker_concurrency: int | None) -> list[Row]:
    table: list[Row] = []
    for concurrency in ACK_CONCURRENCY:
        requests = sizes.ack_requests[concurrency]
        table.append(Row(f"1. Ack c={concurrency}, bare view ({requests} req)", "baseline",
                         ack_cell("bare", concurrency)))  # fmt: skip
        table.append(Row(f"1. Ack c={concurrency}, webhook ({requests} req)",
                         "≥ 60% of bare req/s", ack_cell("hook", concurrency)))  # fmt: skip
    slow = f"{sizes.slow_conversations} x {sizes.slow_agent_delay:g} s agent"
    loops = concurrency_flag(worker_concurrency).strip() or "default concurrency"
    table += [
        Row("1. /health during and right after ack runs", "always 200", health_cell("ack")),
        Row(f"2. E2E idle ({sizes.idle_messages} msgs, {sizes.idle_gap * 1000:.0f} ms apart)",
            "p50 < 40 ms", latency_cell("e2e_idle", 0.040)),
        Row(f"2. E2E back-to-back ({sizes.stream_messages} msgs, {sizes.burst_chats} chats, "
            f"one every {1000 / sizes.stream_rate:.0f} ms without waiting for answers)",
            "p50 < 100 ms", latency_cell("e2e_stream", 0.100)),
        Row(f"2. E2E burst, capacity ({sizes.burst_messages} msgs, {sizes.burst_chats} chats, "
            f"{sizes.burst_concurrency} at a time as fast as answered)",
            "", latency_cell("e2e_burst", None)),
        Row(f"3. Slow agents {slow}, 1 worker process ({loops})",
            "< 15 s", seconds_cell("slow_1", 15.0)),
        Row(f"3. Slow agents {slow}, 2 worker processes", "", seconds_cell("slow_2", None)),
        Row("2-3. /health during pipeline runs", "always 200", health_cell("pipeline")),
        Row("4. Ack p50 (c=1), 1 tenant", "baseline", tenants_cell(1)),
        Row(f"4. Ack p50 (c=1), {sizes.many_tenants:,} tenants, a random one per message",
            "≤ 1 tenant + 20%",
            tenants_cell(sizes.many_tenants)),
        Row("5. Peak RSS (VmHWM), web process, runs 1-3", "< 100 MiB", memory_cell("web", 100)),
        Row("5. Peak RSS (VmHWM), one worker process, runs 2-3", "< 150 MiB",
            memory_cell("worker", 150)),
        Row("Webhook answers other than 2xx, all runs", "0", statuses_cell),
        Row("Missing/duplicate replies, log lines ≥ WARNING", "none", problems_cell),
    ]  # fmt: skip
    return table


def table(results: dict[str, Figures], sizes: Sizes, worker_concurrency: int | None) -> str:
    header = ["Measurement", "Target"]
    for label in results:
        header += [label, ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(sizes, worker_concurrency):
        cells = [row.label, row.target]
        for figures in results.values():
            cells += list(row.cell(figures))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.partition(":")[2].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown CPU",
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    ram_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024 / 1024
    return (
        f"{os.cpu_count()} CPUs ({model}), {ram_gib:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}"
    )


def versions(databases: dict[str, str]) -> str:
    packages = ", ".join(
        f"{name} {version(name)}" for name in ("Django", "django-tasks-db", "uvicorn", "psycopg")
    )
    return f"Python {platform.python_version()}, {packages}; " + "; ".join(databases.values())


def notes(results: dict[str, Figures], log_problems: dict[str, Counter[str]]) -> list[str]:
    lines = []
    for label, figures in results.items():
        cpu = ", ".join(
            f"c={c}: web {figures.median(f'bare_web_cpu_{c}') or 0:.0%}/"
            f"{figures.median(f'hook_web_cpu_{c}') or 0:.0%}, generator "
            f"{figures.median(f'bare_{c}_gen_cpu') or 0:.0%}/"
            f"{figures.median(f'hook_{c}_gen_cpu') or 0:.0%}"
            for c in ACK_CONCURRENCY
        )
        lines.append(f"- {label}: CPU during ack runs (of one core, bare/webhook): {cpu}.")
        memory = ", ".join(
            f"c={c}: {figures.median(f'web_peak_mib_after_{c}') or 0:.0f} MiB"
            for c in ACK_CONCURRENCY
        )
        lines.append(f"- {label}: web peak RSS after the ack runs at {memory}.")
        per_message = figures.median("worker_cpu_per_message")
        if per_message is not None:
            lines.append(f"- {label}: worker CPU per answered message (burst): {ms(per_message)}.")
        for name in sorted(name for name in figures.values if name.startswith("tenants_")):
            runs = ", ".join(ms(value) for value in figures.values[name])
            lines.append(f"- {label}: {name.replace('_', ' ')} per run: {runs}.")
        others = figures.median("others_cpu")
        if others is not None:
            lines.append(
                f"- {label}: other processes (PostgreSQL server included) used {others:.2f} of "
                f"{os.cpu_count()} cores on average meanwhile"
            )
        for problem in dict.fromkeys(figures.problems):
            lines.append(f"- {label}: {problem}")
        for line, count in log_problems.get(label, Counter()).most_common(8):
            lines.append(f"- {label} logs, {count}x: `{line[:200]}`")
    return lines


def scan_logs(directory: Path) -> Counter[str]:
    """Lines at WARNING or above and exceptions in the children's logs, numbers folded."""
    found: Counter[str] = Counter()
    for log in sorted(directory.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if PROBLEM_LINE.search(line):
                line = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", "", line)
                found[f"{log.stem.partition('-')[2]}: {re.sub(r'\d+', 'N', line)}"] += 1
    return found


def code_version(root: Path) -> str:
    """The commit under test, marked when files outside bench/ differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!bench"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown"
    edited = [line[3:] for line in changed if line.strip()]
    return commit + (f" + uncommitted changes to {', '.join(edited)}" if edited else "")


def changed_between(root: Path, before: str, after: str) -> str:
    """Describe what changed outside bench/ between two code_version() answers."""
    first, last = before.split()[0], after.split()[0]
    files = subprocess.run(
        ["git", "diff", "--name-only", first, last, "--", ".", ":!bench"],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout.split()
    touched = ", ".join(files) if files else "nothing outside bench/"
    return f"{before} at the start, {after} at the end (changed meanwhile: {touched})"


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all processes, all cores)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    sys.stdout.write(text)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
