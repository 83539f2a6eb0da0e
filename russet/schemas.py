"""Apple's device-management schemas (the YAML vendored in `russet/apple_schemas/`), read and applied.

One reader and one walker serve every use: the profile library (`russet.library`) refuses an
uploaded profile with these problems, and the tests judge what Russet builds (commands, check-in
answers, its own enrollment profiles) by the same code (`tests/apple_schema.py` is a thin
wrapper). So a value is judged by Apple's text, not by a second reading of it.

Apple's format, as far as it matters here: a schema is a list of key specs (`payloadkeys`, or a
key's `subkeys`), each with `key`, `type` (`<string>`, `<integer>`, `<dictionary>`, ...),
`presence`, and optionally `rangelist`, `range` (min/max), `format` (a regex), `title` and
`content` (the words shown to people). A dictionary's subkeys are its keys; a key named `ANY`
stands for every key not named (a dictionary with no subkeys at all is free-form). An array's
subkeys describe its items: one spec is the item, several are alternatives (a union). A
`<string>` with subkeys must be one of their names (DeviceInformation's Queries).

Where Apple's YAML says something the devices do not mean, `_PLACEHOLDERS` says so, by name.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "apple_schemas"
PROFILES = "mdm/profiles"
# The two files of the profile folder that are not payload types.
_NOT_PAYLOADS = frozenset({"TopLevel", "CommonPayloadKeys"})
_PAYLOADTYPE_LINE = re.compile(r"^\s+payloadtype:\s*['\"]?([^'\"\s]+)", re.MULTILINE)

# Problems gathered before a walk stops: enough to fix a file, never a flood from a hostile one.
DEFAULT_LIMIT = 20

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TYPE_WORDS = {
    "<string>": "a string",
    "<integer>": "an integer",
    "<boolean>": "a boolean",
    "<real>": "a real number",
    "<data>": "data",
    "<date>": "a date",
    "<array>": "an array",
    "<dictionary>": "a dictionary",
    "<any>": "any value",
}

# Subkey names in Apple's YAML that are not keys devices read: "Printer" and "Realm" stand for
# any key (a printer's name, a realm's name), each value shaped as they say; "ConsentTextItem"
# stands for its parent dictionary itself (language code -> text).
_PLACEHOLDERS = {"Printer": "any key", "Realm": "any key", "ConsentTextItem": "itself"}


@functools.cache
def load(relative: str) -> dict[str, Any]:
    """One schema file, parsed once per process. `relative` comes from code, never from input.

    The result is shared: callers must not modify it.
    """
    with (SCHEMA_DIR / relative).open("rb") as f:
        schema: dict[str, Any] = yaml.load(f, Loader=_Loader)
    return schema


@functools.cache
def _payload_files() -> dict[str, tuple[str, ...]]:
    """PayloadType -> the schema files describing it (a few types have several: com.apple.MCX,
    com.apple.extensiblesso). Read from each file's `payloadtype:` line, not its name."""
    index: dict[str, list[str]] = defaultdict(list)
    for path in sorted((SCHEMA_DIR / PROFILES).glob("*.yaml")):
        found = _PAYLOADTYPE_LINE.search(path.read_text(encoding="utf-8"))
        if found and found.group(1) not in _NOT_PAYLOADS:
            index[found.group(1)].append(f"{PROFILES}/{path.name}")
    return {payload_type: tuple(files) for payload_type, files in index.items()}


def payload_types() -> list[str]:
    """Every PayloadType Apple's profile schemas describe."""
    return sorted(_payload_files())


def payload_schemas(payload_type: str) -> list[dict[str, Any]]:
    """The schemas of one PayloadType (empty if Apple's schemas do not know it)."""
    return [load(f) for f in _payload_files().get(payload_type, ())]


@dataclass(frozen=True, slots=True)
class Problem:
    """One way a value breaks a schema: where, what, and the schema's own words for that key."""

    path: str
    message: str
    words: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message}" + (f" [{self.words}]" if self.words else "")


def words(spec: Mapping[str, Any], limit: int = 160) -> str:
    """A key's title and the first sentence of its content, as Apple wrote them, shortened."""
    content = " ".join(str(spec.get("content") or "").split())
    sentence = content.split(". ")[0].rstrip(".")
    text = ": ".join(part for part in (str(spec.get("title") or ""), sentence) if part)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def free_form(keys: Sequence[Mapping[str, Any]] | None) -> bool:
    """Apple marks a dictionary that takes any keys with a single `ANY` subkey (or none at all)."""
    return not keys or [k["key"] for k in keys] == ["ANY"]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    """What a value is, in the schema's words."""
    for python, name in (
        (bool, "a boolean"),
        (str, "a string"),
        (int, "an integer"),
        (float, "a real number"),
        (bytes, "data"),
        (datetime, "a date"),
        (list, "an array"),
        (dict, "a dictionary"),
    ):
        if isinstance(value, python):
            return name
    return type(value).__name__


