"""The base of a feature's Apple client: one connection's calls through the gateway.

ABM/ASM and Apps and Books speak different dialects (a session header and cursors; a Bearer
token, a rate limit and `errorNumber` in any body), which their clients keep; what they share is
here: the `Reply` a call returns, sending a JSON body through the gateway, recording what an
answer told Russet in the ledger, and the first half of the sentence an error of Apple's becomes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from russet.apple import bounded_json
from russet.apple.connection.errors import AppleError, AppleFailed, AppleRejected, ProtocolError
from russet.apple.gateway import AppleGateway, Call, Datum


@dataclass
class Reply:
    """One answer: the call as recorded, the gateway's response, and its decoded JSON body."""

    call: Call
    response: Any  # the gateway's httpx.Response (features import no HTTP client: see test_gateway)
    body: Any = None


class AppleClient:
    """A connection's client: a feature sets `service`, `label` and `json_type`."""

    service: ClassVar[str]  # the gateway's and the ledger's name for the feature: "abm", "vpp"
    label: ClassVar[str]  # how error messages name the feature: "ABM", "Apps and Books"
    json_type: ClassVar[str] = "application/json"

    def __init__(
        self,
        gateway: AppleGateway,
        name: str,
        base_url: str,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._gateway = gateway
        self.name = name
        self._base = base_url.rstrip("/")
        self._sleep = sleep

    def _call(self, endpoint: str, purpose: str, sent: Sequence[Datum]) -> Call:
        return Call(self.service, self.name, endpoint, purpose, list(sent))

    async def _send(
        self,
        call: Call,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str],
        params: dict[str, str] | None = None,
        retry: bool = True,
    ) -> Any:
        """One request through the gateway, `body` (if any) as compact JSON."""
        sending = {"Accept": self.json_type, **headers}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            sending["Content-Type"] = self.json_type
        return await self._gateway.request(
            call, method, url, content=content, params=params, headers=sending, retry=retry
        )

    def record(self, reply: Reply, data: Sequence[Datum]) -> None:
        """Ledger rows for what an answer told Russet (what was sent is recorded by the gateway)."""
        self._gateway.received(replace(reply.call, sent=()), reply.response, data)

    def _answered(self, endpoint: str, status: int, shown: object | None) -> str:
        """The start of an error's sentence: which connection, which call, Apple's status and code."""
        code = f" {shown}" if shown is not None else ""
        return f"{self.label} {self.name!r}: {endpoint} answered {status}{code}"


def decode_json(content: bytes, endpoint: str) -> Any:
    """An answer's JSON body, bounded; ProtocolError when it is not JSON."""
    try:
        return bounded_json.loads(content)
    except ValueError as exc:
        raise ProtocolError(f"Apple's answer to {endpoint} is not valid JSON ({exc})") from None


def rejected_or_failed(status: int) -> type[AppleError]:
    """Apple's 400 is about the admin's request (Invalid); anything else is Apple's failure."""
    return AppleRejected if status == 400 else AppleFailed
