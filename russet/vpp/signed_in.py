"""The people who signed in before enrollment become Apps and Books users of a location (issue
#17: "the person becomes the device's user ... Apps and Books user licences").

Which of them to register is decided here, by email in any case, against the location's users:
a person already a user (or retired by an admin, who meant it) is skipped, as is an email Apple
would refuse. Registering is `users.create`, one person at a time, at most `MAX_CREATED` per run
(each is a request to Apple; a second run goes on where the first stopped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from russet.vpp.users import EMAIL, MAX_EMAIL

MAX_PEOPLE = 10_000  # people read from the enrollment requests per run
MAX_CREATED = 200  # people registered with Apple per run


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    remaining: int = 0  # left for the next run (past MAX_CREATED)


def plan(emails: Iterable[str], users: Iterable[Mapping[str, Any]]) -> Plan:
    """Which emails to register, and why the others are skipped."""
    known: dict[str, str] = {}
    for user in users:
        if user.get("email") and user.get("status") != "failed":  # failed: Apple holds nothing
            known.setdefault(str(user["email"]).casefold(), str(user.get("status")))
    out = Plan()
    seen: set[str] = set()
    for email in emails:
        key = email.strip().casefold()
        if not key or key in seen:
            continue
        seen.add(key)
        if len(email.strip()) > MAX_EMAIL or not EMAIL.match(email.strip()):
            out.skipped.append({"email": email, "reason": "not an email address"})
        elif key in known:
            reason = "retired in this location" if known[key] == "Retired" else "already a user"
            out.skipped.append({"email": email, "reason": reason})
        elif len(out.create) < MAX_CREATED:
            out.create.append(email.strip())
        else:
            out.remaining += 1
    return out
