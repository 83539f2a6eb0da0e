"""`russet ledger …`, `russet connections` and `russet disconnect`: what Russet tells Apple."""

from __future__ import annotations

import csv
import io

import click

from russet.apple.ledger import REPORT_COLUMNS
from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, table


@click.group("ledger")
def ledger() -> None:
    """The field-by-field record of what Russet exchanged with Apple."""


@ledger.command("report")
@click.option("--since", help="Only exchanges since then: 30d, 12h or an ISO date.")
@click.option("--service", type=click.Choice(["apns", "abm", "vpp", "activationlock"]))
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@handles_errors
def report(since: str | None, service: str | None, fmt: str) -> None:
    """Every field Russet may exchange with Apple: how often, about how many subjects, when."""
    rows = open_russet().ledger_admin.ledger_report(since=since, service=service)
    if fmt == "json":
        emit_json(rows)
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([title for _, title in REPORT_COLUMNS])
        for row in rows:
            writer.writerow(["" if row[key] is None else row[key] for key, _ in REPORT_COLUMNS])
        click.echo(out.getvalue(), nl=False)
    else:
        shown = [{**r, "times": r["times"] or "never"} for r in rows]
        table(shown, REPORT_COLUMNS, "the catalogue is empty")


@ledger.command("subject")
@click.argument("identifier", metavar="SERIAL|UDID|USER")
@json_option
@handles_errors
def subject(identifier: str, as_json: bool) -> None:
    """What Apple has been told about this device or person, when, and why."""
    data = open_russet().ledger_admin.ledger_subject(identifier)
    if as_json:
        emit_json(data)
        return
    if data["also_known_as"]:
        click.echo(f"{identifier} is also known as {', '.join(data['also_known_as'])}")
    table(
        data["exchanges"],
        [
            ("at", "When"),
            ("service", "Service"),
            ("direction", "Direction"),
            ("field", "Data"),
            ("endpoint", "Endpoint"),
            ("purpose", "Why"),
            ("status", "Status"),
        ],
        f"nothing about {identifier} has been exchanged with Apple",
    )


@ledger.command("prune")
@click.option(
    "--older-than-days", type=click.IntRange(min=0), help="Defaults to RUSSET_LEDGER_RETENTION_DAYS."
)
@handles_errors
def prune(older_than_days: int | None) -> None:
    """Delete ledger rows older than the retention period."""
    ledger_admin = open_russet().ledger_admin
    days = ledger_admin.retention_days if older_than_days is None else older_than_days
    removed = ledger_admin.prune_ledger(days)
    click.echo(f"removed {removed} ledger rows older than {days} days")


@click.command("connections")
@json_option
@handles_errors
def connections(as_json: bool) -> None:
    """Connections to Apple's services and their state."""
    rows = open_russet().ledger_admin.connections()
    if as_json:
        emit_json(rows)
        return
    table(
        rows,
        [
            ("service", "SERVICE"),
            ("name", "NAME"),
            ("status", "STATUS"),
            ("created_at", "SINCE"),
            ("disconnected_at", "DISCONNECTED"),
            ("busy_with", "BUSY"),
        ],
        "no connections to Apple",
    )


@click.command("disconnect")
@click.argument("service", type=click.Choice(["apns", "abm", "vpp", "activationlock"]))
@click.argument("name", required=False)
@click.option(
    "--purge", is_flag=True, help="Also delete every datum obtained from or tied to the connection."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@handles_errors
def disconnect(service: str, name: str | None, purge: bool, yes: bool, as_json: bool) -> None:
    """Stop all traffic to an Apple service connection and destroy its credentials."""
    if name is None:
        if service != "apns":
            raise click.ClickException(
                f"name the {service} connection to disconnect (see `russet connections`)"
            )
        name = "default"
    if not yes:
        what = (
            "destroy its credentials and delete all data tied to it" if purge else "destroy its credentials"
        )
        click.confirm(f"Disconnect {service} {name!r}: stop all traffic, {what}?", abort=True)
    receipt = open_russet().ledger_admin.disconnect(service, name, purge=purge)
    if as_json:
        emit_json(receipt)
        return
    click.echo(f"disconnected {service} {name!r} at {receipt['at']}")
    for kind, count in receipt["credentials_destroyed"].items():
        click.echo(f"  credentials destroyed: {kind}: {count}")
    for table_name, count in receipt["data_deleted"].items():
        click.echo(f"  data deleted: {table_name}: {count}")
    click.echo(f"  receipt hash of deleted ids: {receipt['deleted_ids_sha256']}")
    for step in receipt["remaining_on_apple_side"]:
        click.echo(f"  still to do on Apple's side: {step}")
