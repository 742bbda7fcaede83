"""Where and on what the benchmark ran: machine, versions, commit; and the children's logs."""

import os
import platform
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Log records at ERROR or above, and tracebacks; warnings are counted apart.
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|^Traceback |^[\w.]+(Error|Exception): ")
WARNING_LINE = re.compile(r"\bWARNING\b|Warning: ")


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.partition(":")[2].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown CPU",
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    ram_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024 / 1024
    return (
        f"{model}, {os.cpu_count()} cores, {ram_gib:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}"
    )


def versions(databases: dict[str, str]) -> str:
    def installed(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    packages = ", ".join(installed(name) for name in ("Django", "uvicorn", "aiohttp", "psycopg"))
    return f"Python {platform.python_version()}, {packages}; " + "; ".join(databases.values())


def scan_logs(logs: list[Path], pattern: re.Pattern[str]) -> Counter[str]:
    """Lines of `logs` that match `pattern`, with timestamps dropped and numbers folded, so
    one line repeated counts once with its number of times."""
    found: Counter[str] = Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if pattern.search(line):
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


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
