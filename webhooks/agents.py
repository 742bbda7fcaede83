"""Client of the Agents API: one call, POST {base_url}/api/v1/agent/{agent}/run.

Takes every tenant-specific value as an argument; the connections it reuses (webhooks.outbound)
carry no cookies or headers, so no state can pass from one tenant to another.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from webhooks import outbound

# Worth another try later: the agent may be back by then.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class AgentError(Exception):
    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMedia:
    mime_type: str
    data: str | None = None
    media_url: str | None = None
    name: str = ""
    alt_text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRequest:
    message_content: str
    message_type: str
    session_name: str
    phone_number: str | None
    user_name: str
    whatsapp_id: str
    media: list[AgentMedia] = field(default_factory=list)
    message_limit: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReply:
    text: str
    latency_ms: int


def run_agent(
    *, base_url: str, api_key: str, agent: str, request: AgentRequest, timeout: float
) -> AgentReply:
    started = time.monotonic()
    try:
        response = outbound.post_json(
            f"{base_url}/api/v1/agent/{agent}/run",
            body=_body(request),
            headers={"x-api-key": api_key},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        raise AgentError(f"the agent did not answer within {timeout:g} s", retryable=True) from None
    except httpx.TransportError as error:
        raise AgentError(f"cannot reach the agent: {error}", retryable=True) from None
    latency_ms = round((time.monotonic() - started) * 1000)
    if response.is_error:
        raise AgentError(
            f"the agent answered {response.status_code}: {response.text[:300]}",
            retryable=response.status_code in RETRYABLE_STATUSES,
            status_code=response.status_code,
        )
    try:
        reply = response.json().get("message") or ""
    except (ValueError, AttributeError):
        raise AgentError(
            f"the agent answered something that is not a JSON object: {response.text[:300]}",
            retryable=False,
            status_code=response.status_code,
        ) from None
    return AgentReply(text=str(reply), latency_ms=latency_ms)


def _body(request: AgentRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_content": request.message_content,
        "message_type": request.message_type,
        "session_name": request.session_name,
        "user": {
            "phone_number": request.phone_number,
            "email": None,
            "user_data": {
                "name": request.user_name,
                "whatsapp_id": request.whatsapp_id,
                "source": "whatsapp",
            },
        },
        "message_limit": request.message_limit,
    }
    if request.media:
        body["media_contents"] = [_media(item) for item in request.media]
    return body


def _media(media: AgentMedia) -> dict[str, Any]:
    item: dict[str, Any] = {"mime_type": media.mime_type}
    if media.data is not None:
        item["data"] = media.data
    else:
        item["media_url"] = media.media_url
    if media.name:
        item["name"] = media.name
    if media.alt_text:
        item["alt_text"] = media.alt_text
    return item
