"""`russet device allow-reenroll | forget | refusals`: a device's identity, from the CLI."""

from __future__ import annotations

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, table
from russet.mdm.admin import DEFAULT_OPENING


@click.command("allow-reenroll")
@click.argument("device_id")
@click.option("--for", "duration", default=DEFAULT_OPENING, show_default=True, help="How long: 30m, 24h, 7d")
@handles_errors
def allow_reenroll(device_id: str, duration: str) -> None:
    """Accept ONE enrollment of DEVICE_ID with another identity certificate (e.g. after a wipe)."""
    result = open_russet().devices.allow_reenroll(device_id, duration)
    click.echo(f"{device_id} may enroll again with a new identity once, until {result['reenroll_until']}")


@click.command("forget")
@click.argument("device_id")
@handles_errors
def forget(device_id: str) -> None:
    """Forget DEVICE_ID: its next request is told ErrorUnrecognizedDevice, and it unenrolls."""
    open_russet().devices.forget(device_id)
    click.echo(f"{device_id} is forgotten: its queue is cancelled; it unenrolls at its next request")


@click.command("refusals")
@click.option("--device", "device_id", default=None, help="Only this device")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@json_option
@handles_errors
def refusals(device_id: str | None, limit: int, as_json: bool) -> None:
    """Refused re-enrollments: another identity presented for an enrolled device."""
    rows = open_russet().devices.refusals(limit, device_id)
    if as_json:
        emit_json(rows)
        return
    table(
        rows,
        [
            ("at", "AT"),
            ("device_id", "DEVICE"),
            ("serial_number", "SERIAL"),
            ("presented_fp", "PRESENTED"),
            ("bound_fp", "BOUND"),
        ],
        "no refused re-enrollments",
    )


COMMANDS = (allow_reenroll, forget, refusals)
