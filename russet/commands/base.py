"""The machinery shared by all MDM command builders.

Every RequestType of Apple's YAML schemas has a builder in `russet.commands.generated`, written by
`russet.commands.codegen` from the schema: its `Param` tree (keys, types, required, allowed values,
nested dictionaries and arrays) and its `Support` per platform. Hand-written builders subclass a
generated one to add what the schema cannot say (secrets, cross-key rules, stricter patterns via
`refine`, defaults), never to declare keys again. A command is thus checked before it is queued
rather than refused by the device with a terse `CommandFormatError` hours later.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
import plistlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from russet.commands.support import Platform, Support
from russet.kernel.errors import Invalid

#: Apple's schema type names, without the angle brackets.
Kind = Literal["string", "integer", "boolean", "real", "data", "date", "array", "dictionary", "any"]

_KIND_NAMES: dict[Kind, str] = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean",
    "real": "a number",
    "data": "data (bytes or a base64 string)",
    "date": "a date (datetime or ISO 8601 string)",
    "array": "an array",
    "dictionary": "a dictionary",
    "any": "a plist value",
}

# A plist <integer> is at most 64 bits wide; plistlib refuses anything larger at render time.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1

_CLI_TRUE = frozenset({"true", "yes", "1"})
_CLI_FALSE = frozenset({"false", "no", "0"})


class CommandError(Invalid, ValueError):
    """A command Russet refuses to queue; the message names the command and the offending key.

    Still a ValueError too, for callers that catch one.
    """


class _Problem(Exception):
    """A validation failure deep in a value tree; the caller prefixes it with the RequestType."""


@dataclass(frozen=True, slots=True, eq=False)
class Param:
    """The declared shape of one parameter, as one payload key of Apple's schema describes it.

    `item` is the shape of each element of an array (None: any plist value). `subkeys` lists the
    keys a dictionary may hold (None: free-form, as Apple's `ANY` subkey means). `variants` is for
    dictionaries that are a tagged union, such as Settings items: the value of the `tag` key picks
    which `subkeys` apply (the tag itself is not listed in them). `pattern`/`hint` constrain a
    string further, and `hint` then words the error. A `default` fills a missing key.
    `support` is where Apple says this key works, per platform, when that differs from its command
    (`variant_support` the same for each variant); `russet.commands.targets` checks it.
    """

    type: Kind
    required: bool = False
    choices: tuple[Any, ...] | None = None
    item: Param | None = None
    subkeys: Mapping[str, Param] | None = None
    variants: Mapping[str, Mapping[str, Param]] | None = None
    tag: str = "Item"
    pattern: re.Pattern[str] | None = None
    hint: str | None = None
    default: Any = None
    support: Mapping[Platform, Support] | None = None
    variant_support: Mapping[str, Mapping[Platform, Support]] | None = None


def _kind_of(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _expected(spec: Param, value: Any, path: str) -> _Problem:
    return _Problem(f"{path} must be {spec.hint or _KIND_NAMES[spec.type]}, not {_kind_of(value)}")


def _check_int(value: int, path: str) -> int:
    if not _INT_MIN <= value <= _INT_MAX:
        raise _Problem(f"{path} is out of the 64-bit integer range of a plist")
    return value


def _check_real(value: float, path: str) -> float:
    # Python's json reads NaN and Infinity, which plistlib would write as words Apple does not parse.
    if not math.isfinite(value):
        raise _Problem(f"{path} must be a finite number, not {value!r}")
    return value


def _utc_naive(value: datetime) -> datetime:
    """plistlib writes a datetime's fields as they are, so aware datetimes are first moved to UTC."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _plist_value(value: Any, path: str) -> Any:
    """Return `value` in plist-ready form, or raise `_Problem` naming the first part a plist can't hold.

    JSON and Python both have values (None, sets, non-string keys, huge integers) that plistlib would
    refuse or mangle only when the command is finally rendered, long after the admin has gone.
    """
    if isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        return _check_real(value, path)
    if isinstance(value, int):
        return _check_int(value, path)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, datetime):
        return _utc_naive(value)
    if isinstance(value, list | tuple):
        return [_plist_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise _Problem(f"{path or 'the command'} has a non-string key {key!r}")
            out[key] = _plist_value(v, _join(path, key))
        return out
    if value is None:
        raise _Problem(f"{path} is None; a plist has no null value, leave the key out instead")
    raise _Problem(f"{path} is a {_kind_of(value)}, which a plist cannot hold")


def _validate(spec: Param, value: Any, path: str) -> Any:
    """Check `value` against `spec` and return its plist-ready form (bytes for data, naive UTC dates)."""
    result: Any
    match spec.type:
        case "string":
            if not isinstance(value, str):
                raise _expected(spec, value, path)
            if spec.pattern is not None and not spec.pattern.fullmatch(value):
                raise _Problem(f"{path} must be {spec.hint or f'a string matching {spec.pattern.pattern}'}")
            result = value
        case "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise _expected(spec, value, path)
            result = _check_int(value, path)
        case "boolean":
            if not isinstance(value, bool):
                raise _expected(spec, value, path)
            result = value
        case "real":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise _expected(spec, value, path)
            result = _check_real(float(value), path)  # a float, so that plistlib writes <real>
        case "data":
            result = _data(spec, value, path)
        case "date":
            result = _date(spec, value, path)
        case "array":
            if not isinstance(value, list | tuple):
                raise _expected(spec, value, path)
            item = spec.item
            result = [
                _plist_value(v, f"{path}[{i}]") if item is None else _validate(item, v, f"{path}[{i}]")
                for i, v in enumerate(value)
            ]
        case "dictionary":
            if not isinstance(value, Mapping):
                raise _expected(spec, value, path)
            if spec.variants is not None:
                result = _validate_variant(spec.variants, spec.tag, value, path)
            elif spec.subkeys is None:
                result = _plist_value(value, path)
            else:
                result = _validate_fields(spec.subkeys, value, path)
        case "any":
            result = _plist_value(value, path)
    if spec.choices is not None and result not in spec.choices:
        allowed = ", ".join(repr(c) for c in spec.choices)
        raise _Problem(f"{path} must be one of {allowed}, not {result!r}")
    return result


def _data(spec: Param, value: Any, path: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):  # JSON cannot carry bytes, so the admin API sends base64
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise _Problem(f"{path} must be data; {value[:20]!r} is not valid base64") from None
    raise _expected(spec, value, path)


def _date(spec: Param, value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        return _utc_naive(value)
    if isinstance(value, str):  # JSON cannot carry dates either
        try:
            return _utc_naive(datetime.fromisoformat(value))
        except ValueError:
            raise _Problem(f"{path} must be a date; {value!r} is not ISO 8601") from None
    raise _expected(spec, value, path)


def _validate_variant(
    variants: Mapping[str, Mapping[str, Param]], tag_key: str, value: Mapping[str, Any], path: str
) -> dict[str, Any]:
    """Validate one member of a tagged union: the value of `tag_key` picks the keys that apply."""
    tag_path = _join(path, tag_key)
    if tag_key not in value:
        raise _Problem(f"missing required key {tag_path}")
    tag = value[tag_key]
    if not isinstance(tag, str) or tag not in variants:
        raise _Problem(f"{tag_path} {tag!r} is not one of {', '.join(variants)}")
    rest = {k: v for k, v in value.items() if k != tag_key}
    return {tag_key: tag, **_validate_fields(variants[tag], rest, path)}


def _validate_fields(spec: Mapping[str, Param], values: Mapping[Any, Any], path: str) -> dict[str, Any]:
    """Validate a dictionary against its declared keys: unknown keys refused, required ones present."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise _Problem(f"{path or 'the command'} has a non-string key {key!r}")
        param = spec.get(key)
        if param is None:
            raise _Problem(f"unknown key {_join(path, key)!r}")
        out[key] = _validate(param, value, _join(path, key))
    for key, param in spec.items():
        if key in out:
            continue
        if param.default is not None:
            out[key] = _validate(param, param.default, _join(path, key))
        elif param.required:
            raise _Problem(f"missing required key {_join(path, key)}")
    return out


def _parse_cli(spec: Param, text: str, path: str) -> Any:
    """Turn one command-line string into the Python value its declared type calls for."""
    match spec.type:
        case "string":
            return text
        case "boolean":
            word = text.strip().lower()
            if word in _CLI_TRUE or word in _CLI_FALSE:
                return word in _CLI_TRUE
            raise _Problem(f"{path} must be true/false/yes/no/1/0, not {text!r}")
        case "integer":
            try:
                return int(text)
            except ValueError:
                raise _Problem(f"{path} must be an integer, not {text!r}") from None
        case "real":
            try:
                number = float(text)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
            raise _Problem(f"{path} must be a number, not {text!r}")
        case "data":
            if text.startswith("@"):
                try:
                    return Path(text[1:]).read_bytes()
                except OSError as e:
                    raise _Problem(f"{path}: cannot read {text[1:]!r}: {e.strerror}") from None
            return _data(spec, text, path)
        case "date":
            return _date(spec, text, path)
        case "array":
            if text.lstrip().startswith("["):
                return _parse_json(text, list, "a JSON array", path)
            item = spec.item
            if item is None or item.type in ("array", "dictionary", "any"):
                raise _Problem(f"{path} must be a JSON array")
            parts = [p.strip() for p in text.split(",")] if text.strip() else []
            return [_parse_cli(item, p, f"{path}[{i}]") for i, p in enumerate(parts)]
        case "dictionary":
            return _parse_json(text, dict, "a JSON object", path)
        case "any":
            try:
                return json.loads(text)
            except ValueError:
                return text


def _parse_json(text: str, want: type, what: str, path: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise _Problem(f"{path} must be {what}: {e}") from None
    if not isinstance(value, want):
        raise _Problem(f"{path} must be {what}, not {type(value).__name__}")
    return value


#: Every builder, by RequestType; filled in by `Command.__init_subclass__`.
COMMANDS: dict[str, type[Command]] = {}

#: What `refine` may change: constraints a schema cannot state, never a key's type or presence.
_REFINABLE = frozenset({"pattern", "hint", "default", "choices"})


class Command:
    """One MDM command, validated on construction against the parameters its subclass declares.

    Subclasses set `request_type` and `params`, and may override `cross_check` for rules that
    span keys. Defining a subclass registers it in `COMMANDS`; a subclass of a registered builder
    takes its place (how hand-written extras augment a generated builder), any other second
    builder for a RequestType is an error. A builder generated from Apple's schema has
    `from_schema` set, and its subclasses keep exactly its keys.

    `secret_keys` names the keys, in the command or in the device's answer, whose values are
    secrets (an UnlockToken, a PIN, a profile that may hold passwords): such a command's body
    and results are sealed at rest and those keys are redacted in output (russet.commands.secrets).
    `support` says per platform where Apple runs the command (russet.commands.targets checks it).
    """

    request_type: ClassVar[str]
    title: ClassVar[str] = ""
    params: ClassVar[Mapping[str, Param]] = {}
    support: ClassVar[Mapping[Platform, Support]] = {}
    secret_keys: ClassVar[frozenset[str]] = frozenset()
    from_schema: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registered = COMMANDS.get(cls.request_type)
        if registered is not None and not issubclass(cls, registered):
            raise TypeError(f"two builders for RequestType {cls.request_type}")
        if registered is not None and registered.from_schema and set(cls.params) != set(registered.params):
            raise TypeError(
                f"{cls.__name__} changes the keys of {cls.request_type}, which Apple's schema defines; "
                "refine them instead"
            )
        COMMANDS[cls.request_type] = cls

    def __init__(self, **params: Any) -> None:
        try:
            values = _validate_fields(self.params, params, "")
            problem = self.cross_check(values)
        except _Problem as p:
            raise CommandError(f"{self.request_type}: {p}") from None
        if problem is not None:
            raise CommandError(f"{self.request_type}: {problem}")
        self.values: dict[str, Any] = values

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        """Say what is wrong with already type-checked `values` beyond what `params` can express."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The `Command` dictionary of the device plist, with plist-ready values."""
        return {"RequestType": self.request_type, **self.values}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Build from a `Command` dictionary; its RequestType, if present, must be this builder's."""
        params = dict(d)
        request_type = params.pop("RequestType", cls.request_type)
        if request_type != cls.request_type:
            raise CommandError(f"{cls.request_type}: RequestType is {request_type!r}")
        bad = [k for k in params if not isinstance(k, str)]
        if bad:
            raise CommandError(f"{cls.request_type}: non-string key {bad[0]!r}")
        return cls(**params)

    @classmethod
    def coerce_cli_params(cls, raw: Mapping[str, str]) -> dict[str, Any]:
        """Type the strings of `--param key=value` options by each key's declared type.

        The result still goes through the constructor, which does the full validation.
        """
        out: dict[str, Any] = {}
        for key, text in raw.items():
            param = cls.params.get(key)
            if param is None:
                raise CommandError(f"{cls.request_type}: unknown key {key!r}")
            try:
                out[key] = _parse_cli(param, text, key)
            except _Problem as p:
                raise CommandError(f"{cls.request_type}: {p}") from None
        return out


def refine(params: Mapping[str, Param], path: str, **changes: Any) -> dict[str, Param]:
    """`params` with the key at `path` made stricter (or given a default), the rest unchanged.

    `path` names a key as errors do: `PIN`, `ReturnToService.Enabled`, `Updates[].InstallAction`
    (an array's items), `Settings[TimeZone].TimeZone` (one variant of a tagged union). Only
    `pattern`, `hint`, `default` and narrower `choices` may change: a key's type and presence are
    Apple's schema's to say, so a refinement cannot drift from it unnoticed.
    """
    unknown = set(changes) - _REFINABLE
    if unknown:
        raise TypeError(f"refine cannot change {', '.join(sorted(unknown))}")
    return _refine_in(params, _path_parts(path), path, changes)


def _path_parts(path: str) -> list[str]:
    """`a[].b[V].c` as `["a", "[]", "b", "[V]", "c"]`."""
    return [part for part in re.split(r"\.|(\[[^\]]*\])", path) if part]


def _refine_in(
    params: Mapping[str, Param], parts: list[str], path: str, changes: dict[str, Any]
) -> dict[str, Param]:
    key, rest = parts[0], parts[1:]
    if key not in params:
        raise KeyError(f"refine: no key {key!r} at {path!r}")
    out = dict(params)
    out[key] = _refine_param(params[key], rest, path, changes)
    return out


def _refine_param(param: Param, parts: list[str], path: str, changes: dict[str, Any]) -> Param:
    if not parts:
        choices = changes.get("choices")
        if choices is not None and (param.choices is None or not set(choices) <= set(param.choices)):
            raise ValueError(f"refine: choices at {path!r} must narrow the schema's {param.choices}")
        return replace(param, **changes)
    head, rest = parts[0], parts[1:]
    if head == "[]" and param.item is not None:
        return replace(param, item=_refine_param(param.item, rest, path, changes))
    if head.startswith("[") and param.item is not None and param.item.variants is not None:
        tag = head[1:-1]
        if tag not in param.item.variants:
            raise KeyError(f"refine: no variant {tag!r} at {path!r}")
        variants = dict(param.item.variants)
        variants[tag] = _refine_in(variants[tag], rest, path, changes)
        return replace(param, item=replace(param.item, variants=variants))
    if param.subkeys is not None and not head.startswith("["):
        return replace(param, subkeys=_refine_in(param.subkeys, parts, path, changes))
    raise KeyError(f"refine: {path!r} does not lead to a key")


def build_command(d: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a raw command dictionary (as an admin posts it) and return it plist-ready.

    Every RequestType of Apple's schemas has a builder; any other RequestType is refused, since a
    device would only answer it with an error once it finally checks in.
    """
    if not isinstance(d, Mapping):
        raise CommandError(f"a command must be a dictionary, not {_kind_of(d)}")
    request_type = d.get("RequestType")
    if not isinstance(request_type, str) or not request_type.strip():
        raise CommandError(f"RequestType must be a non-empty string, not {request_type!r}")
    builder = COMMANDS.get(request_type)
    if builder is None:
        raise CommandError(unknown_request_type(request_type))
    return builder.from_dict(d).to_dict()


def unknown_request_type(request_type: str) -> str:
    """The refusal of a RequestType no schema defines, naming the closest known ones."""
    close = difflib.get_close_matches(request_type, list(COMMANDS), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (
        f"unknown RequestType {request_type[:80]!r}{hint}: Russet sends only the commands Apple's "
        "schemas define (russet command types lists them)"
    )


def render_command_plist(command_uuid: str, command: Mapping[str, Any]) -> bytes:
    """The XML plist the device receives in the HTTP response to its poll.

    `command` must already be validated (by a builder or `build_command`); this only serialises.
    """
    return plistlib.dumps(
        {"CommandUUID": command_uuid, "Command": command}, fmt=plistlib.FMT_XML, sort_keys=False
    )
