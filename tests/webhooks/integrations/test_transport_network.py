"""The transport's TLS verification and its proxies from the environment, against local servers:
a self-signed certificate (tests.tls), and fakes playing HTTP proxies."""

import certifi
import pytest

from tests.fakes import FakeServer, closed_port, serve
from tests.misbehaving import serve_misbehaving, silent
from tests.tls import self_signed, server_tls
from tests.webhooks.integrations.calls import failure, post
from webhooks.integrations.transport import PROXY_VARIABLES, tls_context


@pytest.fixture(autouse=True)
def _no_proxy_but_the_test_s(monkeypatch):
    for name in {name for names in PROXY_VARIABLES.values() for name in names}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


def test_it_refuses_a_server_whose_certificate_it_does_not_trust(tmp_path):
    cert, key = self_signed(tmp_path)

    with serve(FakeServer(), tls=server_tls(cert, key)) as fake:
        error = failure(fake.url)

    assert str(error) == (
        f"cannot reach Evolution at {fake.url}: TLS failed: certificate verify failed"
    )
    assert error.retryable is True
    assert error.maybe_delivered is False
    assert fake.requests == []


def test_it_trusts_the_certificates_ssl_cert_file_names(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))

    with serve(FakeServer(default=(200, {"ok": True})), tls=server_tls(cert, key)) as fake:
        answer = post(fake.url)

    assert answer.data == {"ok": True}
    assert fake.requests[0].path == "/"


def test_without_ssl_cert_file_or_dir_it_trusts_certifi_s_bundle(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with open(certifi.where()) as bundle:
        in_bundle = bundle.read().count("-----BEGIN CERTIFICATE-----")

    assert len(tls_context().get_ca_certs()) == in_bundle


def test_it_calls_through_the_proxy_the_environment_names(monkeypatch):
    with serve(FakeServer(default=(200, {"via": "proxy"}))) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        answer = post("http://agents.test/api/v1/agent/sales/run")

    assert answer.data == {"via": "proxy"}
    [request] = proxy.requests
    assert request.path == "http://agents.test/api/v1/agent/sales/run"


def test_it_calls_the_hosts_no_proxy_names_directly(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    with serve(FakeServer()) as fake:
        post(fake.url)

    assert len(fake.requests) == 1


def test_a_proxy_tunnel_that_never_opens_means_nothing_was_sent(monkeypatch):
    # The proxy takes the CONNECT and says nothing: the request itself was never written.
    with serve_misbehaving(silent) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        error = failure("https://agents.test/run", deadline=0.3)

    assert str(error) == "Evolution at https://agents.test:443 did not answer within 0.3 s"
    assert error.retryable is True
    assert error.maybe_delivered is False


def test_a_proxy_that_refuses_the_tunnel_means_nothing_was_sent(monkeypatch):
    # A fake without CONNECT answers it 501, as a proxy that forbids the tunnel would refuse.
    with serve(FakeServer()) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        error = failure("https://agents.test/run")

    assert str(error) == (
        "cannot reach Evolution at https://agents.test:443: the proxy refused the tunnel (501)"
    )
    assert error.retryable is True
    assert error.maybe_delivered is False


def test_a_proxy_that_never_answers_a_plain_request_may_have_passed_it_on(monkeypatch):
    with serve_misbehaving(silent) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        error = failure("http://agents.test/run", deadline=0.3)

    assert error.retryable is True
    assert error.maybe_delivered is True
