"""Errors of the ABM integration, each with a message for people and the HTTP status the API uses.

They are `OperationError`s, so the CLI prints them as one line and the API answers with them.
"""

from __future__ import annotations

from datetime import datetime

from russet.operations import OperationError


class AbmError(OperationError):
    """Something about an ABM connection cannot be done; the message says what and why."""


class TokenError(AbmError):
    """A server token (.p7m) that cannot be used: another key's, corrupt, or expired."""


class AppleError(AbmError):
    """Apple answered with an error (`code` is Apple's error code when it gave one)."""

    def __init__(self, message: str, *, http_status: int | None, code: str | None, status: int = 502) -> None:
        super().__init__(message, status)
        self.http_status = http_status
        self.code = code


class CursorError(AppleError):
    """Apple refused the device-list cursor (INVALID_CURSOR, EXPIRED_CURSOR, EXHAUSTED_CURSOR...)."""


class Throttled(AppleError):
    """Apple asked Russet to slow down; `retry_at` is when it may try again."""

    def __init__(
        self, message: str, *, http_status: int | None, code: str | None, retry_at: datetime
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, status=503)
        self.retry_at = retry_at


class ProtocolError(AbmError):
    """Apple's answer is not what the protocol says (not JSON, missing or mistyped fields).

    Nothing of such an answer is applied.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, 502)
