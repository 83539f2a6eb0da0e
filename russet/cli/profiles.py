"""`russet profile add|list|show|versions|download|rm|install`: the profile library."""

from __future__ import annotations

from pathlib import Path

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import fields, json_or, table
from russet.kernel.errors import Invalid, TooLarge
from russet.library.upload import MAX_PROFILE_BYTES

PROFILE_COLUMNS = [
    ("name", "NAME"),
    ("identifier", "IDENTIFIER"),
    ("latest_version", "VERSION"),
    ("payload_types", "PAYLOADS"),
    ("variables", "VARIABLES"),
    ("updated_at", "UPDATED"),
]
VERSION_COLUMNS = [
    ("version", "VERSION"),
    ("created_at", "UPLOADED"),
    ("uploaded_by", "BY"),
    ("payload_types", "PAYLOADS"),
    ("content_sha256", "SHA-256"),
    ("signed_by", "SIGNED BY"),
]


def _joined(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Lists shown as comma-separated words in tables."""
    return [{k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()} for r in rows]


def _read(path: Path) -> bytes:
    """The file, refused unread past the library's limit."""
    try:
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            raise TooLarge(f"{path} is {size} bytes; the library takes profiles up to {MAX_PROFILE_BYTES}")
        return path.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None


@click.group("profile")
def profile() -> None:
    """The profile library: .mobileconfig files validated, versioned and signed on delivery."""


@profile.command("add")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--name",
    help="The profile's name (default: the existing profile with its identifier, "
    "else its PayloadIdentifier).",
)
@json_option
@handles_errors
def add(file: Path, name: str | None, as_json: bool) -> None:
    """Upload FILE: a new profile, or a new version of the one with its PayloadIdentifier."""
    result = open_russet().library.add(_read(file), name=name, uploaded_by="cli")
    if json_or(result, as_json):
        return
    summary = result["profile"]
    if result["created"]:
        click.echo(f"{summary['name']} ({summary['identifier']}): version {result['version']} added")
    else:
        click.echo(
            f"{summary['name']} ({summary['identifier']}): unchanged, still version {result['version']}"
        )
    for variable in result["unknown_variables"]:
        click.echo(f"warning: {variable} is not a variable Russet knows; it is sent as written", err=True)


@profile.command("list")
@json_option
@handles_errors
def list_profiles(as_json: bool) -> None:
    """Profiles in the library with their latest version."""
    rows = open_russet().library.list_profiles()
    if not json_or(rows, as_json):
        table(_joined(rows), PROFILE_COLUMNS, "no profiles")


@profile.command("show")
@click.argument("name")
@json_option
@handles_errors
def show(name: str, as_json: bool) -> None:
    """A profile (by name or identifier): its payloads and versions."""
    data = open_russet().library.show(name)
    if json_or(data, as_json):
        return
    fields(
        _joined([data])[0],
        ["name", "identifier", "latest_version", "display_name", "variables", "content_sha256", "updated_at"],
    )
    click.echo("")
    table(
        data["payloads"],
        [("type", "PAYLOAD TYPE"), ("identifier", "IDENTIFIER"), ("display_name", "NAME"), ("uuid", "UUID")],
        "no payloads",
    )


@profile.command("versions")
@click.argument("name")
@json_option
@handles_errors
def versions(name: str, as_json: bool) -> None:
    """A profile's versions, newest first."""
    rows = open_russet().library.versions(name)
    if not json_or(rows, as_json):
        table(_joined(rows), VERSION_COLUMNS, "no versions")


@profile.command("download")
@click.argument("name")
@click.option("--version", type=click.IntRange(1, 2**63 - 1), help="A version (default: the latest).")
@click.option("--device", help="Write what this device is sent: variables substituted, signed by Russet.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@handles_errors
def download(name: str, version: int | None, device: str | None, out: Path) -> None:
    """Write a version as stored (XML, unsigned), or as DEVICE receives it (--device)."""
    _, content = open_russet().library.download(name, version, device)
    try:
        out.write_bytes(content)
    except OSError as exc:
        raise Invalid(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out} ({len(content)} bytes)")


@profile.command("rm")
@click.argument("name")
@json_option
@handles_errors
def remove(name: str, as_json: bool) -> None:
    """Delete a profile and all its versions (refused while something uses it). Devices keep it."""
    result = open_russet().library.delete(name)
    if not json_or(result, as_json):
        click.echo(f"deleted {result['deleted']} ({result['identifier']}, {result['versions']} versions)")


@profile.command("install")
@click.argument("name")
@click.argument("devices", nargs=-1, required=True)
@click.option("--version", type=click.IntRange(1, 2**63 - 1), help="A version (default: the latest).")
@json_option
@handles_errors
def install(name: str, devices: tuple[str, ...], version: int | None, as_json: bool) -> None:
    """Queue InstallProfile with profile NAME for each of DEVICES (enrollment ids)."""
    result = open_russet().library.install(name, list(devices), version=version, created_by="cli")
    if json_or(result, as_json):
        return
    click.echo(f"{result['profile']} version {result['version']}:")
    table(result["commands"], [("device", "DEVICE"), ("command_uuid", "COMMAND")], "nothing queued")
