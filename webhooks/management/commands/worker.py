from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from webhooks.worker import WorkerProcess


class Command(BaseCommand):
    help = "Answer queued WhatsApp messages: run the task worker (Ctrl-C stops it cleanly)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--concurrency", type=int, default=settings.WORKER_CONCURRENCY)
        parser.add_argument("--interval", type=float, default=settings.WORKER_POLL_INTERVAL)

    def handle(self, *args: Any, concurrency: int, interval: float, **options: Any) -> None:
        WorkerProcess(concurrency=concurrency, poll_interval=interval).run()
