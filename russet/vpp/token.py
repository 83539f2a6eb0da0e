"""The content token (`.vpptoken`) of an Apps and Books location (§f.1).

The file is base64 text of a JSON object `{token, expDate, orgName}`. Apple wants the whole file
content, as downloaded, as the Bearer credential on every call (except `service/config`), so it
is that text Russet seals and sends; the decoded fields tell the expiry and the organisation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from russet.apple import bounded_json
from russet.apple.connection.tokens import ExpiryWarning
from russet.vpp.errors import TokenError

EXPIRY_WARNING_DAYS = 30
MAX_TOKEN_BYTES = 16 * 1024  # a content token is a few hundred bytes


@dataclass(frozen=True)
class ContentToken:
    bearer: str  # the file's content (outer base64), sent as `Authorization: Bearer ...`
    expires_at: datetime
    org_name: str

    @property
    def sha256(self) -> str:
        """Recognises the same file loaded twice without keeping it in the clear."""
        return hashlib.sha256(self.bearer.encode()).hexdigest()


_HELP = "download it from Apple Business/School Manager (Preferences or Settings, Apps and Books)"


def parse_token(data: bytes, *, now: datetime | None = None) -> ContentToken:
    """The token in a `.vpptoken` file, or TokenError naming what is wrong with it."""
    if len(data) > MAX_TOKEN_BYTES:
        raise TokenError(f"a content token file is a few hundred bytes; this one is {len(data)} bytes")
    text = b"".join(data.split())
    if not text:
        raise TokenError("the content token file is empty")
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TokenError(
            f"this is not an Apps and Books content token (expected base64 text, the .vpptoken file); {_HELP}"
        ) from None
    try:
        fields = bounded_json.loads(decoded)
    except (ValueError, UnicodeDecodeError):
        raise TokenError("the content token is corrupt: its decoded content is not JSON") from None
    if not isinstance(fields, dict):
        raise TokenError("the content token is corrupt: its JSON is not an object")
    missing = [
        k for k in ("token", "expDate", "orgName") if not isinstance(fields.get(k), str) or not fields[k]
    ]
    if missing:
        raise TokenError(
            f"the content token lacks {', '.join(missing)}; the file is corrupt or not a .vpptoken"
        )
    expires_at = parse_time(fields["expDate"])
    if expires_at is None:
        raise TokenError(f"the content token's expDate {fields['expDate']!r} is not an ISO 8601 time")
    if expires_at <= (now or datetime.now(UTC)):
        raise TokenError(f"this content token expired on {expires_at.isoformat()}; {_HELP} again")
    return ContentToken(text.decode("ascii"), expires_at, fields["orgName"])


def parse_time(value: object) -> datetime | None:
    """Apple's ISO 8601 times (`2030-11-08T22:33:22+0000`, `...Z`), in UTC; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves year 1 or 9999 out of range
        return None


# The sentence for the admin from EXPIRY_WARNING_DAYS before the token expires (or after).
expiry_warning = ExpiryWarning(
    token="content token",
    expired=f"{_HELP} and run `russet vpp add` again",
    soon=f"{_HELP} and load it with `russet vpp add NAME FILE`",
    days=EXPIRY_WARNING_DAYS,
)
