"""`russet secret …`: the secrets Russet escrows for devices, and `russet device clear-passcode`.

Showing a secret asks for `--reason` (required, recorded with the viewer `cli:<user>`) and rotates
it where the device allows; every other command shows kinds, states and times, never a value.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.connection import run
from russet.cli.output import emit_json, fields, table
from russet.escrow.service import KINDS

KIND = click.Choice(KINDS)


def _viewer() -> str:
    """Who is at the terminal, as the record of views names them."""
    try:
        return f"cli:{getpass.getuser()}"[:100]
    except (KeyError, OSError):
        return "cli:unknown"


@click.group("secret")
def secret() -> None:
    """Escrowed device secrets: Recovery Lock / firmware password, FileVault key, bypass code."""


@secret.command("list")
@click.argument("device")
@json_option
@handles_errors
def list_secrets(device: str, as_json: bool) -> None:
    """What is escrowed for DEVICE (UDID or serial number): kinds, states, times; never a value."""
    data = open_russet().escrow.secrets(device)
    if as_json:
        emit_json(data)
        return
    click.echo(f"unlock token: {'escrowed' if data['unlock_token']['escrowed'] else 'none'}")
    cols = [
        ("kind", "KIND"),
        ("state", "STATE"),
        ("acknowledged_at", "ESCROWED"),
        ("verified_at", "VERIFIED"),
    ]
    table(data["secrets"], cols, "no secrets escrowed")


@secret.command("show")
@click.argument("device")
@click.argument("kind", type=KIND)
@click.option("--reason", required=True, help="Why you need to see it (recorded, at most 500 characters)")
@json_option
@handles_errors
def show(device: str, kind: str, reason: str, as_json: bool) -> None:
    """Show DEVICE's escrowed KIND (recorded, then rotated where the device allows)."""
    data = open_russet().escrow.view(device, kind, viewer=_viewer(), reason=reason)
    if as_json:
        emit_json(data)
        return
    click.echo(data["secret"])
    rotation = data["rotation"]
    note = (
        f"rotation queued ({rotation['command_uuid']})"
        if rotation["queued"]
        else f"not rotated: {rotation['why']}"
    )
    click.echo(f"(this view is recorded; {note})", err=True)


@secret.command("rotate")
@click.argument("device")
@click.argument("kind", type=KIND)
@handles_errors
def rotate(device: str, kind: str) -> None:
    """Set a new Recovery Lock / firmware password, or rotate the FileVault recovery key."""
    data = open_russet().escrow.rotate(device, kind, by=_viewer())
    click.echo(f"{data['request_type']} queued for {data['device']}: {data['command_uuid']}")


@secret.command("fetch")
@click.argument("device")
@click.argument("kind", type=click.Choice(["filevault", "bypass-code"]))
@handles_errors
def fetch(device: str, kind: str) -> None:
    """Ask DEVICE for its FileVault key envelope or Activation Lock bypass code."""
    data = open_russet().escrow.fetch(device, kind, by=_viewer())
    click.echo(f"{data['request_type']} queued for {data['device']}: {data['command_uuid']}")


@secret.command("views")
@click.argument("device", required=False)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@json_option
@handles_errors
def views(device: str | None, limit: int, as_json: bool) -> None:
    """Who was shown which secret (of DEVICE, or of every device), when and why."""
    rows = open_russet().escrow.views(device, limit)
    if as_json:
        emit_json(rows)
        return
    cols = [("at", "AT"), ("viewer", "VIEWER"), ("device", "DEVICE"), ("kind", "KIND"), ("reason", "REASON")]
    table(rows, cols, "no secret has been shown")


@secret.command("filevault-profile")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@handles_errors
def filevault_profile(out: Path) -> None:
    """Write the FileVault profile (unsigned) that escrows recovery keys to Russet's certificate."""
    data = open_russet().escrow.filevault_profile()
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out}: add it to the profile library (russet profile add) to deliver it signed")


@secret.command("activation-lock")
@click.argument("name", default="default")
@click.option("--org-name", required=True, help="Your organisation's name, as Apple is told it")
@handles_errors
def activation_lock(name: str, org_name: str) -> None:
    """Add (or re-activate) connection NAME to Apple's Activation Lock service."""
    data = open_russet().escrow.connect_activation_lock(name, org_name)
    click.echo(f"Activation Lock connection {name!r} {'added' if data['created'] else 'updated'}")


@secret.command("clear-activation-lock")
@click.argument("device")
@click.option("--connection", default="default", show_default=True)
@json_option
@handles_errors
def clear_activation_lock(device: str, connection: str, as_json: bool) -> None:
    """Send DEVICE's escrowed bypass code to Apple's Activation Lock service."""
    data = run(
        lambda russet: russet.escrow.clear_activation_lock(device, by=_viewer(), connection=connection)
    )
    if as_json:
        emit_json(data)
        return
    fields(data, ["device", "serial_number", "connection", "cleared"])


@click.command("clear-passcode")
@click.argument("device")
@handles_errors
def clear_passcode(device: str) -> None:
    """Clear DEVICE's passcode with the UnlockToken it escrowed (ClearPasscode)."""
    data = open_russet().escrow.clear_passcode(device, by=_viewer())
    click.echo(f"ClearPasscode queued for {data['device']}: {data['command_uuid']}")
