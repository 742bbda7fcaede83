import signal
import subprocess
import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the web app (uvicorn) and the task worker together; Ctrl-C stops both."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default=settings.API_HOST)
        parser.add_argument("--port", type=int, default=settings.API_PORT)
        parser.add_argument("--no-worker", action="store_true", help="Serve the web app alone.")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        web = [sys.executable, "-m", "uvicorn", "omnihub.asgi:application", "--host", host,
               "--port", str(port), "--lifespan", "off", "--no-access-log"]  # fmt: skip
        commands = [web] if no_worker else [web, [sys.executable, "-m", "omnihub.cli", "worker"]]
        self._print_banner(host, port)
        children = [subprocess.Popen(command) for command in commands]  # noqa: S603
        # Ctrl-C reaches the children through the terminal; SIGTERM is passed on by hand.
        signal.signal(signal.SIGTERM, lambda *_: [child.terminate() for child in children])  # type: ignore[func-returns-value]  # the list is thrown away
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait()

    def _print_banner(self, host: str, port: int) -> None:
        base = settings.OMNIHUB_PUBLIC_URL or f"http://{host}:{port}"
        key_state = (
            "set in .env (OMNIHUB_API_KEY)" if settings.OMNIHUB_API_KEY else "NOT SET: API off"
        )
        self.stdout.write(
            f"\nOmnihub on {base}\n"
            f"  admin        {base}/admin/\n"
            f"  API docs     {base}/api/v1/docs\n"
            f"  API key      {key_state}\n"
            f"  webhooks     {base}/webhook/evolution/<instance name>\n"
            f"               {base}/webhook/evolution (the default instance)\n"
            f"  health       {base}/health\n"
            "Ctrl-C stops the web server and the worker.\n"
        )
