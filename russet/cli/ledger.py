"""`russet ledger …`, `russet connections` and `russet disconnect`: what Russet tells Apple."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import click

from russet.apple import documents
from russet.apple.admin import RECEIPT_MAX_BYTES, parse_since
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


def _write(data: bytes | str, out: Path | None) -> None:
    """A document to --out (0600: it is about people) or to standard output."""
    raw = data.encode() if isinstance(data, str) else data
    if out is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    click.echo(f"wrote {out} ({len(raw)} bytes)", err=True)


_out_option = click.option(
    "--out", type=click.Path(dir_okay=False, writable=True, path_type=Path), help="Write to this file."
)


@ledger.command("table")
@click.option("--since", help="Only exchanges since then: 30d, 12h or an ISO date.")
@click.option("--service", type=click.Choice(["apns", "abm", "vpp", "activationlock"]))
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True, help="Days in the chart.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "csv", "json", "pdf"]), default="text", show_default=True
)
@_out_option
@handles_errors
def table_report(since: str | None, service: str | None, days: int, fmt: str, out: Path | None) -> None:
    """What Russet tells Apple, laid out as Microsoft's "Data Intune sends to Apple" table, with
    Russet's counts, first and last seen, and where Russet differs."""
    report = open_russet().ledger_privacy.table(since=parse_since(since), service=service, days=days)
    if fmt == "json":
        _write(json.dumps(report, indent=2) + "\n", out)
    elif fmt == "csv":
        _write(documents.table_csv(report), out)
    elif fmt == "pdf":
        _write(documents.table_pdf(report), out)
    else:
        _write(documents.table_text(report), out)


@ledger.command("subject")
@click.argument("query", metavar="EMAIL|MANAGED_APPLE_ID|CLIENT_USER_ID|UDID|SERIAL|TOKEN")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "pdf"]), default="text", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@_out_option
@handles_errors
def subject(query: str, fmt: str, as_json: bool, out: Path | None) -> None:
    """Everything Russet told Apple or was told by Apple about a person or device, across
    services (the right-of-access export)."""
    data = open_russet().ledger_privacy.subject(query)
    if as_json or fmt == "json":
        _write(json.dumps(data, indent=2) + "\n", out)
        return
    if fmt == "pdf":
        _write(documents.subject_pdf(data), out)
        return
    for ident in data["identifiers"]:
        click.echo(f"{ident['kind']}: {ident['value']} ({ident['source']})")
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
        f"nothing about {query} has been exchanged with Apple",
    )


@ledger.command("erase")
@click.argument("query", metavar="EMAIL|MANAGED_APPLE_ID|CLIENT_USER_ID|UDID|SERIAL|TOKEN")
@click.option("--reason", help="Why (kept with the record of the erasure).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@handles_errors
def erase(query: str, reason: str | None, yes: bool, as_json: bool) -> None:
    """Erase one subject's ledger detail: the rows become per-day counts (totals unchanged), and
    the enrollment requests forget the people found (who signed in before enrollment)."""
    if not yes:
        click.confirm(f"Erase the ledger detail about {query!r} (counts are kept)?", abort=True)
    done = open_russet().ledger_privacy.erase(query, by="cli", reason=reason)
    if as_json:
        emit_json(done)
        return
    click.echo(f"erasure {done['erasure']}: {done['rows_folded_into_counts']} ledger rows folded into counts")
    for service, n in sorted(done["per_service"].items()):
        click.echo(f"  {service}: {n}")
    if done["enrollment_people_cleared"]:
        click.echo(f"{done['enrollment_people_cleared']} enrollment requests no longer name the person")


@ledger.command("erasures")
@json_option
@handles_errors
def erasures(as_json: bool) -> None:
    """Erasures done so far (when, by whom, how many rows; never about whom)."""
    rows = open_russet().ledger_privacy.erasures()
    if as_json:
        emit_json(rows)
        return
    table(
        rows,
        [("id", "ID"), ("at", "When"), ("requested_by", "By"), ("rows", "Rows"), ("reason", "Reason")],
        "no erasures",
    )


@ledger.command("retention")
@click.argument("service", required=False, type=click.Choice(["apns", "abm", "vpp", "activationlock"]))
@click.argument("days", required=False, type=click.IntRange(0, 36_500))
@click.option("--apply", "apply_now", is_flag=True, help="Fold detail past retention into counts now.")
@json_option
@handles_errors
def retention(service: str | None, days: int | None, apply_now: bool, as_json: bool) -> None:
    """Keep ledger detail DAYS days for SERVICE, then only counts; without arguments, show the
    policies."""
    privacy = open_russet().ledger_privacy
    if service is not None:
        if days is None:
            raise click.UsageError("name the days to keep detail: russet ledger retention SERVICE DAYS")
        privacy.set_retention(service, days, by="cli")
    if apply_now:
        folded = privacy.apply_retention()
        click.echo("folded into counts: " + (", ".join(f"{s} {n}" for s, n in folded.items()) or "nothing"))
    rows = privacy.retention_policies()
    if as_json:
        emit_json(rows)
        return
    table(
        [
            {**r, "detail_days": "until pruned" if r["detail_days"] is None else r["detail_days"]}
            for r in rows
        ],
        [
            ("service", "SERVICE"),
            ("detail_days", "DETAIL DAYS"),
            ("detail_rows", "DETAIL ROWS"),
            ("counted_rows", "COUNTED ROWS"),
            ("oldest_detail", "OLDEST DETAIL"),
            ("applied_at", "APPLIED"),
        ],
        "no services",
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


@ledger.command("verify-receipt")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@handles_errors
def verify_receipt(file: Path) -> None:
    """Check a disconnect/purge receipt (the JSON `russet disconnect --json` printed or the API
    returned): exit 0 only if it is intact and signed under this Russet's CA."""
    with file.open("rb") as f:  # past the bound, the service refuses it without reading it all
        text = f.read(RECEIPT_MAX_BYTES + 1)
    receipt = open_russet().ledger_admin.verify_receipt(text)
    click.echo(
        f"receipt intact: {receipt.get('service')} {receipt.get('connection')!r} at {receipt.get('at')}, "
        "signed under Russet's CA"
    )


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
    russet = open_russet()
    russet.ledger_admin.require_connection(service, name)  # before asking: nobody confirms a typo
    if not yes:
        what = (
            "destroy its credentials and delete all data tied to it" if purge else "destroy its credentials"
        )
        click.confirm(f"Disconnect {service} {name!r}: stop all traffic, {what}?", abort=True)
    receipt = russet.ledger_admin.disconnect(service, name, purge=purge)
    if as_json:
        emit_json(receipt)
        return
    click.echo(f"disconnected {service} {name!r} at {receipt['at']}")
    for kind, count in receipt["credentials_destroyed"].items():
        click.echo(f"  credentials destroyed: {kind}: {count}")
    for table_name, count in receipt["data_deleted"].items():
        click.echo(f"  data deleted: {table_name}: {count}")
    click.echo(f"  receipt hash of deleted ids: {receipt['deleted_ids_sha256']}")
    if purge:
        for table_name, counts in receipt["tables"].items():
            click.echo(f"  rows tied to it: {table_name}: {counts['before']} before, {counts['after']} after")
    if "signature" in receipt:
        click.echo("  receipt signed by Russet's CA (keep it: `russet disconnect ... --json`, then")
        click.echo("  `russet ledger verify-receipt FILE`; also under /api/v1/connections/receipts)")
    for step in receipt["remaining_on_apple_side"]:
        click.echo(f"  still to do on Apple's side: {step}")
