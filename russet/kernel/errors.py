"""Error kinds: what went wrong, in terms every surface can map, and no HTTP status in sight.

Services and stores raise these (or domain errors deriving from exactly one of them, e.g.
`class TokenError(AbmError, Invalid)`); `russet.web.errors` maps a kind to an HTTP status, and
`russet.cli.errors` to an exit code and one line. Keeping the numbers out of here is what lets the
REST API, the CLI and the console answer the same case the same way without one importing another.

The scheme is inheritance: a raised error is an instance of exactly one kind below. A domain
family that spans several kinds (ABM, Apps and Books) has a kindless family base that callers
catch (`except AbmError`) and one small subclass per kind it raises (`AbmNotFound`...).

This module imports nothing from `russet`.
"""

from __future__ import annotations

from datetime import datetime


class RussetError(Exception):
    """Base of Russet's own errors; `str()` is a sentence for people saying what and why."""


class Invalid(RussetError):
    """The input is wrong in itself: malformed, out of range, unknown option, unusable file."""


class NotFound(RussetError):
    """Nothing exists with the id or name given."""


class Conflict(RussetError):
    """The input is fine but the current state forbids it: exists already, already revoked, not
    connected, taken over by another MDM, changed meanwhile, needs --force."""


class Refused(RussetError):
    """Policy or permission says no, whatever the state (a deliberate refusal, not a mistake)."""


class TooLarge(RussetError):
    """The input is larger than Russet accepts."""


class Unavailable(RussetError):
    """Cannot be done now; trying later may work. `retry_at`, when known, is when."""

    def __init__(self, message: str, *, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class UpstreamFailed(RussetError):
    """Apple (or another peer) could not be reached or answered wrongly; Russet's input was fine."""


KINDS: tuple[type[RussetError], ...] = (
    Invalid, NotFound, Conflict, Refused, TooLarge, Unavailable, UpstreamFailed
)


def kind_of(exc: RussetError) -> type[RussetError]:
    """The kind `exc` is an instance of; a kindless RussetError counts as `Invalid`."""
    for kind in type(exc).__mro__:
        if kind in KINDS:
            return kind
    return Invalid
