"""The HTTP connections of the Evolution and Agents clients: one pool per process.

Connections are kept open between calls (keep-alive) and shared by the worker's threads; httpx's
client is thread-safe. A connection is reused only for the server it was opened to, and the
client holds nothing of a tenant: its cookie jar refuses every cookie, it has no default
credentials, and each call brings its own headers. Proxy settings come from the environment
(HTTPS_PROXY, NO_PROXY), as with any httpx client.
"""

from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

# Idle connections are dropped before common servers' own keep-alive timeouts (gunicorn's is
# 2 s, uvicorn's and Node's 5 s), so a request is rarely sent on a connection being closed.
KEEPALIVE_SECONDS = 1.0

_client = httpx.Client(
    # No cookie is ever stored, so none can be sent with another tenant's call.
    cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    headers={"user-agent": "omnihub"},
    limits=httpx.Limits(
        max_connections=None, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_SECONDS
    ),
    follow_redirects=False,
)


def post_json(url: str, *, body: Any, headers: dict[str, str], timeout: float) -> httpx.Response:
    """POST `body` as JSON; the response is read in full. Raises httpx.TransportError (and its
    subclass httpx.TimeoutException) when no response arrives within `timeout` seconds."""
    return _client.post(url, json=body, headers=headers, timeout=timeout)
