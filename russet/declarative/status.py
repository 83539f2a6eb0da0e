"""A device's DDM status report (Apple's `declarative/protocol/statusreport.yaml`), read within
bounds and turned into what Russet keeps: status item values by name, the state of each
declaration, and the client's capabilities.

The report arrives as the `Data` of a DeclarativeManagement check-in. Its size is checked before a
byte is parsed, its nesting before `json.loads` (`russet.apple.bounded_json`), its shape after;
anything malformed is refused whole (`Invalid`/`TooLarge`), so nothing of it is stored.

`StatusItems` nests by the dotted parts of each item's name (`device.operating-system.version` is
`{"device": {"operating-system": {"version": "17.4"}}}`); the names are those of Apple's status
schemas (`declarative/status/*.yaml`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from russet.apple.bounded_json import loads
from russet.kernel.errors import Invalid, TooLarge
from russet.schemas import SCHEMA_DIR

MAX_STATUS_BYTES = 1024 * 1024  # a full report of a Mac with many apps is a few hundred KB
MAX_DEPTH = 24
MAX_DECLARATION_STATES = 5000  # per kind, in one report
MAX_REASONS = 20  # kept per declaration
DECLARATIONS_ITEM = "management.declarations"
CAPABILITIES_ITEM = "management.client-capabilities"
# Items whose values are lists of things (apps, accounts, certificates): kept in the full report,
# not among the values facts are made of.
_NOT_VALUES = (".list", DECLARATIONS_ITEM, CAPABILITIES_ITEM)
_GROUPS = {
    "activations": "activation",
    "configurations": "configuration",
    "assets": "asset",
    "management": "management",
}


@functools.cache
def status_item_names() -> frozenset[str]:
    """Every status item Apple's schemas name (`statusreason.yaml` describes reasons, not an item)."""
    return frozenset(
        p.stem for p in (SCHEMA_DIR / "declarative/status").glob("*.yaml") if p.stem != "statusreason"
    )


@dataclass(frozen=True)
class DeclarationState:
    identifier: str
    kind: str
    server_token: str | None
    active: bool | None
    valid: str | None
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class StatusReport:
    raw: str  # the report as sent (decoded text), kept whole
    full: bool  # FullReport: replaces everything known, rather than updating it
    values: dict[str, Any]  # item name -> value, for the items that are values
    declarations: list[DeclarationState] | None  # None: the report says nothing of them
    capabilities: dict[str, Any] | None
    errors: list[dict[str, Any]]


def _flatten(items: Mapping[str, Any], names: frozenset[str], prefix: str, out: dict[str, Any]) -> None:
    for key, value in items.items():
        if not isinstance(key, str):
            continue
        name = f"{prefix}.{key}" if prefix else key
        if name in names:
            out[name] = value
        elif isinstance(value, Mapping):
            _flatten(value, names, name, out)


def _reasons(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
        raise Invalid(f"status report: {where}.reasons must be an array of dictionaries")
    kept = []
    for reason in value[:MAX_REASONS]:
        code = reason.get("code")
        if not isinstance(code, str):
            raise Invalid(f"status report: {where}.reasons: each needs a code (a string)")
        entry: dict[str, Any] = {"code": code[:200]}
        if isinstance(reason.get("description"), str):
            entry["description"] = reason["description"][:1000]
        if isinstance(reason.get("details"), Mapping):
            entry["details"] = dict(reason["details"])
        kept.append(entry)
    return kept


def _declarations(value: Any) -> list[DeclarationState]:
    if not isinstance(value, Mapping):
        raise Invalid(f"status report: {DECLARATIONS_ITEM} must be a dictionary")
    states = []
    for group, kind in _GROUPS.items():
        entries = value.get(group, [])
        if not isinstance(entries, list):
            raise Invalid(f"status report: {DECLARATIONS_ITEM}.{group} must be an array")
        if len(entries) > MAX_DECLARATION_STATES:
            raise TooLarge(f"status report: more than {MAX_DECLARATION_STATES} {group}")
        for index, entry in enumerate(entries):
            where = f"{DECLARATIONS_ITEM}.{group}[{index}]"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("identifier"), str):
                raise Invalid(f"status report: {where} needs an identifier (a string)")
            token, active, valid = entry.get("server-token"), entry.get("active"), entry.get("valid")
            if token is not None and not isinstance(token, str):
                raise Invalid(f"status report: {where}.server-token must be a string")
            if active is not None and not isinstance(active, bool):
                raise Invalid(f"status report: {where}.active must be a boolean")
            if valid is not None and not isinstance(valid, str):
                raise Invalid(f"status report: {where}.valid must be a string")
            states.append(
                DeclarationState(
                    entry["identifier"][:64],
                    kind,
                    None if token is None else token[:64],
                    active,
                    None if valid is None else valid[:16],
                    _reasons(entry.get("reasons"), where),
                )
            )
    return states


def parse_status(data: bytes) -> StatusReport:
    """The report in `data`, or Invalid/TooLarge saying why it cannot be one."""
    if len(data) > MAX_STATUS_BYTES:
        raise TooLarge(f"status report: {len(data)} bytes, more than the {MAX_STATUS_BYTES} accepted")
    try:
        report = loads(data, max_bytes=MAX_STATUS_BYTES, max_depth=MAX_DEPTH)
        raw = data.decode("utf-8")
    except ValueError as exc:  # UnicodeDecodeError is one
        raise Invalid(f"status report: not readable JSON: {str(exc)[:200]}") from None
    if not isinstance(report, Mapping):
        raise Invalid("status report: must be a JSON object")
    items = report.get("StatusItems")
    if not isinstance(items, Mapping):
        raise Invalid("status report: StatusItems (a dictionary) is required")
    errors = report.get("Errors", [])
    if not isinstance(errors, list) or not all(isinstance(e, Mapping) for e in errors):
        raise Invalid("status report: Errors must be an array of dictionaries")
    full = report.get("FullReport", False)
    if not isinstance(full, bool):
        raise Invalid("status report: FullReport must be a boolean")
    found: dict[str, Any] = {}
    _flatten(items, status_item_names(), "", found)
    declarations = _declarations(found[DECLARATIONS_ITEM]) if DECLARATIONS_ITEM in found else None
    capabilities = found.get(CAPABILITIES_ITEM)
    if capabilities is not None and not isinstance(capabilities, Mapping):
        raise Invalid(f"status report: {CAPABILITIES_ITEM} must be a dictionary")
    values = {name: value for name, value in found.items() if not name.endswith(_NOT_VALUES)}
    return StatusReport(
        raw=raw,
        full=full,
        values=values,
        declarations=declarations,
        capabilities=None if capabilities is None else dict(capabilities),
        errors=[dict(e) for e in errors[:100]],
    )


def _version(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def facts_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """The smart-group facts status values give (`russet.groups.query.FIELDS`), None when unknown."""
    pending = values.get("softwareupdate.pending-version")
    compliant = values.get("passcode.is-compliant")
    present = values.get("passcode.is-present")
    battery = values.get("device.power.battery-health")
    state = values.get("softwareupdate.install-state")
    return {
        "os_version": _version(values.get("device.operating-system.version")),
        "battery_health": battery if isinstance(battery, str) else None,
        "passcode_compliant": compliant if isinstance(compliant, bool) else None,
        "passcode_present": present if isinstance(present, bool) else None,
        "update_state": state if isinstance(state, str) else None,
        "pending_version": _version(pending.get("os-version")) if isinstance(pending, Mapping) else None,
    }
