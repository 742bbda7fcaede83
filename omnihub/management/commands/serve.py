import sys
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from omnihub.supervision import Supervisor


class Command(BaseCommand):
    help = "Serve the web app (uvicorn) and a worker together; Ctrl-C stops both."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default=settings.API_HOST)
        parser.add_argument("--port", type=int, default=settings.API_PORT)
        parser.add_argument("--no-worker", action="store_true", help="Serve the web app alone.")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        web = [sys.executable, "-m", "uvicorn", "omnihub.asgi:application", "--host", host,
               "--port", str(port), "--lifespan", "off", "--no-access-log",
               # An idle keep-alive connection is closed, and past this many connections new
               # ones get a 503 at once: clients that connect and wait cost a bounded number
               # of sockets. (Bodies have their own deadline, in omnihub.asgi.)
               "--timeout-keep-alive", str(settings.WEB_KEEP_ALIVE_SECONDS),
               "--limit-concurrency", str(settings.WEB_MAX_CONNECTIONS)]  # fmt: skip
        worker = None if no_worker else [sys.executable, "-m", "omnihub.cli", "worker"]
        self._print_banner(host, port)
        status = Supervisor(web, worker).run()
        if status:
            raise CommandError(f"the web server stopped (exit status {status})")

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
