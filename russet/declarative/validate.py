"""Declarations judged by Apple's declarative schemas (`russet/apple_schemas/declarative/`), with
the same walker the profile library uses (`russet.schemas`), so a refusal quotes Apple's words.

A declaration is `Type`, `Identifier` and `Payload` (the `ServerToken` is Russet's to derive). Its
kind (activation, configuration, asset, management) follows from its Type's prefix, which is also
the `<group>` of the `declaration/<group>/<identifier>` endpoint a device fetches it from.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from russet.kernel.errors import Invalid
from russet.schemas import SCHEMA_DIR, Problem, load, problems

DECLARATIONS = "declarative/declarations"
KINDS = ("activation", "configuration", "asset", "management")
_TYPE_LINE = re.compile(r"^\s+declarationtype:\s*['\"]?([^'\"\s]+)", re.MULTILINE)
# Apple: an Identifier "should not exceed 64 octets"; it is also a URL path segment for devices.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
MAX_PAYLOAD_BYTES = 64 * 1024  # as JSON; Apple's largest declarations are a few kilobytes
MAX_DEPTH = 16


@functools.cache
def declaration_types() -> dict[str, str]:
    """Declaration Type -> its schema file (relative to the schema folder)."""
    index: dict[str, str] = {}
    for path in sorted((SCHEMA_DIR / DECLARATIONS).rglob("*.yaml")):
        found = _TYPE_LINE.search(path.read_text(encoding="utf-8"))
        if found and found.group(1) != "any":
            index[found.group(1)] = str(path.relative_to(SCHEMA_DIR))
    return index


def kind_of(declaration_type: str) -> str | None:
    """activation | configuration | asset | management, from `com.apple.<kind>.…`."""
    parts = declaration_type.split(".")
    if len(parts) >= 4 and parts[0] == "com" and parts[1] == "apple" and parts[2] in KINDS:
        return parts[2]
    return None


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, Mapping):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def check_declaration(declaration_type: str, identifier: str, payload: Any) -> str:
    """The declaration's kind; raises Invalid listing every way it breaks Apple's schema."""
    if not IDENTIFIER.fullmatch(identifier or ""):
        raise Invalid(
            "Identifier: 1 to 64 characters of letters, digits and . _ : @ - (a UUID is a good "
            "choice), starting with a letter or digit"
        )
    kind = kind_of(declaration_type)
    schema_file = declaration_types().get(declaration_type)
    if kind is None or schema_file is None:
        close = difflib.get_close_matches(declaration_type, list(declaration_types()), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise Invalid(f"Type: {declaration_type[:200]!r} is not a declaration type in Apple's schemas{hint}")
    if not isinstance(payload, Mapping):
        raise Invalid("Payload: must be a dictionary (a JSON object)")
    if _depth(payload) > MAX_DEPTH:
        raise Invalid(f"Payload: nested more than {MAX_DEPTH} levels deep")
    try:
        size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise Invalid(f"Payload: not JSON: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise Invalid(f"Payload: {size} bytes as JSON, more than the {MAX_PAYLOAD_BYTES} accepted")
    schema = load(schema_file)
    found: list[Problem] = problems(
        schema.get("payloadkeys") or [],
        payload,
        "Payload",
        owner=f"{schema.get('title', declaration_type)} ({declaration_type})",
        int_is_real=True,
    )
    if found:
        raise Invalid("declaration refused by Apple's schema: " + "; ".join(str(p) for p in found))
    return kind
