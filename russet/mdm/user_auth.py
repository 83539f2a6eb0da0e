"""UserAuthenticate: whether Russet takes on a macOS network or mobile user (Apple §a.4.4).

Apple's handshake: the first message (no DigestResponse) is answered 200 with a
`DigestChallenge`, or 410 to decline the user for this login session; a zero-length challenge
means "no authentication needed". A second message with `DigestResponse` is answered 200 with an
`AuthToken`, empty when the digest is rejected. Never 401, which would unenroll the whole Mac.

Apple does not document how the device computes the digest, and Russet holds no user
passwords, so it never sends a non-empty challenge. The two honest answers are configurable
(RUSSET_USER_AUTHENTICATE): `decline` (410, the default) or `allow` (manage the user without
asking for a password).
"""

from __future__ import annotations

import plistlib
from typing import Any

from russet.mdm.errors import Gone

MODES = ("decline", "allow")


def user_authenticate_reply(mode: str, msg: dict[str, Any]) -> bytes:
    if mode != "allow":
        raise Gone("this server does not manage macOS network or mobile users (RUSSET_USER_AUTHENTICATE)")
    if "DigestResponse" in msg:
        # Russet issued no challenge, so no digest can be right: Apple's answer for a rejected one.
        return plistlib.dumps({"AuthToken": ""})
    return plistlib.dumps({"DigestChallenge": ""})
