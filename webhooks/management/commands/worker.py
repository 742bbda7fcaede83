from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from webhooks.worker.process import Worker


class Command(BaseCommand):
    help = "Answer WhatsApp messages: run a worker (SIGTERM or Ctrl-C stops it cleanly)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--concurrency", type=int, default=settings.WORKER_CONCURRENCY)
        parser.add_argument("--interval", type=float, default=settings.WORKER_POLL_INTERVAL)

    def handle(self, *args: Any, concurrency: int, interval: float, **options: Any) -> None:
        Worker(
            concurrency=concurrency,
            poll_interval=interval,
            lease_seconds=settings.LEASE_SECONDS,
            grace_seconds=settings.WORKER_GRACE_SECONDS,
        ).run()
