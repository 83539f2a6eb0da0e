"""Apple's YAML schemas (russet/apple_schemas) for tests, so that what Russet builds is judged
by Apple's text rather than by Russet's own declarations.

The reading and the walking are the product's own (`russet.schemas`, which the profile library
validates uploads with): one piece of code, so the tests and the library cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from russet import schemas
from russet.schemas import SCHEMA_DIR as SCHEMAS
from russet.schemas import free_form

__all__ = ["CAPTURES", "SCHEMAS", "free_form", "load_schema", "schema_errors"]

# Real device captures are test data (tests/data/device-captures, MIT, see its README).
CAPTURES = Path(__file__).resolve().parent / "data" / "device-captures"


def load_schema(relative: str) -> dict[str, Any]:
    return schemas.load(relative)


def schema_errors(keys: list[dict[str, Any]] | None, value: Mapping[str, Any], path: str = "") -> list[str]:
    """Every way `value` breaks the schema `keys` (a `payloadkeys` or `subkeys` list), strictly:
    Russet's own output must say `<real>` where Apple does."""
    found = schemas.problems(keys, value, path.rstrip("."), limit=1000)
    return [str(problem) for problem in found]


# -- example values, straight from a schema ----------------------------------------------------------

_EXAMPLE_SCALARS: dict[str, Any] = {
    "<string>": "example",
    "<integer>": 1,
    "<boolean>": True,
    "<real>": 0.5,
    "<data>": b"\x00\x01",
    "<date>": datetime(2025, 1, 2, 3, 4, 5),
    "<any>": "anything",
}


def example(keys: list[dict[str, Any]] | None, *, full: bool) -> dict[str, Any]:
    """A value for a `payloadkeys`/`subkeys` list that Apple's schema accepts: its required keys
    only, or (`full`) every key, an array of alternatives (Settings) holding one item of each."""
    if keys and free_form(keys):  # Apple's `ANY`: a free-form dictionary
        return {"Free": "form"} if full else {}
    return {
        k["key"]: example_value(k, full=full) for k in keys or [] if full or k.get("presence") == "required"
    }


def example_value(spec: dict[str, Any], *, full: bool) -> Any:
    """A value Apple's schema accepts for one key."""
    kind = spec["type"]
    if "rangelist" in spec:
        return spec["rangelist"][-1 if full else 0]
    subkeys = spec.get("subkeys") or []
    if kind == "<string>" and subkeys:
        return subkeys[0]["key"]  # one of the names Apple lists (DeviceInformation Queries)
    if kind == "<dictionary>":
        return example(subkeys, full=full)
    if kind == "<array>":
        if not subkeys:
            return ["item"]
        if len(subkeys) == 1:
            return [example_value(subkeys[0], full=full)]
        return [example_value(alt, full=full) for alt in (subkeys if full else subkeys[:1])]
    return _EXAMPLE_SCALARS[kind]
