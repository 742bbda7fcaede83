"""The HTTP transport of the Agents and Evolution clients: one pooled aiohttp session per worker.

Every call has one deadline for the whole exchange (connect, send, the full answer) and a cap on
how much of the answer it reads, and every failure becomes one `OutboundError`
(webhooks.integrations.failures) that says whether a retry can help and whether the request may
already have reached the server.

The session holds nothing of a tenant: its cookie jar ignores every cookie, it has no default
credentials, and each call brings its own headers. Proxy settings come from the environment
(HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY); certificates are checked against certifi's
bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set, as they were under httpx.
"""

# Reference: https://docs.aiohttp.org/en/stable/client_reference.html
# Reference: https://docs.aiohttp.org/en/stable/tracing_reference.html

import asyncio
import json
import os
import re
import ssl
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import certifi
from yarl import URL

from webhooks.integrations import failures

# Re-exported: the clients and the worker know them as transport's.
from webhooks.integrations.failures import OutboundError as OutboundError
from webhooks.integrations.failures import origin as origin

# Idle connections are dropped before common servers' own keep-alive timeouts (gunicorn's is
# 2 s, uvicorn's and Node's 5 s), so a request is rarely sent on a connection being closed.
KEEPALIVE_SECONDS = 1.0
CONNECT_SECONDS = 5.0
# A bound on the connections in use, far above what one worker runs at once; waiting for a
# free one counts against the call's deadline like everything else. Idle ones close after
# KEEPALIVE_SECONDS.
MAX_CONNECTIONS = 1000
EXCERPT_CHARS = 300
# RFC 9110's field name (a token) and a field value of visible ASCII, spaces and tabs: aiohttp
# would send other characters (UTF-8) or refuse only once it has begun writing the request.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
# Lower case first, as curl and urllib read them.
PROXY_VARIABLES = {
    "http": ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
    "https": ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
}


# What callers outside the integrations name the shared client by.
HttpClient = aiohttp.ClientSession


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    status_code: int
    data: Any  # the parsed JSON; None when the body is empty or not JSON
    text: str = ""  # the start of the body, for error messages


@asynccontextmanager
async def new_client() -> AsyncIterator[aiohttp.ClientSession]:
    """A session shared by calls of every tenant, closed when the block ends."""
    tracing = aiohttp.TraceConfig()
    tracing.on_request_headers_sent.append(_headers_sent)
    connector = aiohttp.TCPConnector(
        limit=MAX_CONNECTIONS,
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_SECONDS,
        ssl=tls_context(),
    )
    async with aiohttp.ClientSession(
        connector=connector,
        # Keeps no cookie, so none can be sent with another tenant's call.
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"user-agent": "omnihub"},
        # Reads have no timeout of their own: each call's deadline bounds the whole exchange,
        # which a per-read timeout would not (a server may trickle).
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_SECONDS),
        trace_configs=[tracing],
        # aiohttp's trust_env would also send ~/.netrc's credentials to the hosts it lists, and
        # hands every call to two threads: proxies are read by _proxy_for instead.
        trust_env=False,
    ) as session:
        yield session


