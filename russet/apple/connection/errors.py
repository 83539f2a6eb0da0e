"""The errors of an Apple connection (ABM/ASM, Apps and Books): one family, by kind.

Both features name the same situations (no such connection, its state forbids it, Apple could
not be reached, a token that cannot be used, Apple answered an error, throttling, an answer
that breaks the protocol), so the classes are defined once here; `russet.abm.errors` and
`russet.vpp.errors` give them their historical names (`AbmNotFound`, `VppConflict`...) and add
only what is theirs (a cursor error, a take-over). The messages say which feature and
connection. `AppleConnectionError` is kindless: raised bare it is bad input (`Invalid`).
"""

from __future__ import annotations

from datetime import datetime

from russet.kernel.errors import Conflict, Invalid, NotFound, RussetError, Unavailable, UpstreamFailed

__all__ = [  # what `from russet.apple.connection.errors import *` gives a feature's errors module
    "AppleConnectionError",
    "AppleError",
    "AppleFailed",
    "AppleRejected",
    "AppleUnreachable",
    "ConnectionConflict",
    "ConnectionNotFound",
    "ProtocolError",
    "Throttled",
    "TokenError",
    "TokenExpired",
]


class AppleConnectionError(RussetError):
    """Something about an Apple connection cannot be done; the message says what and why."""


class ConnectionNotFound(AppleConnectionError, NotFound):
    """No connection (or device, profile, asset, person...) with the name or id given."""


class ConnectionConflict(AppleConnectionError, Conflict):
    """The connection's state forbids it: not connected, changed meanwhile, exists already."""


class AppleUnreachable(AppleConnectionError, UpstreamFailed):
    """Apple could not be reached."""


class TokenError(AppleConnectionError):
    """A token file that cannot be used: another key's, corrupt, incomplete or expired."""


class TokenExpired(TokenError, Conflict):
    """The stored token has expired: a renewed one must be loaded first."""


class AppleError(AppleConnectionError):
    """Apple answered with an error: `code` is ABM/ASM's error code, `number` Apps and Books'
    errorNumber, when Apple gave one. A family: what is raised is one of its kinded subclasses."""

    def __init__(
        self, message: str, *, http_status: int | None, code: str | None = None, number: int | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.number = number


class AppleFailed(AppleError, UpstreamFailed):
    """Apple answered with an error that is not about Russet's input (5xx, 401/403, 404...)."""


class AppleRejected(AppleError, Invalid):
    """Apple answered 400: the request as the admin asked it is not acceptable to Apple."""


class Throttled(AppleError, Unavailable):
    """Apple asked Russet to slow down; `retry_at`, when Apple said, is when it may try again."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None,
        code: str | None = None,
        number: int | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, number=number)
        self.retry_at = retry_at


class ProtocolError(AppleConnectionError, UpstreamFailed):
    """Apple's answer is not what the protocol says; nothing of it is applied."""
