"""What a failed call to the agent or to Evolution means: one `OutboundError` that says whether a
retry can help and whether the request may already have reached the server.

Its message names the server by scheme, host and port only, never a header, userinfo, path or
query string, so it is safe to log and to store. aiohttp's own exceptions quote the full URL
(and a proxy's credentials), so none of their words is used, and none is chained to ours.
"""

import os
import socket
import ssl

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError
from yarl import URL

# Worth another try later: the server is busy, restarting or rate-limiting us (plus every 5xx).
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# A gateway answering these may have passed the request on before it lost the server.
GATEWAY_LOST_STATUSES = frozenset({502, 504})


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


def origin(url: str | URL) -> str:
    """scheme://host:port of `url`: what error messages may show of it."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return "an invalid URL"
    if not parsed.scheme or not parsed.host:
        return "an invalid URL"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = parsed.port
    return f"{parsed.scheme}://{host}:{port}" if port else f"{parsed.scheme}://{host}"


def refused(what: str, status: int, text: str) -> OutboundError:
    """The server (`what`) answered `status`, not a 2xx; `text` is the start of its answer."""
    return OutboundError(
        f"{what} answered {status}: {text}",
        retryable=status >= 500 or status in RETRYABLE_STATUSES,
        status_code=status,
        maybe_delivered=status in GATEWAY_LOST_STATUSES,
    )


def invalid(what: str) -> OutboundError:
    return OutboundError(
        f"cannot call {what}: the URL, a header or the body is not valid", retryable=False
    )


def timed_out(what: str, deadline: float, *, maybe_sent: bool) -> OutboundError:
    return OutboundError(
        f"{what} did not answer within {deadline:g} s", retryable=True, maybe_delivered=maybe_sent
    )


def too_large(what: str, max_bytes: int, status: int) -> OutboundError:
    return OutboundError(
        f"{what} answered more than {max_bytes // 1024} KiB",
        retryable=False,
        status_code=status,
        maybe_delivered=True,
    )


def broken(
    error: aiohttp.ClientError, what: str, *, maybe_sent: bool, status: int | None
) -> OutboundError:
    """The OutboundError for an exchange with `what` that raised `error`."""
    if isinstance(error, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return invalid(what)
    if isinstance(
        error,
        aiohttp.ClientConnectorError
        | aiohttp.ConnectionTimeoutError
        | aiohttp.ClientHttpProxyError,
    ):
        # No connection, so nothing of the request was sent.
        return OutboundError(f"cannot reach {what}: {_reason(error)}", retryable=True)
    if isinstance(error, aiohttp.ClientPayloadError) and isinstance(
        error.__cause__, ContentEncodingError
    ):
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


def _reason(error: aiohttp.ClientError) -> str:
    """What went wrong in words that quote nothing of the request: the operating system's
    reason where there is one ("connection refused"), else the kind of failure."""
    cause = error.os_error if isinstance(error, aiohttp.ClientConnectorError) else error
    if isinstance(cause, ssl.SSLError):
        return f"TLS failed: {(cause.reason or 'handshake').lower().replace('_', ' ')}"
    if isinstance(cause, socket.gaierror) and cause.strerror:
        return cause.strerror.lower()  # "name or service not known"
    if isinstance(cause, OSError) and cause.errno:
        # asyncio's own strerror quotes the address ("Connect call failed (...)").
        return os.strerror(cause.errno).lower()
    if isinstance(error, aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the answer ended before it was complete"
    if isinstance(error, aiohttp.ClientHttpProxyError):
        return f"the proxy refused the tunnel ({error.status})"
    if isinstance(error, aiohttp.ClientResponseError):
        return "its answer broke the HTTP protocol"
    return type(error).__name__
