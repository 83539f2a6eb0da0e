"""Errors of the ABM integration: the Apple-connection family under ABM's names, and the cursor.

The family (`russet.apple.connection.errors`) is shared with Apps and Books, and every class of it
can be imported from here too; ABM's messages say "ABM connection ...". `AbmError` is what
callers catch; a bare `AbmError` or `TokenError` is bad input (`Invalid`). What a surface answers
follows from each class's kind (`russet.kernel.errors`).
"""

from __future__ import annotations

from russet.apple.connection import errors as family
from russet.apple.connection.errors import *  # noqa: F403 -- the family's classes are ABM's too

AbmError = family.AppleConnectionError
AbmNotFound = family.ConnectionNotFound
AbmConflict = family.ConnectionConflict
AbmUpstreamFailed = family.AppleUnreachable


class CursorError(family.AppleFailed):
    """Apple refused the device-list cursor (INVALID_CURSOR, EXPIRED_CURSOR, EXHAUSTED_CURSOR...)."""
