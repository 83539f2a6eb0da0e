"""Durations as admins type them (`90m`, `12h`, `7d`), for token lifetimes and re-enrollment windows.

In the kernel because features that must not import each other (enrollment tokens, the MDM core's
re-enrollment window) read the same notation with the same words in their errors.
"""

from __future__ import annotations

import re
from datetime import timedelta

from russet.kernel.errors import Invalid

_DURATION = re.compile(r"^(\d{1,6})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str, *, option: str, what: str, most: timedelta) -> timedelta:
    """`text` as a duration from 1 minute to `most`; Invalid names `option` and says what `what` allows."""
    match = _DURATION.match(text.strip())
    if not match:
        raise Invalid(f"{option} {text!r}: expected a duration such as 30m, 12h or 7d")
    length = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if not timedelta(minutes=1) <= length <= most:
        raise Invalid(f"{option} {text!r}: {what} from 1 minute to {most.days} days")
    return length
