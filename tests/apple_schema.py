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
