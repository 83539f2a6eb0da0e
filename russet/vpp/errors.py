"""Errors of the Apps and Books integration, each with a message for people and an error kind.

`VppError` is the family callers catch; what a surface answers follows from the kind each class
derives from (`russet.kernel.errors`): a bare `VppError` or `TokenError` is bad input (`Invalid`).
"""

from __future__ import annotations

from typing import Any

from russet.kernel.errors import Conflict, Invalid, NotFound, RussetError, Unavailable, UpstreamFailed


class VppError(RussetError):
    """Something about an Apps and Books location cannot be done; the message says what and why."""


class VppNotFound(VppError, NotFound):
    """No location, asset, user, device or install with the name or id given."""


class VppConflict(VppError, Conflict):
    """The location's or subject's state forbids it: not connected, not registered, taken."""


class VppUpstreamFailed(VppError, UpstreamFailed):
    """Apple could not be reached."""


class TokenError(VppError):
    """A content token (.vpptoken) that cannot be used: corrupt, incomplete or expired."""


class TokenExpired(TokenError, Conflict):
    """The stored content token has expired: a new one must be loaded first."""


class AppleError(VppError):
    """Apple answered with an error; `number` is Apple's errorNumber when it gave one.

    A synchronous error means Apple queued nothing, so nothing of the request is kept.
    A family: what is raised is one of its kinded subclasses below.
    """

    def __init__(self, message: str, *, http_status: int | None, number: int | None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.number = number


class AppleFailed(AppleError, UpstreamFailed):
    """Apple answered with an error that is not about Russet's input."""


class AppleRejected(AppleError, Invalid):
    """Apple answered 400: the request as the admin asked it is not acceptable to Apple."""


class TokenRejected(AppleError, Conflict):
    """Apple refused the location's token (expired 9621, revoked 9625, unknown 9601, 9722)."""


class Throttled(AppleError, Unavailable):
    """Apple kept answering 429 (9646) after the gateway's backoff; try again later."""


class TakenOver(AppleError, Conflict):
    """Apple reports another MDM's `mdmInfo` for the location: Russet stops writing to it."""


class ProtocolError(VppError, UpstreamFailed):
    """Apple's answer is not what the protocol says; nothing of it is applied."""


class TakeoverNeeded(VppError, Conflict):
    """Another MDM manages the location; taking it over needs the admin's confirmation."""

    def __init__(self, name: str, owner: dict[str, Any]) -> None:
        who = owner.get("name") or "an unnamed MDM"
        super().__init__(
            f"Apps and Books location {name!r} is managed by another MDM ({who!r}, id {owner.get('id')!r}); "
            "only one MDM should manage a location. Confirm the take-over (`russet vpp add ... --take-over`, "
            'or "take_over": true in the API) and Russet will replace its notification settings'
        )
        self.owner = owner
