"""The HTTP transport of the Agents and Evolution clients: pooled async clients, a few per worker.

Every call has one deadline for the whole exchange (connect, send, the full answer) and a cap on
how much of the answer it reads, and every failure becomes one `OutboundError` that says whether
a retry can help and whether the request may already have reached the server.

The client holds nothing of a tenant: its cookie jar refuses every cookie, it has no default
credentials, and each call brings its own headers. Error messages name the server by scheme, host
and port only, never a header, userinfo or query string, so they are safe to log and to store.
httpx's own INFO lines quote full URLs: settings keep the `httpx` and `httpcore` loggers at WARNING.
Proxy settings come from the environment (HTTPS_PROXY, NO_PROXY), as with any httpx client.
"""

import asyncio
import json
import os
import socket
import ssl
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

# Idle connections are dropped before common servers' own keep-alive timeouts (gunicorn's is
# 2 s, uvicorn's and Node's 5 s), so a request is rarely sent on a connection being closed.
KEEPALIVE_SECONDS = 1.0
CONNECT_SECONDS = 5.0
# A bound on open sockets, far above what one worker runs at once; waiting for a free one
# counts against the call's deadline like everything else.
MAX_CONNECTIONS = 1000
MAX_KEEPALIVE_CONNECTIONS = 100
EXCERPT_CHARS = 300
# Worth another try later: the server is busy, restarting or rate-limiting us (plus every 5xx).
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# A gateway answering these may have passed the request on before it lost the server.
GATEWAY_LOST_STATUSES = frozenset({502, 504})


# What callers outside the integrations name the shared client by: only these modules import httpx.
HttpClient = httpx.AsyncClient


