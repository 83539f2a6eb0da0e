"""Errors of the Apps and Books integration: the Apple-connection family under its names, and
what only Apps and Books has (a refused token, another MDM taking the location over).

The family (`russet.apple.connection.errors`) is shared with ABM, and every class of it can be
imported from here too; these messages say "Apps and Books location ...". `VppError` is what
callers catch; a bare `VppError` or `TokenError` is bad input (`Invalid`). A synchronous error of
Apple's means Apple queued nothing, so nothing of the request is kept.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from russet.apple.connection import errors as family
from russet.apple.connection.admin import apple_errors as _apple_errors
from russet.apple.connection.errors import *  # noqa: F403 -- the family's classes are Apps and Books' too
from russet.kernel.errors import Conflict

VppError = family.AppleConnectionError
VppNotFound = family.ConnectionNotFound
VppConflict = family.ConnectionConflict
VppUpstreamFailed = family.AppleUnreachable

# The gateway's and the registry's refusals, as Apps and Books errors: `with apple_errors(name):`.
NOT_CONNECTED = "Apps and Books location {name} is not connected; load its token with `russet vpp add`"
apple_errors = partial(_apple_errors, NOT_CONNECTED)


class TokenRejected(family.AppleError, Conflict):
    """Apple refused the location's token (expired 9621, revoked 9625, unknown 9601, 9722)."""


class TakenOver(family.AppleError, Conflict):
    """Apple reports another MDM's `mdmInfo` for the location: Russet stops writing to it."""


class TakeoverNeeded(VppConflict):
    """Another MDM manages the location; taking it over needs the admin's confirmation."""

    def __init__(self, name: str, owner: dict[str, Any]) -> None:
        who = owner.get("name") or "an unnamed MDM"
        super().__init__(
            f"Apps and Books location {name!r} is managed by another MDM ({who!r}, id {owner.get('id')!r}); "
            "only one MDM should manage a location. Confirm the take-over (`russet vpp add ... --take-over`, "
            'or "take_over": true in the API) and Russet will replace its notification settings'
        )
        self.owner = owner
