"""`russet webhook …`: the receivers of Russet's events (add, list, remove) and the delivery log.
Each command calls `russet.webhooks` (the same service as the API)."""

from __future__ import annotations

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import fields, json_or, table
from russet.webhooks.shapes import EVENT_TYPES, FORMATS


@click.group("webhook")
def webhook() -> None:
    """Webhooks: signed JSON events to your own receivers, retried from a durable outbox."""


@webhook.command("add")
@click.argument("url")
@click.option(
    "--events",
    help=f"Comma-separated event types (default: all): {', '.join(EVENT_TYPES)}.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="russet", show_default=True)
@json_option
@handles_errors
def webhook_add(url: str, events: str | None, fmt: str, as_json: bool) -> None:
    """Add a receiver. Its signing secret is printed this once (kept sealed)."""
    chosen = [e for e in (events or "").split(",") if e.strip()] or None
    data = open_russet().webhooks.add(url, chosen, fmt)
    if json_or(data, as_json):
        return
    fields({**data, "events": ",".join(data["events"])}, ["id", "url", "events", "format", "secret"])
    click.echo("the secret is shown only now: X-Russet-Signature is sha256=HMAC-SHA256(secret, body) in hex")


@webhook.command("list")
@json_option
@handles_errors
def webhook_list(as_json: bool) -> None:
    """Receivers, their events and format, and how many events each still has to receive."""
    data = open_russet().webhooks.endpoints()
    if json_or(data, as_json):
        return
    rows = [{**d, "events": ",".join(d["events"])} for d in data]
    table(
        rows,
        [("id", "ID"), ("url", "URL"), ("events", "EVENTS"), ("format", "FORMAT"), ("pending", "PENDING")],
        "no webhooks",
    )


@webhook.command("remove")
@click.argument("endpoint_id", type=click.IntRange(1))
@handles_errors
def webhook_remove(endpoint_id: int) -> None:
    """Remove a receiver and the events it had still to receive (its delivery log stays)."""
    open_russet().webhooks.remove(endpoint_id)
    click.echo(f"webhook {endpoint_id} removed")


@webhook.command("deliveries")
@click.option("--endpoint", "endpoint_id", type=click.IntRange(1), help="Only this receiver's.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@json_option
@handles_errors
def webhook_deliveries(endpoint_id: int | None, limit: int, as_json: bool) -> None:
    """The delivery log, newest first: every attempt, its HTTP status and outcome."""
    data = open_russet().webhooks.deliveries(endpoint_id, limit)
    if json_or(data, as_json):
        return
    table(
        data,
        [
            ("at", "AT"),
            ("endpoint_id", "WEBHOOK"),
            ("event_type", "EVENT"),
            ("event_id", "EVENT ID"),
            ("attempt", "ATTEMPT"),
            ("status", "STATUS"),
            ("outcome", "OUTCOME"),
            ("error", "ERROR"),
        ],
        "no deliveries",
    )