class OutboundError(Exception):
    """A call to the agent or to Evolution failed. `maybe_delivered` means the request may have
    reached the server although no complete answer came back: do not resend it blindly."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.maybe_delivered = maybe_delivered


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    status_code: int
    data: Any  # the parsed JSON; None when the body is empty or not JSON
    text: str = ""  # the start of the body, for error messages


def new_client(*, share: int = 1, tls: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client shared by calls of every tenant; with `share`, one of that many clients that
    split a worker's connections between them (see webhooks.worker.process), best given one
    `tls` context (tls_context()) for them all: each takes tens of milliseconds to make."""
    return httpx.AsyncClient(
        verify=tls or tls_context(),
        # No cookie is ever stored, so none can be sent with another tenant's call.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"user-agent": "omnihub"},
        limits=httpx.Limits(
            max_connections=max(1, MAX_CONNECTIONS // share),
            max_keepalive_connections=max(1, MAX_KEEPALIVE_CONNECTIONS // share),
            keepalive_expiry=KEEPALIVE_SECONDS,
        ),
        # Reads, writes and pool waits have no timeout of their own: each call's deadline
        # bounds the whole exchange, which a per-read timeout would not (a server may trickle).
        timeout=httpx.Timeout(connect=CONNECT_SECONDS, read=None, write=None, pool=None),
        follow_redirects=False,
    )


def tls_context() -> ssl.SSLContext:
    """Certificates verified as httpx verifies them (SSL_CERT_FILE and SSL_CERT_DIR apply)."""
    return httpx.create_ssl_context()


async def post_json(
    client: httpx.AsyncClient,
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
    client: httpx.AsyncClient,
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
    where = origin(url)
    progress = _Progress()
    # Failures are raised outside the `except` blocks, so they carry no __context__: httpx's
    # own exceptions may quote a header value (h11's "Illegal header value b'...'").
    try:
        request = client.build_request(
            method,
            url,
            json=None if method == "GET" else body,
            headers=headers,
            extensions={"trace": progress.trace},
        )
    except (httpx.InvalidURL, ValueError, TypeError):
        failure = _invalid(f"{service} at {where}")
    else:
        status: int | None = None
        try:
            async with asyncio.timeout(deadline):
                response = await client.send(request, stream=True)
                status = response.status_code
                try:
                    content = await _read_at_most(response, max_bytes, f"{service} at {where}")
                finally:
                    await response.aclose()
            return _answer(status, content)
        except (TimeoutError, httpx.RequestError) as error:
            failure = _failure(
                error,
                f"{service} at {where}",
                deadline,
                maybe_sent=progress.maybe_sent,
                status=status,
            )
    raise failure


def raise_for_status(answer: JsonAnswer, *, url: str, service: str) -> None:
    status = answer.status_code
    if 200 <= status < 300:
        return
    raise OutboundError(
        f"{service} at {origin(url)} answered {status}: {answer.text}",
        retryable=status >= 500 or status in RETRYABLE_STATUSES,
        status_code=status,
        maybe_delivered=status in GATEWAY_LOST_STATUSES,
    )


def origin(url: str) -> str:
    """scheme://host:port of `url`: what error messages may show of it."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an invalid URL"
    if not parsed.scheme or not parsed.host:
        return "an invalid URL"
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}:{port}" if port else f"{parsed.scheme}://{host}"


def _invalid(what: str) -> OutboundError:
    return OutboundError(
        f"cannot call {what}: the URL, a header or the body is not valid", retryable=False
    )


def _failure(
    error: TimeoutError | httpx.RequestError,
    what: str,
    deadline: float,
    *,
    maybe_sent: bool,
    status: int | None,
) -> OutboundError:
    """The OutboundError for an exchange that raised `error`; `what` names the server."""
    if isinstance(error, TimeoutError):
        return OutboundError(
            f"{what} did not answer within {deadline:g} s",
            retryable=True,
            maybe_delivered=maybe_sent,
        )
    if isinstance(error, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        # Found only when sending (e.g. a header value h11 refuses); a retry cannot help.
        return _invalid(what)
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return OutboundError(f"cannot reach {what}: {_reason(error)}", retryable=True)
    if isinstance(error, httpx.DecodingError):
        return OutboundError(
            f"{what} answered with a body that cannot be decoded",
            retryable=False,
            status_code=status,
            maybe_delivered=True,
        )
    return OutboundError(
        f"{what} broke off the call: {_reason(error)}",
        retryable=True,
        maybe_delivered=maybe_sent,
    )


class _Progress:
    """Follows httpcore's trace events to learn whether sending the request began.
    Reference: https://www.python-httpx.org/advanced/extensions/#trace"""

    def __init__(self) -> None:
        self.traced = False
        self.sending = False

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        self.traced = True
        # The CONNECT of an HTTPS proxy tunnel carries this trace too; it is not our request.
        if event.endswith(".send_request_headers.started"):
            request = info.get("request")
            if getattr(request, "method", b"") != b"CONNECT":
                self.sending = True

    @property
    def maybe_sent(self) -> bool:
        # A transport that reports no events (a test double, say) cannot tell: assume sent.
        return self.sending or not self.traced


async def _read_at_most(response: httpx.Response, max_bytes: int, what: str) -> bytes:
    """The whole body, or OutboundError once it passes `max_bytes`: the rest is never read."""
    too_large = OutboundError(
        f"{what} answered more than {max_bytes // 1024} KiB",
        retryable=False,
        status_code=response.status_code,
        maybe_delivered=True,
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
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


def _reason(error: httpx.RequestError) -> str:
    """What went wrong in words that quote nothing of the request: the operating system's
    reason where there is one ("connection refused"), else the kind of failure."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, socket.gaierror) and cause.strerror:
            return cause.strerror.lower()  # "name or service not known"
        if isinstance(cause, OSError) and cause.errno:
            # asyncio's own strerror quotes the address ("Connect call failed (...)").
            return os.strerror(cause.errno).lower()
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.RemoteProtocolError):
        # h11's words about what the server sent, e.g. "Server disconnected without sending
        # a response."; they quote the answer, never the request.
        return str(error) or "it broke the HTTP protocol"
    return type(error).__name__
