"""DeclarativeManagement check-ins (Apple §a.4.7), answered as a server with no declarations.

Used where no declarations apply: user channels, and an MdmService built without the declarative
feature (`russet.declarative` answers the device channel when wired). Rather than failing every
sync of such a channel, Russet answers what Apple's protocol defines for an empty set: sync tokens
that never change, four empty declaration lists, status reports accepted, and 404 for any
declaration."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from russet.mdm.errors import BadRequest, NotFound

# Apple: the token must change whenever the set of declarations changes; this set never does.
DECLARATIONS_TOKEN = hashlib.sha256(b"russet: no declarations").hexdigest()[:32]
TOKENS_TIMESTAMP = "2025-01-01T00:00:00Z"
_GROUPS = ("activation", "configuration", "asset", "management")


class JsonBody(bytes):
    """A reply body that is JSON (the HTTP layer labels it application/json)."""


def json_body(value: dict[str, Any]) -> JsonBody:
    """A JSON answer, compact."""
    return _json(value)


def _json(value: dict[str, Any]) -> JsonBody:
    return JsonBody(json.dumps(value, separators=(",", ":")).encode())


def declarative_reply(msg: dict[str, Any]) -> JsonBody | None:
    endpoint: str = msg["Endpoint"]
    if endpoint == "tokens":
        return _json({"SyncTokens": {"DeclarationsToken": DECLARATIONS_TOKEN, "Timestamp": TOKENS_TIMESTAMP}})
    if endpoint == "declaration-items":
        return _json(
            {
                "Declarations": {"Activations": [], "Configurations": [], "Assets": [], "Management": []},
                "DeclarationsToken": DECLARATIONS_TOKEN,
            }
        )
    if endpoint == "status":
        data = msg.get("Data")
        if data is not None:
            try:
                json.loads(data)
            except ValueError:
                raise BadRequest("DeclarativeManagement status: Data is not a JSON status report") from None
        return None
    group, _, identifier = endpoint.removeprefix("declaration/").partition("/")
    if endpoint.startswith("declaration/") and group in _GROUPS and identifier:
        raise NotFound(f"no {group} declaration {identifier!r}: this server publishes no declarations")
    raise BadRequest(f"unknown DeclarativeManagement Endpoint {endpoint[:100]!r}")
