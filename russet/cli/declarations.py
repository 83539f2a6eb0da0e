"""`russet declaration …`: declarative device management. Declarations (validated against Apple's
schemas), assignments to devices and groups, and what devices report: per device, per
declaration, the fleet, software updates. Each command calls `russet.declarations` (the service
the API uses) and prints a table or lines, or JSON with `--json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, fields, table
from russet.declarative.service import MAX_DATA_BYTES
from russet.declarative.validate import MAX_PAYLOAD_BYTES
from russet.kernel.errors import Invalid, TooLarge

SHOWN = ["identifier", "kind", "type", "server_token", "version", "created_by", "updated_at"]
FilePath = click.Path(exists=True, dir_okay=False, path_type=Path)


def _read(path: Path, limit: int) -> bytes:
    if path.stat().st_size > limit:
        raise TooLarge(f"{path}: larger than {limit} bytes")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None


def _payload(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(_read(path, MAX_PAYLOAD_BYTES))
    except ValueError as exc:
        raise Invalid(f"{path}: not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Invalid(f"{path}: the Payload must be a JSON object")
    return payload


def _lines(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(data)
        return
    for line in data.get("summary", []):
        click.echo(line)


@click.group("declaration")
def declaration() -> None:
    """Declarations for declarative device management (DDM), and what devices report."""


@declaration.command("list")
@json_option
@handles_errors
def declaration_list(as_json: bool) -> None:
    """Every declaration with its kind, type, server token, version and assignment count."""
    data = open_russet().declarations.list_declarations()
    if as_json:
        emit_json(data)
        return
    table(
        data["declarations"],
        [("identifier", "IDENTIFIER"), ("type", "TYPE"), ("version", "VERSION"), ("assignments", "ASSIGNED")],
        "no declarations",
    )


@declaration.command("create")
@click.argument("declaration_type", metavar="TYPE")
@click.argument("payload_file", type=FilePath)
@click.option("--identifier", help="The declaration's Identifier (default: a new UUID).")
@click.option(
    "--data", "data_file", type=FilePath, help="Data to serve: an asset's data or a legacy profile."
)
@click.option("--content-type", help="The data's media type.")
@click.option("--profile", help="A legacy declaration: the library profile it wraps.")
@click.option("--profile-version", type=click.IntRange(1), help="Its version (default: the latest).")
@json_option
@handles_errors
def declaration_create(
    declaration_type: str,
    payload_file: Path,
    identifier: str | None,
    data_file: Path | None,
    content_type: str | None,
    profile: str | None,
    profile_version: int | None,
    as_json: bool,
) -> None:
    """Create a declaration of TYPE whose Payload is the JSON in PAYLOAD_FILE (checked against
    Apple's schema; refused with its words)."""
    data = open_russet().declarations.create(
        declaration_type,
        _payload(payload_file),
        identifier=identifier,
        data=None if data_file is None else _read(data_file, MAX_DATA_BYTES),
        data_type=content_type,
        profile=profile,
        profile_version=profile_version,
        created_by="cli",
    )
    if as_json:
        emit_json(data)
        return
    fields(data, SHOWN)


@declaration.command("update")
@click.argument("identifier")
@click.argument("payload_file", type=FilePath)
@click.option("--data", "data_file", type=FilePath, help="New data to serve (default: keep it).")
@click.option("--content-type", help="The data's media type.")
@click.option("--profile", help="The library profile a legacy declaration wraps (again: its latest version).")
@click.option("--profile-version", type=click.IntRange(1), help="Its version.")
@json_option
@handles_errors
def declaration_update(
    identifier: str,
    payload_file: Path,
    data_file: Path | None,
    content_type: str | None,
    profile: str | None,
    profile_version: int | None,
    as_json: bool,
) -> None:
    """Replace a declaration's Payload: a new version and server token if anything changed."""
    data = open_russet().declarations.update(
        identifier,
        _payload(payload_file),
        data=None if data_file is None else _read(data_file, MAX_DATA_BYTES),
        data_type=content_type,
        profile=profile,
        profile_version=profile_version,
        created_by="cli",
    )
    if as_json:
        emit_json(data)
        return
    fields(data, [*SHOWN, "changed"])


@declaration.command("show")
@click.argument("identifier")
@json_option
@handles_errors
def declaration_show(identifier: str, as_json: bool) -> None:
    """A declaration: its payload, versions and assignments."""
    data = open_russet().declarations.show(identifier)
    if as_json:
        emit_json(data)
        return
    fields(data, SHOWN)
    click.echo(f"payload      {json.dumps(data['payload'], sort_keys=True)}")
    groups = ", ".join(g["name"] or str(g["id"]) for g in data["assignments"]["groups"])
    click.echo(f"devices      {', '.join(data['assignments']['devices']) or '-'}")
    click.echo(f"groups       {groups or '-'}")


@declaration.command("delete")
@click.argument("identifier")
@json_option
@handles_errors
def declaration_delete(identifier: str, as_json: bool) -> None:
    """Delete a declaration; devices holding it are told to remove it."""
    data = open_russet().declarations.delete(identifier)
    if as_json:
        emit_json(data)
        return
    click.echo(f"deleted {identifier}; {data['commanded']} devices told")


def _targets() -> Any:
    def decorate(func: Any) -> Any:
        func = click.option("--group", "groups", multiple=True, help="A group name or id (repeatable).")(func)
        func = click.option("--device", "devices", multiple=True, help="A UDID or serial (repeatable).")(func)
        return func

    return decorate


@declaration.command("assign")
@click.argument("identifier")
@_targets()
@json_option
@handles_errors
def declaration_assign(
    identifier: str, devices: tuple[str, ...], groups: tuple[str, ...], as_json: bool
) -> None:
    """Assign a declaration to devices and groups (a group's members as they change)."""
    if not devices and not groups:
        raise Invalid("name at least one --device or --group")
    data = open_russet().declarations.assign(identifier, devices=devices, groups=groups)
    if as_json:
        emit_json(data)
        return
    click.echo(f"{data['added']} assignments added; {data['commanded']} devices told")


@declaration.command("unassign")
@click.argument("identifier")
@_targets()
@json_option
@handles_errors
def declaration_unassign(
    identifier: str, devices: tuple[str, ...], groups: tuple[str, ...], as_json: bool
) -> None:
    """Remove a declaration's assignments to these devices and groups."""
    if not devices and not groups:
        raise Invalid("name at least one --device or --group")
    data = open_russet().declarations.unassign(identifier, devices=devices, groups=groups)
    if as_json:
        emit_json(data)
        return
    click.echo(f"{data['removed']} assignments removed; {data['commanded']} devices told")


@declaration.command("device")
@click.argument("device")
@json_option
@handles_errors
def declaration_device(device: str, as_json: bool) -> None:
    """A device's declarations, declared vs reported, and its status values."""
    data = open_russet().declarations.device_state(device)
    if as_json:
        emit_json(data)
        return
    table(
        data["declarations"],
        [
            ("identifier", "IDENTIFIER"),
            ("kind", "KIND"),
            ("state", "STATE"),
            ("reasons", "REASONS"),
            ("from", "FROM"),
        ],
        "no declarations",
    )
    for name, value in sorted(data["status"].items()):
        click.echo(f"{name}: {json.dumps(value)}")


@declaration.command("status")
@click.argument("identifier")
@json_option
@handles_errors
def declaration_status(identifier: str, as_json: bool) -> None:
    """One declaration across the fleet: devices per state, failures and why."""
    _lines(open_russet().declarations.declaration_status(identifier), as_json)


@declaration.command("summary")
@json_option
@handles_errors
def declaration_summary(as_json: bool) -> None:
    """The fleet: OS versions reported ("312 devices on 17.4"), each declaration's states."""
    _lines(open_russet().declarations.summary(), as_json)


@declaration.command("updates")
@json_option
@handles_errors
def declaration_updates(as_json: bool) -> None:
    """Software-update enforcement: what each device runs, its target and deadline, whether it did."""
    data = open_russet().declarations.software_updates()
    if as_json:
        emit_json(data)
        return
    table(
        data["devices"],
        [
            ("device", "DEVICE"),
            ("os_version", "RUNS"),
            ("target_os_version", "TARGET"),
            ("by", "BY"),
            ("install_state", "STATE"),
            ("updated", "UPDATED"),
        ],
        "no device is told to update",
    )
    for line in data["summary"]:
        click.echo(line)
