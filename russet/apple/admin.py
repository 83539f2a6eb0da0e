"""What Russet tells Apple, administered (`russet.ledger_admin`): the ledger's report and subject
view, its retention, and the connections to Apple with their disconnect and purge.

It answers the privacy officer's questions for every surface alike, raising error kinds with a
message for people and returning JSON-ready dicts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from russet.apple import bounded_json
from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.connections import ConnectionRefused, ConnectionRegistry
from russet.apple.ledger import Ledger
from russet.apple.ports import SubjectAliases
from russet.apple.receipts import ReceiptRefused
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.storage.db import utcnow

# A receipt is a few kilobytes (counts, a hash, its signature); a file much larger is not one.
RECEIPT_MAX_BYTES = 1024 * 1024


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_since(text: str | None) -> datetime | None:
    """`30d`, `12h`, `90m` back from now, or an ISO 8601 date/time."""
    if not text:
        return None
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text[:-1].isdigit() and text[-1] in units:
        return utcnow() - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"--since {text!r}: expected e.g. 30d, 12h or 2026-01-31") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class LedgerAdmin:
    """The ledger and the connections to Apple, for people."""

    def __init__(
        self,
        ledger: Ledger,
        connections: ConnectionRegistry,
        aliases: SubjectAliases,
        retention_days: int,
    ) -> None:
        self._ledger = ledger
        self._connections = connections
        self._aliases = aliases
        self.retention_days = retention_days

    def ledger_report(self, *, since: str | None = None, service: str | None = None) -> list[dict[str, Any]]:
        """Every catalogue field: how often it was exchanged, about how many subjects, first and last."""
        if service is not None and service not in SERVICE_NAMES:
            raise Invalid(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
        return [
            {**row, "first": _iso(row["first"]), "last": _iso(row["last"])}
            for row in self._ledger.report(since=parse_since(since), service=service)
        ]

    def ledger_subject(self, identifier: str) -> dict[str, Any]:
        """What Apple has been told about a device (serial or UDID) or a person, when and why."""
        identifier = identifier.strip()
        if not identifier:
            raise Invalid("name a serial number, UDID or user")
        aliases = {identifier} | self._aliases.aliases(identifier)
        rows = self._ledger.about(sorted(aliases))
        return {
            "subject": identifier,
            "also_known_as": sorted(aliases - {identifier}),
            "exchanges": [
                {
                    "at": _iso(r["at"]),
                    "service": r["service"],
                    "connection": r["connection"],
                    "endpoint": r["endpoint"],
                    "direction": r["direction"],
                    "field": r["field"],
                    "purpose": r["purpose"],
                    "status": r["status"],
                    "matched": r["matched"],
                }
                for r in rows
            ],
        }

    def prune_ledger(self, older_than_days: int | None = None) -> int:
        """Delete ledger rows older than `older_than_days` (default: the retention period)."""
        days = self.retention_days if older_than_days is None else older_than_days
        return self._ledger.prune(utcnow() - timedelta(days=days))

    # -- connections -----------------------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        """Connections to Apple's services and their state."""
        return self._connections.all()

    def receipts(self) -> list[dict[str, Any]]:
        """Receipts of past disconnects and purges."""
        return self._connections.receipts()

    def require_connection(self, service: str, name: str) -> None:
        """NotFound unless a connection (active or disconnected) has this name: surfaces check it
        before they ask a person to confirm a disconnect, so nobody confirms a typo."""
        if not any(c["service"] == service and c["name"] == name for c in self._connections.all()):
            raise NotFound(f"no {SERVICE_NAMES.get(service, service)} connection named {name!r}")

    def disconnect(self, service: str, name: str, *, purge: bool) -> dict[str, Any]:
        """Stop all traffic to a connection and destroy its credentials (and its data, with
        `purge`); the receipt says what was destroyed and what is left to do on Apple's side."""
        try:
            return self._connections.disconnect(service, name, purge=purge)
        except ConnectionRefused as exc:
            raise Conflict(str(exc)) from None

    def verify_receipt(self, text: str | bytes) -> dict[str, Any]:
        """Check a receipt (the JSON the disconnect returned): intact, and signed under this
        Russet's CA. Returns it; a receipt that is not is Invalid, with the reason."""
        try:
            receipt = bounded_json.loads(text, max_bytes=RECEIPT_MAX_BYTES)
        except bounded_json.UnreadableJson as exc:
            raise Invalid(f"not a receipt: {exc}") from None
        except (ValueError, UnicodeDecodeError):
            raise Invalid("not a receipt: the file is not JSON") from None
        try:
            return self._connections.verify_receipt(receipt)
        except ReceiptRefused as exc:
            raise Invalid(str(exc)) from None
