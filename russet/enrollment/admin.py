"""Enrollment tokens and the log of profiles handed out, for the CLI and the API alike.

Like `russet.operations`, these take typed input, raise error kinds with a message for people,
and return JSON-ready dicts.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from russet.abm.profiles import ade_url  # /mdm/enroll: GET with a token (OTA), POST MachineInfo (ADE)
from russet.enrollment.tokens import EnrollmentRequestLog, EnrollmentToken, EnrollmentTokenStore
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.operations import MAX_DB_INT
from russet.runtime import Russet
from russet.storage.db import utcnow

DEFAULT_LIFETIME = "7d"
MAX_LIFETIME = timedelta(days=365)
MAX_USES = 1_000_000
MAX_NOTE_CHARS = 200
_DURATION = re.compile(r"^(\d{1,6})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_lifetime(text: str) -> timedelta:
    """`90m`, `12h`, `7d`: how long a token stays valid (at most a year)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise Invalid(f"expires {text!r}: expected a duration such as 30m, 12h or 7d")
    lifetime = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if not timedelta(minutes=1) <= lifetime <= MAX_LIFETIME:
        raise Invalid(f"expires {text!r}: a token lives from 1 minute to 365 days")
    return lifetime


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _describe(token: EnrollmentToken, now: datetime) -> dict[str, Any]:
    return {
        "id": token.id,
        "prefix": token.prefix,
        "note": token.note,
        "status": token.status(now),
        "uses": token.uses,
        "max_uses": token.max_uses,
        "created_at": _iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
    }


def enrollment_url(russet: Russet, token: str) -> str:
    return f"{ade_url(russet.settings.public_url)}?token={token}"


def create_token(
    russet: Russet, *, expires: str | None = None, uses: int | None = None, note: str | None = None
) -> dict[str, Any]:
    """A new token; the answer is the only place its clear value and URL ever appear."""
    lifetime = parse_lifetime(expires or DEFAULT_LIFETIME)
    if uses is not None and not 1 <= uses <= MAX_USES:
        raise Invalid(f"uses must be between 1 and {MAX_USES}, got {uses}")
    if note is not None:
        note = note.strip() or None
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise Invalid(f"a note is at most {MAX_NOTE_CHARS} characters")
    token, stored = EnrollmentTokenStore(russet.storage.engine).create(lifetime, uses, note)
    return {**_describe(stored, utcnow()), "token": token, "url": enrollment_url(russet, token)}


def list_tokens(russet: Russet) -> list[dict[str, Any]]:
    now = utcnow()
    return [_describe(t, now) for t in EnrollmentTokenStore(russet.storage.engine).list()]


def revoke_token(russet: Russet, token_id: int) -> dict[str, Any]:
    store = EnrollmentTokenStore(russet.storage.engine)
    if not 1 <= token_id <= MAX_DB_INT or store.get(token_id) is None:  # no such id can exist
        raise NotFound(f"no enrollment token with id {token_id}")
    if not store.revoke(token_id):
        raise Conflict(f"enrollment token {token_id} was already revoked")
    found = store.get(token_id)
    assert found is not None  # revoked, not deleted
    return _describe(found, utcnow())


def recent_requests(russet: Russet, limit: int = 100) -> list[dict[str, Any]]:
    """Profiles handed out at /mdm/enroll, newest first."""
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000")
    rows = EnrollmentRequestLog(russet.storage.engine).recent(limit)
    return [
        {
            **row,
            "at": _iso(row["at"]),
            "identity_issued_at": _iso(row["identity_issued_at"]),
        }
        for row in rows
    ]
