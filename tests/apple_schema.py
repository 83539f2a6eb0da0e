"""A validator for Apple's YAML schema format (russet/apple_schemas), so that what
Russet builds is judged by Apple's text rather than by Russet's own declarations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

# Apple's schemas ship inside the package (russet/apple_schemas, MIT, see its README), where the
# product's own validation (profile library, declarations, command builders) can read them too;
# real device captures are test data (tests/data/device-captures, MIT, see its README).
SCHEMAS = Path(__file__).resolve().parents[1] / "russet" / "apple_schemas"
CAPTURES = Path(__file__).resolve().parent / "data" / "device-captures"


def load_schema(relative: str) -> dict[str, Any]:
    return yaml.safe_load((SCHEMAS / relative).read_text())  # type: ignore[no-any-return]


_SCHEMA_TYPES: dict[str, tuple[type, ...]] = {
    "<string>": (str,),
    "<integer>": (int,),
    "<boolean>": (bool,),
    "<real>": (float,),
    "<data>": (bytes,),
    "<date>": (datetime,),
    "<array>": (list,),
    "<dictionary>": (dict,),
}


def free_form(keys: list[dict[str, Any]] | None) -> bool:
    """Apple marks a dictionary that takes any keys with a single `ANY` subkey (or none at all)."""
    return not keys or [k["key"] for k in keys] == ["ANY"]


def schema_errors(keys: list[dict[str, Any]] | None, value: Mapping[str, Any], path: str = "") -> list[str]:
    """Every way `value` breaks the schema `keys` (a `payloadkeys` or `subkeys` list)."""
    if free_form(keys) and keys:
        return []
    known = {k["key"]: k for k in keys or []}
    errors = [f"{path}{key}: not in Apple's schema" for key in value if key not in known]
    errors += [
        f"{path}{k['key']}: required by Apple's schema"
        for k in keys or []
        if k.get("presence") == "required" and k["key"] not in value
    ]
    for key, v in value.items():
        if key in known:
            errors += _value_errors(known[key], v, f"{path}{key}")
    return errors


def _value_errors(spec: dict[str, Any], value: Any, path: str) -> list[str]:
    kind = spec["type"]
    if kind == "<any>":
        return []
    fits = isinstance(value, _SCHEMA_TYPES[kind]) and not (kind == "<integer>" and isinstance(value, bool))
    if not fits:
        return [f"{path}: {type(value).__name__} where Apple says {kind}"]
    subkeys = spec.get("subkeys")
    if "rangelist" in spec and value not in spec["rangelist"]:
        return [f"{path}: {value!r} not in rangelist {spec['rangelist']}"]
    if kind == "<string>" and subkeys and value not in {k["key"] for k in subkeys}:
        return [f"{path}: {value!r} is not one of the names Apple lists"]  # e.g. DeviceInformation Queries
    if kind == "<dictionary>":
        return schema_errors(subkeys, value, f"{path}.")
    if kind == "<array>" and subkeys:
        errors: list[str] = []
        for i, item in enumerate(value):
            # Several subkeys make a union (Settings items): the element must fit one of them.
            per_choice = [_value_errors(choice, item, f"{path}[{i}]") for choice in subkeys]
            if all(per_choice):
                closest = min(per_choice, key=len)
                errors += closest
        return errors
    return []


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
