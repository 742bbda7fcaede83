"""The HTTP connections of the Evolution and Agents clients: one pool per process.

Connections are kept open between calls (keep-alive) and shared by the worker's threads; httpx's
pool is thread-safe. A connection is reused only for the server it was opened to, and the pool
holds nothing of a tenant: no cookie jar (requests go to the transport, not through a client
that would keep cookies), no default headers, no credentials. Every call brings its own.
"""

from typing import Any

import httpx

# Built once: httpx would build a new TLS context (~20 ms of CPU) for every connection pool.
TLS_CONTEXT = httpx.create_ssl_context()

# Idle connections are dropped before common servers' own keep-alive timeouts (uvicorn's and
# Node's are 5 s), so a request is rarely sent on a connection the server is closing.
KEEPALIVE_SECONDS = 2.0

_pool = httpx.HTTPTransport(
    verify=TLS_CONTEXT,
    limits=httpx.Limits(
        max_connections=None, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_SECONDS
    ),
)


def post_json(url: str, *, body: Any, headers: dict[str, str], timeout: float) -> httpx.Response:
    """POST `body` as JSON; the response is read in full. Raises httpx.TransportError (and its
    subclass httpx.TimeoutException) when no response arrives within `timeout` seconds."""
    request = httpx.Request(
        "POST",
        url,
        json=body,
        headers={"user-agent": "omnihub", **headers},
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    response = _pool.handle_request(request)
    try:
        response.read()
    finally:
        response.close()
    return response
