"""Client of the Agents API: one call, POST {base_url}/api/v1/agent/{agent}/run.

Every tenant-specific value (server, key, agent, deadline) is an argument; the shared client
(webhooks.integrations.transport) carries no cookies or credentials between tenants.
"""

# Reference: README.md, "The Agents API": the tenants' Agents API has no public docs; this is
# the contract Omnihub has always spoken, request and answer.

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from webhooks.integrations.transport import HttpClient, OutboundError, exchange_json, post_json

SERVICE = "the agent"
MAX_ANSWER_BYTES = 1024 * 1024
MAX_PROBE_ANSWER_BYTES = 64 * 1024
QUOTE_CHARS = 200


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
    text: str  # "" when the agent chose to send nothing
    latency_ms: int


async def run_agent(
    client: HttpClient,
    *,
    base_url: str,
    api_key: str,
    agent: str,
    request: AgentRequest,
    deadline: float,
) -> AgentReply:
    """Ask `agent` to answer `request`; raises OutboundError when no usable reply comes."""
    started = time.monotonic()
    answer = await post_json(
        client,
        _run_url(base_url, agent),
        body=_body(request),
        headers={"x-api-key": api_key},
        deadline=deadline,
        max_bytes=MAX_ANSWER_BYTES,
        service=SERVICE,
    )
    latency_ms = round((time.monotonic() - started) * 1000)
    if not isinstance(answer.data, dict) or "message" not in answer.data:
        # Not the Agents API's answer (a proxy's page, another API): retrying will not change
        # it, and sending it on to WhatsApp would be wrong.
        raise OutboundError(
            f"{SERVICE} answered without a message: {answer.text[:QUOTE_CHARS]}",
            retryable=False,
            status_code=answer.status_code,
        )
    message = answer.data["message"]
    return AgentReply(text="" if message is None else str(message), latency_ms=latency_ms)


async def probe_agent(
    client: HttpClient, *, base_url: str, api_key: str, agent: str, deadline: float
) -> int:
    """The status the agent's run endpoint answers an empty request with, which runs nothing:
    a request without a message is refused as invalid (422) once the key is accepted, and 401
    or 403 when it is not. OutboundError when the server cannot be reached."""
    answer = await exchange_json(
        client,
        _run_url(base_url, agent),
        body={},
        headers={"x-api-key": api_key},
        deadline=deadline,
        max_bytes=MAX_PROBE_ANSWER_BYTES,
        service=SERVICE,
    )
    return answer.status_code


def _run_url(base_url: str, agent: str) -> str:
    return f"{base_url}/api/v1/agent/{quote(agent, safe='')}/run"


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
