"""Write `russet/commands/generated.py` from Apple's command schemas: `python -m russet.commands.codegen`.

Apple publishes every MDM command as YAML (vendored in `russet/apple_schemas/mdm/commands/`): its
RequestType, its keys with their types, presence, allowed values and nested keys, and per platform
from which OS it runs, whether it needs supervision or ADE, which channels take it and whether User
Enrollment allows it. This turns each file into a builder class, so that a new or changed Apple
schema is a regeneration and a review of the diff, not hand work. `--check` (and
tests/test_command_schemas.py) fails when the checked-in module differs from what the schemas give.

A development tool: it needs PyYAML (a test dependency); Russet itself only imports the result.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "apple_schemas" / "mdm" / "commands"
TARGET = Path(__file__).with_name("generated.py")
PLATFORMS = ("iOS", "macOS", "tvOS", "visionOS", "watchOS")
WIDTH = 110
INDENT = "    "

_TYPES = {
    "<string>": "string",
    "<integer>": "integer",
    "<boolean>": "boolean",
    "<real>": "real",
    "<data>": "data",
    "<date>": "date",
    "<array>": "array",
    "<dictionary>": "dictionary",
    "<any>": "any",
}
_CHOICE_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "real": (int, float)}
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SchemaError(ValueError):
    """A schema file says something the generator does not know how to turn into a builder."""


# -- a tiny expression tree that renders as ruff-clean, deterministic Python --------------------


@dataclass(frozen=True)
class Call:
    """`name(arg, ..., key=value, ...)`."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Dict:
    """A dict literal, keys in the schema's order."""

    items: tuple[tuple[str, Any], ...] = field(default_factory=tuple)


def _literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # double quotes, escapes: a valid Python string literal
    raise SchemaError(f"cannot write {value!r} as Python")


def _flat(node: Any) -> str:
    """`node` on one line."""
    if isinstance(node, Call):
        parts = [_flat(a) for a in node.args] + [f"{k}={_flat(v)}" for k, v in node.kwargs]
        return f"{node.name}({', '.join(parts)})"
    if isinstance(node, Dict):
        return "{" + ", ".join(f"{_literal(k)}: {_flat(v)}" for k, v in node.items) + "}"
    if isinstance(node, tuple):
        inner = ", ".join(_flat(v) for v in node)
        return f"({inner},)" if len(node) == 1 else f"({inner})"
    return _literal(node)


def _lines(node: Any, indent: str, head: str, tail: str) -> list[str]:
    """`head + node + tail` at `indent`, broken over lines (magic trailing commas) when too long."""
    flat = f"{indent}{head}{_flat(node)}{tail}"
    if len(flat) <= WIDTH or not isinstance(node, Call | Dict | tuple) or not _children(node):
        return [flat]
    inner = indent + INDENT
    out: list[str]
    if isinstance(node, Call):
        out = [f"{indent}{head}{node.name}("]
        for arg in node.args:
            out += _lines(arg, inner, "", ",")
        for key, value in node.kwargs:
            out += _lines(value, inner, f"{key}=", ",")
        out.append(f"{indent}){tail}")
    elif isinstance(node, Dict):
        out = [f"{indent}{head}{{"]
        for key, value in node.items:
            out += _lines(value, inner, f"{_literal(key)}: ", ",")
        out.append(f"{indent}}}{tail}")
    else:
        out = [f"{indent}{head}("]
        for value in node:
            out += _lines(value, inner, "", ",")
        out.append(f"{indent}){tail}")
    return out


def _children(node: Call | Dict | tuple[Any, ...]) -> bool:
    if isinstance(node, Call):
        return bool(node.args or node.kwargs)
    if isinstance(node, Dict):
        return bool(node.items)
    return bool(node)


# -- schema to expression tree ---------------------------------------------------------------


def _version(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise SchemaError(f"{where}: {value!r} is not an OS version (quote it in the YAML)")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"{where}: {value!r} is not a boolean")
    return value


