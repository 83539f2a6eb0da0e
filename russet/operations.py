"""Admin operations shared by the REST API and the CLI, so both behave the same.

They take already-typed input, raise `russet.kernel.errors` kinds (with a message for people)
on bad input, and return plain JSON-ready dicts; each surface maps the kinds in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from russet import plists
from russet.apns.state import request_pushes
from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.connections import ConnectionRefused
from russet.commands import CommandError, build_command, render_command_plist
from russet.commands.inventory import jsonable
from russet.commands.secrets import redact, secret_keys
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.mdm.queue import UUID_PLACEHOLDER, UnknownDevices
from russet.mdm.reenroll import REFUSALS_KEPT, ReenrollmentStore
from russet.mdm.signatures import SeenSignatures
from russet.runtime import Russet
from russet.storage.db import utcnow
from russet.storage.login_failures import LoginLimiter

MAX_DEVICES_PER_COMMAND = 100_000
# The largest id storage holds (BIGINT): a larger one would make PostgreSQL (and SQLite from 2**63)
# raise instead of finding nothing, so callers check ids against it first.
MAX_DB_INT = 2**63 - 1


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def device_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "serial_number": row["serial_number"],
        "device_name": row["device_name"],
        "model": row["model"] or row["product_name"],
        "os_version": row["os_version"],
        "enrollment_type": row["enrollment_type"],
        "enrolled": bool(row["enabled"]),
        "last_seen_at": _iso(row["last_seen_at"]),
    }


def list_devices(
    russet: Russet, *, limit: int = 100, after: str | None = None, search: str | None = None
) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000")
    rows = russet.storage.enrollments.page(limit=limit, after=after, search=search)
    return {
        "devices": [device_summary(r) for r in rows],
        "next": rows[-1]["id"] if len(rows) == limit else None,
    }


def show_device(russet: Russet, device_id: str) -> dict[str, Any]:
    row = russet.storage.enrollments.get(device_id)
    if row is None:
        raise NotFound(f"no device with id {device_id!r}")
    summary = device_summary(row)
    summary.update(
        {
            "channel": row["channel"],
            "model_name": row["model_name"],
            "product_name": row["product_name"],
            "build_version": row["build_version"],
            "topic": row["topic"],
            "push_token_present": row["sealed_push"] is not None,
            "awaiting_configuration": bool(row["awaiting_configuration"]),
            "authenticated_at": _iso(row["authenticated_at"]),
            "token_updated_at": _iso(row["token_updated_at"]),
            "checked_out_at": _iso(row["checked_out_at"]),
            "created_at": _iso(row["created_at"]),
            "inventory": row["inventory"],
            "push": russet.pusher.state.device(device_id),
        }
    )
    if row["channel"] == "user":
        summary.update(
            {
                "device": row["device_id"],
                "user_id": row["user_id"],
                "user_short_name": row["user_short_name"],
                "user_long_name": row["user_long_name"],
            }
        )
    else:
        escrowed = russet.storage.bootstrap.escrowed_at(device_id)  # present/absent, never the token
        summary["bootstrap_token"] = {"escrowed": escrowed is not None, "escrowed_at": _iso(escrowed)}
        summary["user_channels"] = [
            {
                "id": u["id"],
                "user_short_name": u["user_short_name"],
                "user_long_name": u["user_long_name"],
                "enrollment_type": u["enrollment_type"],
                "enrolled": bool(u["enabled"]),
                "last_seen_at": _iso(u["last_seen_at"]),
            }
            for u in russet.storage.enrollments.user_channels(device_id)
        ]
    return summary


def resolve_targets(russet: Russet, targets: list[str]) -> list[str]:
    """Enrollment ids for command targets: a device id, or a user channel written
    `<device id>:<user id>`, where the user may also be named by short name (`<UDID>:alex`)."""
    named_users = [t for t in targets if ":" in t]
    if not named_users:
        return targets
    known = russet.storage.enrollments.existing(named_users)
    resolved = []
    for target in targets:
        if ":" in target and target not in known:
            device_id, _, user = target.rpartition(":")
            target = russet.storage.enrollments.user_channel_named(device_id, user) or target
        resolved.append(target)
    return resolved


def send_command(
    russet: Russet, device_ids: list[str], command: dict[str, Any], created_by: str | None
) -> dict[str, Any]:
    """Validate a command and queue it once per device; returns the CommandUUID per device."""
    if not device_ids:
        raise Invalid("name at least one device")
    if len(device_ids) > MAX_DEVICES_PER_COMMAND:
        raise Invalid(f"at most {MAX_DEVICES_PER_COMMAND} devices per command")
    if not all(isinstance(d, str) and d for d in device_ids):
        raise Invalid("device ids must be non-empty strings")
    try:
        built = build_command(command)
    except CommandError as exc:
        raise Invalid(str(exc)) from None
    template = render_command_plist(UUID_PLACEHOLDER, built)
    try:
        uuids = russet.storage.queue.enqueue(
            built["RequestType"],
            template,
            resolve_targets(russet, device_ids),
            created_by,
            in_transaction=request_pushes,
        )
    except UnknownDevices as exc:
        raise NotFound(str(exc)) from None
    russet.pusher.wake()  # this process's pusher at once; others find the requests when they poll
    return {
        "request_type": built["RequestType"],
        "commands": [{"device": d, "command_uuid": u} for d, u in uuids.items()],
    }


def _delivery(row: dict[str, Any], with_result: bool, reveal: bool = False) -> dict[str, Any]:
    out = {
        "command_uuid": row["command_uuid"],
        "device": row["enrollment_id"],
        "request_type": row["request_type"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "attempts": row["attempts"],
        "notnow_count": row["notnow_count"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "sent_at": _iso(row["sent_at"]),
        "reported_at": _iso(row["reported_at"]),
    }
    if with_result:
        out["result"] = None
        if row["result"] is not None:
            try:  # bounded: the device's bytes, and maybe cut at RUSSET_MAX_RESULT_BYTES
                out["result"] = jsonable(plists.loads(row["result"]))
            except plists.PlistRejected as exc:
                out["result_error"] = f"the stored result cannot be shown: {exc}"
        if not reveal:  # secrets in the answer (an UnlockToken...) only when asked for
            out["result"] = redact(out["result"], secret_keys(row["request_type"]))
    return out


def show_command(russet: Russet, command_uuid: str, *, reveal: bool = False) -> dict[str, Any]:
    """A command's status and result; the result's secret keys are redacted unless `reveal`."""
    row = russet.storage.queue.by_uuid(command_uuid)
    if row is None:
        raise NotFound(f"no command with uuid {command_uuid!r}")
    out = _delivery(row, with_result=True, reveal=reveal)
    out["deliveries"] = [_delivery(r, with_result=False) for r in russet.storage.queue.siblings(command_uuid)]
    return out


def device_commands(russet: Russet, device_id: str, limit: int = 100) -> dict[str, Any]:
    if not russet.storage.enrollments.existing([device_id]):
        raise NotFound(f"no device with id {device_id!r}")
    rows = russet.storage.queue.for_enrollment(device_id, limit)
    return {"device": device_id, "commands": [_delivery(r, with_result=False) for r in rows]}


# -- the ledger and Apple connections -------------------------------------------------------------


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


def ledger_report(
    russet: Russet, *, since: str | None = None, service: str | None = None
) -> list[dict[str, Any]]:
    if service is not None and service not in SERVICE_NAMES:
        raise Invalid(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
    return [
        {**row, "first": _iso(row["first"]), "last": _iso(row["last"])}
        for row in russet.ledger.report(since=parse_since(since), service=service)
    ]


def ledger_subject(russet: Russet, identifier: str) -> dict[str, Any]:
    """What Apple has been told about a device (serial or UDID) or a person, when and why."""
    identifier = identifier.strip()
    if not identifier:
        raise Invalid("name a serial number, UDID or user")
    aliases = {identifier} | russet.storage.enrollments.aliases(identifier)
    rows = russet.ledger.about(sorted(aliases))
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


def disconnect(russet: Russet, service: str, name: str, *, purge: bool) -> dict[str, Any]:
    try:
        return russet.connections.disconnect(service, name, purge=purge)
    except ConnectionRefused as exc:
        raise Conflict(str(exc)) from None


def prune_ledger(russet: Russet, older_than_days: int) -> int:
    return russet.ledger.prune(utcnow() - timedelta(days=older_than_days))


# Unused SCEP challenges are kept this long past expiry, so a late device's refusal can be explained.
EXPIRED_CHALLENGE_GRACE = timedelta(days=7)


def housekeeping(russet: Russet) -> dict[str, int]:
    """Periodic deletions: ledger rows past retention, SCEP challenges that expired unused, console
    sign-in failure counts whose window has ended, check-in signatures whose signing time left the
    replay window, refused re-enrollments after 90 days."""
    return {
        "ledger_rows": prune_ledger(russet, russet.settings.ledger_retention_days),
        "scep_challenges": russet.storage.challenges.prune_expired(utcnow() - EXPIRED_CHALLENGE_GRACE),
        "login_failures": LoginLimiter(russet.storage.engine).prune(),
        "seen_signatures": SeenSignatures(russet.storage.engine).prune(utcnow()),
        "enrollment_refusals": ReenrollmentStore(russet.storage.engine).prune_refusals(
            utcnow() - REFUSALS_KEPT
        ),
    }
