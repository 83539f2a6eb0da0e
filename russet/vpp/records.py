"""Checking what Apple sends (answers and notifications) before any of it is used (§f.5–f.10).

Each answer is validated whole and turned into rows or an `Outcome` plus the datums the ledger
records; a malformed answer raises `ProtocolError` naming the field, and none of it is applied.
Licence items are matched by adamId (Russet assigns one pricing of an asset per subject).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from russet.apple import bounded_json
from russet.apple.gateway import Datum
from russet.vpp.client import meaning
from russet.vpp.errors import ProtocolError

EVENT_STATUSES = frozenset({"PENDING", "COMPLETE", "FAILED"})
ASSET_EVENTS = frozenset({"ASSOCIATE", "DISASSOCIATE", "REVOKE"})
USER_EVENTS = frozenset({"CREATE", "UPDATE", "RETIRE"})
MAX_COUNT = 2**31 - 1  # Apple reports unlimited free assets with this totalCount
MAX_ID = 100  # longest adamId, serial number or client user id stored
MAX_NOTIFICATION_BYTES = 1024 * 1024  # a notification holds at most 100 items


def _int(value: Any, where: str, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_COUNT:
        raise ProtocolError(f"Apple sent {where} = {value!r}; expected a whole number from {minimum}")
    return value


def _text(value: Any, where: str, *, limit: int = MAX_ID) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(f"Apple sent {where} = {value!r}; expected a non-empty string")
    return value


# -- assets ----------------------------------------------------------------------------------------


@dataclass
class AssetPage:
    assets: list[dict[str, Any]]
    data: list[Datum]
    next_page: int | None
    version_id: str | None


def asset_page(body: dict[str, Any], page_index: int) -> AssetPage:
    items = body.get("assets")
    if not isinstance(items, list):
        raise ProtocolError(f"Apple's asset page {page_index} has no assets list")
    rows, data = [], []
    for i, item in enumerate(items):
        where = f"assets[{i}]"
        if not isinstance(item, dict):
            raise ProtocolError(f"Apple sent {where} that is not an object")
        adam = _text(item.get("adamId"), f"{where}.adamId", limit=40)
        pricing = _text(item.get("pricingParam", "STDQ"), f"{where}.pricingParam", limit=10)
        counts = {
            column: _int(item.get(key, 0), f"{where}.{key}")
            for key, column in (
                ("assignedCount", "assigned_count"),
                ("availableCount", "available_count"),
                ("retiredCount", "retired_count"),
                ("totalCount", "total_count"),
            )
        }
        platforms = item.get("supportedPlatforms")
        rows.append(
            {
                "adam_id": adam,
                "pricing_param": pricing,
                "product_type": item.get("productType") if isinstance(item.get("productType"), str) else None,
                **counts,
                "device_assignable": item.get("deviceAssignable") is True,
                "revocable": item.get("revocable") is True,
                "supported_platforms": json.dumps(platforms) if isinstance(platforms, list) else None,
            }
        )
        data.append(Datum("assets", f"{adam}:{pricing}"))
    next_page = body.get("nextPageIndex")
    if next_page is not None:
        next_page = _int(next_page, "nextPageIndex")
        if next_page <= page_index:
            raise ProtocolError(f"Apple's asset page {page_index} points back to page {next_page}")
    version = body.get("versionId")
    version = version if isinstance(version, str) and len(version) <= 100 else None
    if version:
        data.append(Datum("versionId", version))
    return AssetPage(rows, data, next_page, version)


# -- event outcomes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Apple's error for some items of an event: those named, or all of them when none are."""

    number: int | None
    message: str
    assets: frozenset[str] | None = None  # adamIds
    serials: frozenset[str] | None = None
    users: frozenset[str] | None = None
    pairs: frozenset[tuple[str, str, str]] | None = None  # (adamId, device|user, subject), exact

    def covers(self, adam: str, subject_type: str, subject: str) -> bool:
        if self.pairs is not None:
            return (adam, subject_type, subject) in self.pairs
        if self.assets is not None and adam not in self.assets:
            return False
        named, other = (self.serials, self.users) if subject_type == "device" else (self.users, self.serials)
        if named is not None:
            return subject in named
        return other is None  # naming only subjects of the other kind leaves this one out

    def covers_user(self, client_user_id: str) -> bool:
        return self.users is None or client_user_id in self.users

    @property
    def text(self) -> str:
        shown = f"{self.number}: " if self.number is not None else ""
        return shown + meaning(self.number, self.message)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"errorNumber": self.number, "errorMessage": self.message}
        for key, values in (
            ("assets", self.assets),
            ("serialNumbers", self.serials),
            ("clientUserIds", self.users),
        ):
            if values is not None:
                out[key] = sorted(values)
        if self.pairs is not None:
            out["assignments"] = sorted(self.pairs)
        return out


