import io
from unittest import mock

from django.core.management import call_command


def test_serve_closes_idle_connections_and_bounds_how_many_it_keeps(settings):
    settings.WEB_KEEP_ALIVE_SECONDS = 7
    settings.WEB_MAX_CONNECTIONS = 123

    with mock.patch("omnihub.management.commands.serve.Supervisor") as supervisor:
        supervisor.return_value.run.return_value = 0
        call_command("serve", "--no-worker", stdout=io.StringIO())

    web, worker = supervisor.call_args.args
    assert web[web.index("--timeout-keep-alive") + 1] == "7"
    assert web[web.index("--limit-concurrency") + 1] == "123"
    assert worker is None