def tls_context() -> ssl.SSLContext:
    """Certificates verified as httpx verified them: SSL_CERT_FILE or SSL_CERT_DIR when set,
    else certifi's bundle, so a host without a system store verifies all the same."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    return ssl.create_default_context(cafile=certifi.where())


async def post_json(
    client: aiohttp.ClientSession,
    url: str,
    *,
    body: Any,
    headers: dict[str, str],
    deadline: float,
    max_bytes: int,
    service: str,
) -> JsonAnswer:
    """POST `body` as JSON and return the 2xx answer; anything else raises OutboundError.
    `service` names the server in messages ("the agent", "Evolution")."""
    answer = await exchange_json(
        client,
        url,
        body=body,
        headers=headers,
        deadline=deadline,
        max_bytes=max_bytes,
        service=service,
    )
    raise_for_status(answer, url=url, service=service)
    return answer


async def exchange_json(
    client: aiohttp.ClientSession,
    url: str,
    *,
    body: Any,
    headers: dict[str, str],
    deadline: float,
    max_bytes: int,
    service: str,
    method: str = "POST",
) -> JsonAnswer:
    """Like post_json, but returns the answer whatever its status, for a client that reads
    some error answers itself before `raise_for_status`. A GET sends no body."""
    target = _parsed(url)
    what = f"{service} at {origin(url if target is None else target)}"
    prepared = _prepared(target, method, body, headers)
    if target is None or prepared is None:
        raise failures.invalid(what)
    data, headers = prepared
    progress = _Progress()
    status: int | None = None
    # Failures are raised outside the `except` blocks, so they carry no __context__: aiohttp's
    # own exceptions quote the URL, query string included.
    try:
        async with asyncio.timeout(deadline):
            response = await client.request(
                method,
                target,
                data=data,
                headers=headers,
                allow_redirects=False,
                proxy=_proxy_for(target),
                trace_request_ctx=progress,
            )
            status = response.status
            try:
                content = await _read_at_most(response, max_bytes, what)
            except BaseException:
                response.close()  # never back to the pool with an answer half read
                raise
        return _answer(status, content)
    except aiohttp.ClientError as error:
        failure = failures.broken(error, what, maybe_sent=progress.sending, status=status)
    except TimeoutError:
        failure = failures.timed_out(what, deadline, maybe_sent=progress.sending)
    except ValueError:  # a request aiohttp will not make (credentials in the URL and a header)
        failure = failures.invalid(what)
    raise failure


def raise_for_status(answer: JsonAnswer, *, url: str, service: str) -> None:
    if not 200 <= answer.status_code < 300:
        raise failures.refused(f"{service} at {origin(url)}", answer.status_code, answer.text)


def _parsed(url: str) -> URL | None:
    try:
        return URL(url)
    except (ValueError, TypeError):
        return None


def _prepared(
    url: URL | None, method: str, body: Any, headers: dict[str, str]
) -> tuple[bytes | None, dict[str, str]] | None:
    """The body (compact UTF-8 JSON) and the headers to send, or None when the URL, a header or
    the body cannot be sent. A GET sends no body."""
    if url is None or url.scheme not in PROXY_VARIABLES or not url.raw_host:
        return None
    try:
        if not all(
            HEADER_NAME.fullmatch(n) and HEADER_VALUE.fullmatch(v) for n, v in headers.items()
        ):
            return None
        if method == "GET":
            return None, headers
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode(), {"content-type": "application/json", **headers}
    except (ValueError, TypeError):  # includes a lone surrogate, which UTF-8 cannot carry
        return None


def _proxy_for(url: URL) -> str | None:
    """The proxy the environment names for `url`, read per call: a handful of lookups, where
    aiohttp's trust_env would cost two thread hops per call."""
    proxy = next(filter(None, map(os.environ.get, PROXY_VARIABLES[url.scheme])), None)
    if proxy is None or urllib.request.proxy_bypass(url.raw_host or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class _Progress:
    """How far one call got: `sending` once its request's headers began to go out."""

    __slots__ = ("sending",)

    def __init__(self) -> None:
        self.sending = False


async def _headers_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    """From here on the server may have the request. aiohttp traces only the requests made
    through the session: a proxy's CONNECT, which carries nothing of ours, is not one."""
    if isinstance(progress := context.trace_request_ctx, _Progress):
        progress.sending = True


async def _read_at_most(response: aiohttp.ClientResponse, max_bytes: int, what: str) -> bytes:
    """The whole body, or OutboundError once it passes `max_bytes`: the rest is never read."""
    if (response.content_length or 0) > max_bytes:
        raise failures.too_large(what, max_bytes, response.status)
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > max_bytes:
            raise failures.too_large(what, max_bytes, response.status)
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status_code: int, content: bytes) -> JsonAnswer:
    # Four bytes per character at most, so this slice holds the excerpt's characters.
    text = content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    try:
        data = json.loads(content) if content.strip() else None
    except ValueError:  # includes a body that is not UTF-8
        data = None
    return JsonAnswer(status_code=status_code, data=data, text=text)