def _support(entry: Mapping[str, Any] | None, where: str) -> Call | None:
    """One platform's `supportedOS` entry as a `Support(...)` call; None when it states nothing."""
    if not entry:
        return None
    kwargs: list[tuple[str, Any]] = []
    known = {
        "introduced", "deprecated", "removed", "supervised", "requiresdep", "userenrollment",
        "devicechannel", "userchannel", "sharedipad", "accessrights", "multiple", "allowmanualinstall",
    }  # fmt: skip
    unknown = set(entry) - known
    if unknown:
        raise SchemaError(f"{where}: unknown supportedOS keys {sorted(unknown)}")
    introduced = entry.get("introduced")
    if introduced == "n/a":
        return Call("Support", kwargs=(("available", False),))
    if introduced is not None:
        kwargs.append(("introduced", _version(introduced, where)))
    for key in ("deprecated", "removed"):
        if key in entry:
            kwargs.append((key, _version(entry[key], where)))
    if entry.get("supervised"):
        kwargs.append(("supervised", True))
    if entry.get("requiresdep"):
        kwargs.append(("requires_ade", True))
    mode = (entry.get("userenrollment") or {}).get("mode")
    if mode is not None:
        if mode not in ("allowed", "forbidden"):
            raise SchemaError(f"{where}: userenrollment mode {mode!r}")
        kwargs.append(("user_enrollment", mode == "allowed"))
    for key, name in (("devicechannel", "device_channel"), ("userchannel", "user_channel")):
        if key in entry:
            kwargs.append((name, _flag(entry[key], where)))
    shared = entry.get("sharedipad") or {}
    if "mode" in shared:
        if shared["mode"] not in ("allowed", "forbidden", "required", "ignored"):
            raise SchemaError(f"{where}: sharedipad mode {shared['mode']!r}")
        kwargs.append(("shared_ipad", shared["mode"]))
    for key, name in (
        ("devicechannel", "shared_ipad_device_channel"),
        ("userchannel", "shared_ipad_user_channel"),
    ):
        if key in shared:
            kwargs.append((name, _flag(shared[key], where)))
    rights = entry.get("accessrights")
    if isinstance(rights, str) and rights not in ("None", "n/a"):
        kwargs.append(("access_rights", rights))
    return Call("Support", kwargs=tuple(kwargs)) if kwargs else None


def _support_map(supported: Mapping[str, Any] | None, where: str, *, every_platform: bool) -> Dict | None:
    """A `{platform: Support}` literal; for a command every platform (absent: not available)."""
    items = []
    for platform in PLATFORMS:
        entry = (supported or {}).get(platform)
        call = _support(entry, f"{where} {platform}")
        if every_platform:
            call = call or Call("Support", kwargs=(() if entry else (("available", False),)))
        if call is not None:
            items.append((platform, call))
    unknown = set(supported or {}) - set(PLATFORMS)
    if unknown:
        raise SchemaError(f"{where}: unknown platforms {sorted(unknown)}")
    return Dict(tuple(items)) if items else None


def _free_form(subkeys: list[dict[str, Any]]) -> bool:
    names = [k["key"] for k in subkeys]
    if "ANY" in names and names != ["ANY"]:
        raise SchemaError(f"ANY beside named keys {names}")
    return not subkeys or names == ["ANY"]


def _param(spec: Mapping[str, Any], where: str, *, item: bool = False) -> Call:
    """One payload key (or an array's item) as a `Param(...)` call."""
    kind = _TYPES.get(spec.get("type", ""))
    if kind is None:
        raise SchemaError(f"{where}: unknown type {spec.get('type')!r}")
    presence = spec.get("presence", "optional")
    if presence not in ("required", "optional"):
        raise SchemaError(f"{where}: presence {presence!r}")
    kwargs: list[tuple[str, Any]] = []
    if presence == "required" and not item:
        kwargs.append(("required", True))
    if "rangelist" in spec:
        kwargs.append(("choices", _choices(kind, spec["rangelist"], where)))
    subkeys: list[dict[str, Any]] = spec.get("subkeys") or []
    if kind == "dictionary" and not _free_form(subkeys):
        kwargs.append(("subkeys", _params(subkeys, where)))
    elif kind == "array" and len(subkeys) == 1:
        kwargs.append(("item", _param(subkeys[0], f"{where}[]", item=True)))
    elif kind == "array" and len(subkeys) > 1:
        kwargs += _variants(subkeys, where)
    # A string's subkeys are the names Apple knows (DeviceInformation Queries): not enforced,
    # since devices skip names they do not know and newer OS releases add some.
    support = _support_map(spec.get("supportedOS"), where, every_platform=False)
    if support is not None:
        kwargs.append(("support", support))
    return Call("Param", (kind,), tuple(kwargs))


def _choices(kind: str, rangelist: Any, where: str) -> tuple[Any, ...]:
    allowed = _CHOICE_TYPES.get(kind)
    if not isinstance(rangelist, list) or allowed is None:
        raise SchemaError(f"{where}: rangelist on a {kind}")
    for value in rangelist:
        if not isinstance(value, allowed) or isinstance(value, bool):
            raise SchemaError(f"{where}: rangelist value {value!r} is not a {kind}")
    return tuple(rangelist)


