"""Nothing of one tenant's call goes with another's: the shared client keeps no cookie, sends no
credentials or headers of its own, and each call brings its own headers."""

from tests.fakes import FakeServer, serve
from tests.webhooks.integrations.calls import post, post_in_turn

# What HTTP/1.1 and JSON need, and the client's name: nothing that could be a tenant's.
PROTOCOL_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "content-length",
    "content-type",
    "user-agent",
}


def test_it_keeps_no_cookie_a_server_sets():
    with serve(FakeServer(headers={"Set-Cookie": "session=tenant-a; Path=/"})) as fake:
        post_in_turn((fake.url, {}), (fake.url, {}))

    assert "cookie" not in fake.requests[1].headers


def test_a_cookie_one_tenant_s_server_sets_never_reaches_another_s():
    # Both on 127.0.0.1: a cookie jar that kept cookies would send it to the other port too.
    with (
        serve(FakeServer(headers={"Set-Cookie": "session=tenant-a; Path=/"})) as first,
        serve(FakeServer()) as second,
    ):
        post_in_turn((first.url, {}), (second.url, {}))

    assert "cookie" not in second.requests[0].headers


def test_it_sends_only_the_headers_of_each_call():
    with serve(FakeServer()) as fake:
        post_in_turn(
            (fake.url, {"apikey": "tenant-a-key"}), (fake.url, {"x-api-key": "tenant-b-key"})
        )

    first, second = (request.headers for request in fake.requests)
    assert first["apikey"] == "tenant-a-key"
    assert "apikey" not in second
    assert second["x-api-key"] == "tenant-b-key"
    assert set(second) == PROTOCOL_HEADERS | {"x-api-key"}


def test_it_sends_no_credentials_a_netrc_file_lists(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login omnihub password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    with serve(FakeServer()) as fake:
        post(fake.url)

    assert "authorization" not in fake.requests[0].headers
