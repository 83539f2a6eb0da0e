"""Errors of the ABM integration, each with a message for people and an error kind.

`AbmError` is the family callers catch; what a surface answers follows from the kind each class
derives from (`russet.kernel.errors`): a bare `AbmError` or `TokenError` is bad input (`Invalid`).
"""

from __future__ import annotations

from datetime import datetime

from russet.kernel.errors import Conflict, Invalid, NotFound, RussetError, Unavailable, UpstreamFailed


class AbmError(RussetError):
    """Something about an ABM connection cannot be done; the message says what and why."""


class AbmNotFound(AbmError, NotFound):
    """No ABM connection, device or profile with the name or id given."""


class AbmConflict(AbmError, Conflict):
    """The connection's state forbids it: not connected, changed meanwhile, exists already."""


class AbmUpstreamFailed(AbmError, UpstreamFailed):
    """Apple could not be reached."""


class TokenError(AbmError):
    """A server token (.p7m) that cannot be used: another key's, corrupt, or expired."""


class TokenExpired(TokenError, Conflict):
    """The stored server token has expired: a renewed one must be loaded first."""


class AppleError(AbmError):
    """Apple answered with an error (`code` is Apple's error code when it gave one).

    A family: what is raised is one of its kinded subclasses below.
    """

    def __init__(self, message: str, *, http_status: int | None, code: str | None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code


class AppleFailed(AppleError, UpstreamFailed):
    """Apple answered with an error that is not about Russet's input (5xx, 401/403, 404...)."""


class AppleRejected(AppleError, Invalid):
    """Apple answered 400: the request as the admin asked it is not acceptable to Apple."""


class CursorError(AppleFailed):
    """Apple refused the device-list cursor (INVALID_CURSOR, EXPIRED_CURSOR, EXHAUSTED_CURSOR...)."""


class Throttled(AppleError, Unavailable):
    """Apple asked Russet to slow down; `retry_at` is when it may try again."""

    def __init__(
        self, message: str, *, http_status: int | None, code: str | None, retry_at: datetime
    ) -> None:
        super().__init__(message, http_status=http_status, code=code)
        self.retry_at = retry_at


class ProtocolError(AbmError, UpstreamFailed):
    """Apple's answer is not what the protocol says (not JSON, missing or mistyped fields).

    Nothing of such an answer is applied.
    """
