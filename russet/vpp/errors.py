"""Errors of the Apps and Books integration, each with a message for people and the HTTP status
the API answers with. They are `OperationError`s, so the CLI prints them as one line."""

from __future__ import annotations

from typing import Any

from russet.operations import OperationError


class VppError(OperationError):
    """Something about an Apps and Books location cannot be done; the message says what and why."""


class TokenError(VppError):
    """A content token (.vpptoken) that cannot be used: corrupt, incomplete or expired."""


class AppleError(VppError):
    """Apple answered with an error; `number` is Apple's errorNumber when it gave one.

    A synchronous error means Apple queued nothing, so nothing of the request is kept.
    """

    def __init__(
        self, message: str, *, http_status: int | None, number: int | None, status: int = 502
    ) -> None:
        super().__init__(message, status)
        self.http_status = http_status
        self.number = number


class TokenRejected(AppleError):
    """Apple refused the location's token (expired 9621, revoked 9625, unknown 9601, 9722)."""


class Throttled(AppleError):
    """Apple kept answering 429 (9646) after the gateway's backoff; try again later."""


class TakenOver(AppleError):
    """Apple reports another MDM's `mdmInfo` for the location: Russet stops writing to it."""


class ProtocolError(VppError):
    """Apple's answer is not what the protocol says; nothing of it is applied."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 502)


class TakeoverNeeded(VppError):
    """Another MDM manages the location; taking it over needs the admin's confirmation."""

    def __init__(self, name: str, owner: dict[str, Any]) -> None:
        who = owner.get("name") or "an unnamed MDM"
        super().__init__(
            f"Apps and Books location {name!r} is managed by another MDM ({who!r}, id {owner.get('id')!r}); "
            "only one MDM should manage a location. Confirm the take-over (`russet vpp add ... --take-over`, "
            'or "take_over": true in the API) and Russet will replace its notification settings',
            409,
        )
        self.owner = owner
