"""The one module that sends webhooks: an HTTP POST to a receiver the organisation registered.

It is allowed to open connections (tests/test_gateway.py) because those receivers are the
organisation's own; it is never used for Apple (the service refuses Apple's hosts as receivers),
whose every call goes through `russet.apple.gateway` and its ledger. No redirects are followed,
so a receiver cannot send Russet's events somewhere it was not registered for.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    error: str


class Sender:
    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Sent:
        import httpx  # ~5 MB, in the one worker that delivers webhooks, when it first does

        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False, trust_env=False) as client:
                response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Sent(None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Sent(response.status_code, "")
        return Sent(response.status_code, f"HTTP {response.status_code} {response.reason_phrase}"[:500])