def _variants(alternatives: list[dict[str, Any]], where: str) -> list[tuple[str, Any]]:
    """An array whose items are one of several dictionaries, told apart by a one-value tag key."""
    tags: list[tuple[str, str]] = []
    for alt in alternatives:
        keys = alt.get("subkeys") or []
        tagged = [(k["key"], k["rangelist"][0]) for k in keys if len(k.get("rangelist") or []) == 1]
        if alt.get("type") != "<dictionary>" or not tagged:
            raise SchemaError(f"{where}: alternative {alt.get('key')!r} has no one-value tag key")
        tags.append(tagged[0])
    tag_keys = {key for key, _ in tags}
    if len(tag_keys) != 1:
        raise SchemaError(f"{where}: alternatives tagged by different keys {sorted(tag_keys)}")
    (tag_key,) = tag_keys
    variants, supports = [], []
    for alt, (_, tag) in zip(alternatives, tags, strict=True):
        fields = [k for k in alt["subkeys"] if k["key"] != tag_key]
        variants.append((tag, _params(fields, f"{where}[{tag}]")))
        support = _support_map(alt.get("supportedOS"), f"{where}[{tag}]", every_platform=False)
        if support is not None:
            supports.append((tag, support))
    kwargs: list[tuple[str, Any]] = [("variants", Dict(tuple(variants)))]
    if tag_key != "Item":
        kwargs.append(("tag", tag_key))
    if supports:
        kwargs.append(("variant_support", Dict(tuple(supports))))
    return [("item", Call("Param", ("dictionary",), tuple(kwargs)))]


def _params(keys: Iterable[Mapping[str, Any]], where: str) -> Dict:
    items = []
    seen = set()
    for spec in keys:
        name = spec.get("key")
        if not isinstance(name, str) or name in seen:
            raise SchemaError(f"{where}: bad or repeated key {name!r}")
        seen.add(name)
        items.append((name, _param(spec, f"{where}.{name}")))
    return Dict(tuple(items))


def _docstring(doc: Mapping[str, Any]) -> list[str]:
    title = str(doc.get("title", "")).strip()
    description = " ".join(str(doc.get("description", "")).split())
    text = f"{title}: {description}" if description else title
    text = text.replace("\\", "/").replace('"""', "'''")
    # One line when it fits with both quotes (as ruff format writes it), else wrapped.
    wrapped = textwrap.wrap(text, WIDTH - len(INDENT) - 6)
    if len(wrapped) == 1:
        return [f'{INDENT}"""{wrapped[0]}"""']
    return [f'{INDENT}"""{wrapped[0]}', *(f"{INDENT}{line}" for line in wrapped[1:]), f'{INDENT}"""']


def command_class(doc: Mapping[str, Any], source: str) -> list[str]:
    """One schema file as the lines of its builder class."""
    payload = doc.get("payload") or {}
    request_type = payload.get("requesttype")
    if not isinstance(request_type, str) or not _IDENTIFIER.fullmatch(request_type):
        raise SchemaError(f"{source}: RequestType {request_type!r} is not a class name")
    support = _support_map(payload.get("supportedOS"), request_type, every_platform=True)
    params = _params(doc.get("payloadkeys") or [], request_type)
    lines = [f"class {request_type}(Command):", *_docstring(doc), ""]
    lines += [
        f"{INDENT}# {source}",
        f"{INDENT}request_type = {_literal(request_type)}",
        *_lines(str(doc.get("title", "")), INDENT, "title = ", ""),
        f"{INDENT}from_schema = True",
    ]
    lines += _lines(support, INDENT, "support = ", "")
    if params.items:
        lines += _lines(params, INDENT, "params = ", "")
    return lines


HEADER = '''"""Every MDM command of Apple's schemas, as builders: generated, do not edit.

Written by `python -m russet.commands.codegen` from russet/apple_schemas/mdm/commands/*.yaml;
tests/test_command_schemas.py fails when this file and the schemas disagree. Hand-written
extras subclass these classes (russet/commands/*.py).
"""

from __future__ import annotations

from russet.commands.base import Command, Param
from russet.commands.support import Support
'''


def load(directory: Path = SCHEMA_DIR) -> list[tuple[str, dict[str, Any]]]:
    """The schema files of `directory` with their parsed YAML, by file name."""
    import yaml  # a development tool's dependency, not Russet's

    out = []
    for path in sorted(directory.glob("*.yaml")):
        out.append((path.name, yaml.safe_load(path.read_text(encoding="utf-8"))))
    return out


def generate(directory: Path = SCHEMA_DIR) -> str:
    """The text of `generated.py` for the schemas in `directory`."""
    classes: dict[str, list[str]] = {}
    for name, doc in load(directory):
        lines = command_class(doc, f"{directory.name}/{name}")
        request_type = doc["payload"]["requesttype"]
        if request_type in classes:
            raise SchemaError(f"{name}: RequestType {request_type} defined twice")
        classes[request_type] = lines
    body: list[str] = []
    for request_type in sorted(classes):
        body += ["", "", *classes[request_type]]
    return HEADER + "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m russet.commands.codegen", description=__doc__)
    parser.add_argument("--schemas", type=Path, default=SCHEMA_DIR, help="folder of command YAML files")
    parser.add_argument("--out", type=Path, default=TARGET, help="where to write the module")
    parser.add_argument("--check", action="store_true", help="only say whether --out is up to date")
    args = parser.parse_args(argv)
    try:
        text = generate(args.schemas)
    except (SchemaError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m russet.commands.codegen", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