def _suggest(word: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def _shown(values: Sequence[Any], most: int = 12) -> str:
    listed = ", ".join(repr(v) for v in values[:most])
    return listed + (f", … ({len(values)} in all)" if len(values) > most else "")


class _Walk:
    """One walk of a value against a schema, collecting problems up to a limit.

    The walk follows the value, not the schema, so it ends even though a few of Apple's schemas
    refer to themselves (YAML anchors), and it is as deep as the value (which `russet.plists`
    bounds for outside input).
    """

    def __init__(self, limit: int, int_is_real: bool) -> None:
        self.limit = limit
        self.int_is_real = int_is_real
        self.found: list[Problem] = []

    @property
    def full(self) -> bool:
        return len(self.found) >= self.limit

    def add(self, path: str, message: str, spec: Mapping[str, Any] | None = None) -> None:
        if not self.full:
            self.found.append(Problem(path, message, words(spec) if spec else ""))

    def dictionary(
        self, keys: Sequence[Mapping[str, Any]] | None, value: Mapping[Any, Any], path: str, owner: str
    ) -> None:
        if not keys:
            return  # free-form
        if len(keys) == 1 and _PLACEHOLDERS.get(keys[0]["key"]) == "itself":
            self.value(keys[0], value, path, owner)
            return
        named = {k["key"]: k for k in keys}
        any_key = named.pop("ANY", None)
        if len(keys) == 1 and _PLACEHOLDERS.get(keys[0]["key"]) == "any key":
            named, any_key = {}, keys[0]
        for key, item in value.items():
            if self.full:
                return
            if not isinstance(key, str):
                self.add(path, f"has a key that is not a string: {key!r}")
                continue
            spec = named.get(key, any_key)
            if spec is None:
                self.add(
                    _join(path, key), f"not a key of {owner} in Apple's schema{_suggest(key, list(named))}"
                )
                continue
            self.value(spec, item, _join(path, key), owner)
        for key, spec in named.items():
            if spec.get("presence") == "required" and key not in value:
                self.add(_join(path, key), "required by Apple's schema, and missing", spec)

    def value(self, spec: Mapping[str, Any], value: Any, path: str, owner: str) -> None:
        kind = spec["type"]
        if kind == "<any>":
            return
        if not self._fits(kind, value):
            self.add(path, f"must be {_TYPE_WORDS.get(kind, kind)}, not {_kind(value)}", spec)
            return
        subkeys = spec.get("subkeys")
        if "rangelist" in spec and value not in spec["rangelist"]:
            self.add(path, f"{value!r} is not one of {_shown(spec['rangelist'])}", spec)
            return
        bounds = spec.get("range")
        if isinstance(bounds, Mapping) and isinstance(value, int | float):
            low, high = bounds.get("min"), bounds.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"{'' if low is None else low}…{'' if high is None else high}"
                self.add(path, f"{value!r} is outside {span}", spec)
                return
        if kind == "<string>":
            pattern = spec.get("format")
            if pattern and not re.search(pattern, value):
                self.add(path, f"{value!r} does not have the form {pattern}", spec)
            elif subkeys and value not in {k["key"] for k in subkeys}:
                names = [k["key"] for k in subkeys]
                self.add(path, f"{value!r} is not one of the names Apple lists{_suggest(value, names)}", spec)
        elif kind == "<dictionary>":
            self.dictionary(subkeys, value, path, owner)
        elif kind == "<array>" and subkeys:
            self.array(subkeys, value, path, owner)

    def array(self, items: Sequence[Mapping[str, Any]], value: list[Any], path: str, owner: str) -> None:
        repetition = items[0].get("repetition") if len(items) == 1 else None
        if isinstance(repetition, Mapping):
            low, high = repetition.get("min", 0), repetition.get("max")
            if len(value) < low or (high is not None and len(value) > high):
                self.add(path, f"must hold {low}…{'' if high is None else high} items, not {len(value)}")
        for index, item in enumerate(value):
            if self.full:
                return
            where = f"{path}[{index}]"
            if len(items) == 1:
                self.value(items[0], item, where, owner)
                continue
            # Several item specs make a union (Settings items): the item must fit one of them.
            tries = []
            for choice in items:
                walk = _Walk(self.limit, self.int_is_real)
                walk.value(choice, item, where, owner)
                if not walk.found:
                    break
                tries.append(walk.found)
            else:
                for problem in min(tries, key=len):  # the closest alternative says what is wrong
                    if self.full:
                        return
                    self.found.append(problem)

    def _fits(self, kind: str, value: Any) -> bool:
        if isinstance(value, bool):
            return kind == "<boolean>"
        match kind:
            case "<string>":
                return isinstance(value, str)
            case "<integer>":
                return isinstance(value, int)
            case "<real>":
                return isinstance(value, float) or (self.int_is_real and isinstance(value, int))
            case "<boolean>":
                return False
            case "<data>":
                return isinstance(value, bytes)
            case "<date>":
                return isinstance(value, datetime)
            case "<array>":
                return isinstance(value, list)
            case "<dictionary>":
                return isinstance(value, Mapping)
        return False  # a type Apple's format does not have


def problems(
    keys: Sequence[Mapping[str, Any]] | None,
    value: Mapping[str, Any],
    path: str = "",
    *,
    owner: str = "this dictionary",
    limit: int = DEFAULT_LIMIT,
    int_is_real: bool = False,
) -> list[Problem]:
    """Every way (up to `limit`) the dictionary `value` breaks the key list `keys`.

    `owner` names what the keys belong to in messages ("Wi-Fi (com.apple.wifi.managed)").
    `int_is_real` accepts an integer where Apple says `<real>`, as devices do (a plist
    `<integer>5</integer>` is a number to them); what Russet itself writes is held to `<real>`.
    """
    walk = _Walk(limit, int_is_real)
    walk.dictionary(keys, value, path, owner)
    return walk.found


def profile_problems(profile: Any, *, limit: int = DEFAULT_LIMIT) -> list[Problem]:
    """Every way (up to `limit`) a configuration profile breaks Apple's profile schemas: its top
    level (TopLevel.yaml), each payload by its PayloadType with the keys common to all payloads
    (CommonPayloadKeys.yaml), and PayloadIdentifier/PayloadUUID unique within the profile."""
    if not isinstance(profile, Mapping):
        return [Problem("", f"a profile is a dictionary at its top level, not {_kind(profile)}")]
    top = load(f"{PROFILES}/TopLevel.yaml")
    found = problems(
        top["payloadkeys"], profile, owner="a profile's top level", limit=limit, int_is_real=True
    )
    content = profile.get("PayloadContent")
    if not isinstance(content, list):
        return found
    common = load(f"{PROFILES}/CommonPayloadKeys.yaml")["payloadkeys"]
    for index, payload in enumerate(content):
        if len(found) >= limit:
            break
        if isinstance(payload, Mapping):
            found += _payload_problems(payload, f"PayloadContent[{index}]", common, limit - len(found))
    found += _duplicates(content, ("PayloadIdentifier", "PayloadUUID"))
    return found[:limit]


def _payload_problems(
    payload: Mapping[str, Any], path: str, common: list[dict[str, Any]], limit: int
) -> list[Problem]:
    payload_type = payload.get("PayloadType")
    if not isinstance(payload_type, str):
        spec = next(k for k in common if k["key"] == "PayloadType")
        shown = "missing" if payload_type is None else f"{_kind(payload_type)}, not a string"
        return [Problem(_join(path, "PayloadType"), f"required by Apple's schema, and {shown}", words(spec))]
    schemas = payload_schemas(payload_type)
    if not schemas:
        return [
            Problem(
                _join(path, "PayloadType"),
                f"{payload_type!r} is not a payload type in Apple's schemas"
                + _suggest(payload_type, payload_types()),
            )
        ]
    attempts = []
    for schema in schemas:
        own = schema.get("payloadkeys") or []
        named = {k["key"] for k in own}
        keys = own + [k for k in common if k["key"] not in named]
        owner = f"{schema['title']} ({payload_type})"
        found = problems(keys, payload, path, owner=owner, limit=limit, int_is_real=True)
        if not found:
            return []
        attempts.append(found)
    return min(attempts, key=len)


def _duplicates(payloads: list[Any], keys: Sequence[str]) -> list[Problem]:
    found = []
    for key in keys:
        seen: dict[str, int] = {}
        for index, payload in enumerate(payloads):
            value = payload.get(key) if isinstance(payload, Mapping) else None
            if not isinstance(value, str):
                continue
            if value in seen:
                found.append(
                    Problem(
                        f"PayloadContent[{index}].{key}",
                        f"{value!r} is PayloadContent[{seen[value]}]'s too; it must be unique in the profile",
                    )
                )
            else:
                seen[value] = index
    return found