@dataclass
class Outcome:
    """What Apple said about an event: ended (`final`) or some items known (from a notification)."""

    final: str | None = None  # COMPLETE | FAILED once the event ended
    succeeded: set[tuple[str, str, str]] = field(default_factory=set)  # (adamId, device|user, subject)
    succeeded_users: set[str] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)
    user_fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # client user id -> Apple's view
    num_requested: int | None = None
    num_completed: int | None = None
    event_type: str | None = None


def _names(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ProtocolError(f"Apple sent {where} that is not a list")
    out = set()
    for item in value:
        if isinstance(item, dict):  # assets are {adamId, pricingParam}
            item = item.get("adamId")
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        out.add(_text(item, where))
    return frozenset(out)


def failure(error: Any, where: str) -> tuple[Failure, list[Datum]]:
    if not isinstance(error, dict):
        raise ProtocolError(f"Apple sent {where} that is not an error object")
    number = error.get("errorNumber")
    number = number if isinstance(number, int) and not isinstance(number, bool) else None
    message = error["errorMessage"] if isinstance(error.get("errorMessage"), str) else ""
    info = error.get("errorInfo") or {}
    if not isinstance(info, dict):
        raise ProtocolError(f"Apple sent {where}.errorInfo that is not an object")
    found = Failure(
        number,
        message[:500],
        _names(info.get("assets"), f"{where}.errorInfo.assets"),
        _names(info.get("serialNumbers"), f"{where}.errorInfo.serialNumbers"),
        _names(info.get("clientUserIds"), f"{where}.errorInfo.clientUserIds"),
    )
    data = [Datum("error", number)]
    data += [Datum("serial number", s, s) for s in sorted(found.serials or ())]
    data += [Datum("client user id", u, u) for u in sorted(found.users or ())]
    return found, data


def status_outcome(body: dict[str, Any]) -> tuple[str, Outcome, list[Datum]]:
    """The event status answer: (PENDING | COMPLETE | FAILED, what it says, ledger datums)."""
    status = body.get("eventStatus")
    if not isinstance(status, str) or status not in EVENT_STATUSES:  # a list is not even hashable
        raise ProtocolError(f"Apple sent eventStatus {status!r}; expected PENDING, COMPLETE or FAILED")
    outcome = Outcome(final=None if status == "PENDING" else status)
    event_type = body.get("eventType")
    outcome.event_type = event_type if isinstance(event_type, str) else None
    for key, attr in (("numRequested", "num_requested"), ("numCompleted", "num_completed")):
        if body.get(key) is not None:
            setattr(outcome, attr, _int(body[key], key))
    data = [Datum("event status", status)]
    failures = body.get("failures") or []
    if not isinstance(failures, list):
        raise ProtocolError("Apple sent failures that is not a list")
    for i, item in enumerate(failures):
        found, more = failure(item, f"failures[{i}]")
        outcome.failures.append(found)
        data += more
    return status, outcome, data


# -- notifications -----------------------------------------------------------------------------------


@dataclass
class Notification:
    notification_id: str
    notification_type: str
    event_id: str | None = None
    outcome: Outcome | None = None
    count_change: tuple[str, str, int] | None = None  # ASSET_COUNT: adamId, pricingParam, countDelta
    data: list[Datum] = field(default_factory=list)


def _subject(item: dict[str, Any], where: str) -> tuple[str, str]:
    if item.get("serialNumber") is not None:
        return "device", _text(item["serialNumber"], f"{where}.serialNumber")
    return "user", _text(item.get("clientUserId"), f"{where}.clientUserId")


def _user_fields(item: Any, where: str) -> tuple[str, dict[str, Any], list[Datum]]:
    if not isinstance(item, dict):
        raise ProtocolError(f"Apple sent {where} that is not an object")
    cuid = _text(item.get("clientUserId"), f"{where}.clientUserId")
    fields: dict[str, Any] = {}
    data = [Datum("client user id", cuid, cuid)]
    for key, name, column in (
        ("status", "user status", "status"),
        ("inviteCode", "invite code", "invite_code"),
        ("idHash", "idHash", "id_hash"),
        ("email", "email", "email"),
    ):
        value = item.get(key)
        if isinstance(value, str) and value and len(value) <= 500:
            fields[column] = value
            data.append(Datum(name, value, cuid))
    return cuid, fields, data


def notification(body: Any) -> Notification:
    """Apple's notification envelope and body, checked (§f.10)."""
    if not isinstance(body, dict):
        raise ProtocolError("a notification is a JSON object")
    note = Notification(
        _text(body.get("notificationId"), "notificationId", limit=64),
        _text(body.get("notificationType"), "notificationType", limit=40),
    )
    note.data.append(Datum("notification type", note.notification_type))
    payload = body.get("notification") if body.get("notification") is not None else {}
    if not isinstance(payload, dict):
        raise ProtocolError("the notification's body is not an object")
    kind = note.notification_type
    if kind == "ASSET_MANAGEMENT":
        note.event_id, note.outcome = _event_notification(payload, note.data, users=False)
    elif kind == "USER_MANAGEMENT":
        note.event_id, note.outcome = _event_notification(payload, note.data, users=True)
    elif kind == "USER_ASSOCIATED":
        outcome = Outcome()
        associated = payload.get("associatedUsers")
        if not isinstance(associated, list):
            raise ProtocolError("USER_ASSOCIATED without associatedUsers")
        for i, item in enumerate(associated):
            cuid, fields, data = _user_fields(item, f"associatedUsers[{i}]")
            outcome.user_fields[cuid] = {**fields, "status": fields.get("status", "Associated")}
            note.data += data
        note.outcome = outcome
    elif kind == "ASSET_COUNT":
        adam = payload.get("adamId")
        adam = str(adam) if isinstance(adam, int) and not isinstance(adam, bool) else adam
        adam = _text(adam, "notification.adamId", limit=40)
        pricing = _text(payload.get("pricingParam", "STDQ"), "notification.pricingParam", limit=10)
        delta = payload.get("countDelta")
        if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_COUNT:
            raise ProtocolError(f"Apple sent countDelta = {delta!r}")
        note.count_change = (adam, pricing, delta)
        note.data += [Datum("assets", f"{adam}:{pricing}"), Datum("countDelta", delta)]
    return note


def _event_notification(payload: dict[str, Any], data: list[Datum], *, users: bool) -> tuple[str, Outcome]:
    event_id = _text(payload.get("eventId"), "notification.eventId", limit=64)
    result = payload.get("result")
    if result not in ("SUCCESS", "FAILURE"):
        raise ProtocolError(f"Apple sent result {result!r}; expected SUCCESS or FAILURE")
    data += [Datum("eventId", event_id), Datum("event status", result)]
    outcome = Outcome(event_type=payload.get("type") if isinstance(payload.get("type"), str) else None)
    if users:
        items = payload.get("users")
        if not isinstance(items, list):
            raise ProtocolError("USER_MANAGEMENT without users")
        named: set[str] = set()
        for i, item in enumerate(items):
            cuid, fields, more = _user_fields(item, f"users[{i}]")
            named.add(cuid)
            if result == "SUCCESS":
                outcome.user_fields[cuid] = fields
            data += more
        if result == "SUCCESS":
            outcome.succeeded_users = named
        else:
            found, more = failure(payload.get("error") or {}, "notification.error")
            outcome.failures.append(Failure(found.number, found.message, users=frozenset(named)))
            data += more
        return event_id, outcome
    items = payload.get("assignments")
    if not isinstance(items, list):
        raise ProtocolError("ASSET_MANAGEMENT without assignments")
    pairs: set[tuple[str, str, str]] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ProtocolError(f"Apple sent assignments[{i}] that is not an object")
        adam = item.get("adamId")
        adam = str(adam) if isinstance(adam, int) and not isinstance(adam, bool) else adam
        adam = _text(adam, f"assignments[{i}].adamId", limit=40)
        subject_type, subject = _subject(item, f"assignments[{i}]")
        pairs.add((adam, subject_type, subject))
        data.append(Datum("assets", adam))
        data.append(
            Datum("serial number", subject, subject)
            if subject_type == "device"
            else Datum("client user id", subject, subject)
        )
    if result == "SUCCESS":
        outcome.succeeded = pairs
    else:
        found, more = failure(payload.get("error") or {}, "notification.error")
        outcome.failures.append(Failure(found.number, found.message, pairs=frozenset(pairs)))
        data += more[:1]
    return event_id, outcome


def user_list(body: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Datum]]:
    """`GET users`: each client user id's current (not retired) entry, and the ledger datums.

    The same id may be listed twice, retired and current; the current one wins."""
    items = body.get("users")
    if not isinstance(items, list):
        raise ProtocolError("Apple's user listing has no users list")
    found: dict[str, dict[str, Any]] = {}
    data: list[Datum] = []
    for i, item in enumerate(items):
        cuid, fields, more = _user_fields(item, f"users[{i}]")
        data += more
        if cuid not in found or found[cuid].get("status") == "Retired":
            found[cuid] = fields
    return found, data


def notification_url(public_url: str, name: str) -> str:
    return f"{public_url.rstrip('/')}/vpp/notify/{name}"


def parse_notification(body: bytes) -> Notification:
    """The notification in a request body, checked; ProtocolError for anything else."""
    try:
        decoded = bounded_json.loads(body, max_bytes=MAX_NOTIFICATION_BYTES)
    except ValueError as exc:
        raise ProtocolError(f"not JSON ({exc})") from None
    return notification(decoded)
