"""`omnihub serve`'s supervisor: a worker that dies is restarted, the web keeps serving."""

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_worker_that_dies_is_restarted_while_the_web_goes_on(tmp_path):
    starts = tmp_path / "worker-starts"
    web = [sys.executable, "-c", "import time; time.sleep(60)"]
    # Each start leaves a line, then the worker dies at once.
    worker = [
        sys.executable,
        "-c",
        f"open({str(starts)!r}, 'a').write('x\\n'); raise SystemExit(3)",
    ]
    script = (
        "import sys; from omnihub.supervision import Supervisor; "
        f"sys.exit(Supervisor({web!r}, {worker!r}).run())"
    )
    supervisor = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            starts.exists() and len(starts.read_text().splitlines()) >= 2
        ):
            assert supervisor.poll() is None, "the supervisor stopped with its worker"
            time.sleep(0.05)
        assert len(starts.read_text().splitlines()) >= 2, "the worker was not restarted"
    finally:
        supervisor.send_signal(signal.SIGTERM)
        _, errors = supervisor.communicate(timeout=20)

    assert supervisor.returncode == 0
    assert "the worker stopped (exit status 3)" in errors
    assert "restarting it in 1 s" in errors
