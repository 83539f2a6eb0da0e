"""One subject across every service (issue #16, item 2): a person (email, Managed Apple ID, Apps
and Books client user id), a device (UDID, serial number) or a push token, and everything Russet
told Apple or was told by Apple about them.

Who is who comes from the features that know it, through `SubjectLinks` ports (Apps and Books
users, MDM enrollments, ABM/ASM devices), followed link by link: an email finds the person's
client user id and Managed Apple ID, a Managed Apple ID on a Shared iPad or a user enrollment
finds the device, a UDID its serial number. The ledger itself links too: a push token sent about a
device, or an email sent about a client user id, is a row whose subject is that device or person.

The export is the right-of-access answer (JSON, or PDF from `russet.apple.documents`); erasure
folds the subject's ledger rows into the per-day counts (`russet.apple.retention.fold`) and
deletes them, so totals are unchanged and the detail is gone, and records that it happened
without keeping who it was about. It also clears, through `SubjectErasure` ports, what features
keep about the people found (who signed in before enrollment), in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select

from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.ledger import Ledger
from russet.apple.ports import Link, SubjectErasure, SubjectLinks
from russet.apple.retention import fold_ids
from russet.apple.tables import ledger, ledger_erasures
from russet.kernel.errors import Invalid, NotFound
from russet.storage.db import as_utc, reading, utcnow

# Kinds of identifiers looked up further (the others only inform).
SEARCHABLE = frozenset(
    {"query", "email", "managed_apple_id", "client_user_id", "udid", "serial", "enrollment"}
)
# Fields whose value is itself an identifier of a person or device: a row carrying the value
# looked up is about that subject, and its own subject is linked (a token's device, an email's
# client user id). Other values (a model name, a country) never link anyone.
IDENTIFYING_FIELDS = frozenset(
    {
        "Token",
        "PushMagic",
        "devices",
        "serial_number",
        "serial number",
        "serial",
        "client user id",
        "Managed Apple ID",
        "email",
    }
)
# Kinds of identifiers naming a person, whose personal data `SubjectErasure` ports clear (the
# identifier looked up is always one: a person id has no kind of its own).
PERSON_KINDS = frozenset({"email", "managed_apple_id", "person"})
MAX_IDENTIFIERS = 200  # linked identifiers followed per look-up
MAX_LEDGER_SUBJECTS = 1000  # subjects linked through the ledger itself
MAX_ROWS = 100_000  # exchanges in one export
MAX_QUERY = 320
_CHUNK = 500


def _guess(identifier: str) -> str:
    if "@" in identifier:
        return "email"
    return "query"


class SubjectLookup:
    def __init__(
        self,
        engine: Engine,
        ledger_: Ledger,
        links: Sequence[SubjectLinks],
        erasures: Sequence[SubjectErasure] = (),
    ) -> None:
        self._engine = engine
        self._ledger = ledger_
        self._links = list(links)
        self._erasures = list(erasures)

    # -- who ---------------------------------------------------------------------------------------

    def resolve(self, query: str) -> list[dict[str, str]]:
        """The identifier looked up and every identifier linked to it, each with its source."""
        query = _checked(query)
        found: dict[tuple[str, str], dict[str, str]] = {}
        seen = {query.casefold()}
        frontier = [query]
        found[("query", query.casefold())] = {"kind": _guess(query), "value": query, "source": "looked up"}
        while frontier:
            identifier = frontier.pop(0)
            for port in self._links:
                for link in port.links(identifier):
                    _add(found, link)
                    key = link.value.strip().casefold()
                    if link.kind in SEARCHABLE and key and key not in seen and len(seen) < MAX_IDENTIFIERS:
                        seen.add(key)
                        frontier.append(link.value.strip())
        return list(found.values())

    # -- what --------------------------------------------------------------------------------------

    def _rows(self, identifiers: list[dict[str, str]]) -> tuple[list[dict[str, Any]], int]:
        """The ledger rows about these identifiers, and how many subjects the ledger linked."""
        self._ledger.flush()
        fp = self._ledger.fingerprint
        wanted = {f for f in (fp(i["value"]) for i in identifiers if i["kind"] in SEARCHABLE) if f}
        rows: dict[int, dict[str, Any]] = {}
        subjects = set(wanted)
        linked = 0
        frontier = set(wanted)
        with reading(self._engine) as conn:
            for _round in range(3):  # identifiers, then subjects the ledger links to them (twice)
                if not frontier:
                    break
                new_subjects: set[str] = set()
                chunks = sorted(frontier)
                for start in range(0, len(chunks), _CHUNK):
                    part = chunks[start : start + _CHUNK]
                    query = select(ledger).where(
                        ledger.c.subject_fp.in_(part)
                        | (ledger.c.value_fp.in_(part) & ledger.c.field.in_(sorted(IDENTIFYING_FIELDS)))
                    )
                    for r in conn.execute(query.limit(MAX_ROWS + 1)):
                        if r.id in rows:
                            continue
                        row = dict(r._mapping)
                        row["matched"] = (
                            "subject"
                            if r.subject_fp in wanted
                            else "value"
                            if r.value_fp in wanted
                            else "linked"
                        )
                        rows[r.id] = row
                        if (
                            r.field in IDENTIFYING_FIELDS
                            and r.value_fp in frontier
                            and r.subject_fp
                            and r.subject_fp not in subjects
                            and len(subjects) < len(wanted) + MAX_LEDGER_SUBJECTS
                        ):
                            new_subjects.add(r.subject_fp)
                        if len(rows) > MAX_ROWS:
                            raise Invalid(
                                f"more than {MAX_ROWS} exchanges match; name a narrower subject "
                                "(a serial number, a client user id)"
                            )
                linked += len(new_subjects)
                subjects |= new_subjects
                frontier = new_subjects
        out = sorted(rows.values(), key=lambda r: (as_utc(r["at"]), r["id"]))
        return out, linked

    def export(self, query: str) -> dict[str, Any]:
        """The right-of-access export: who the subject is to Russet, and every exchange with Apple
        about them (time, service, connection, endpoint, direction, field, why, Apple's answer)."""
        identifiers = self.resolve(query)
        rows, linked = self._rows(identifiers)
        per_service: dict[str, dict[str, int]] = {}
        for r in rows:
            slot = per_service.setdefault(r["service"], {"sent": 0, "received": 0})
            slot[r["direction"]] = slot.get(r["direction"], 0) + 1
        return {
            "subject": query.strip(),
            "generated_at": utcnow().isoformat(),
            "identifiers": identifiers,
            "also_known_as": sorted(
                {i["value"] for i in identifiers if i["kind"] in SEARCHABLE}
                - {i["value"] for i in identifiers if i["source"].startswith("looked up")}
            ),
            "linked_in_ledger": linked,
            "services": [
                {"service": s, "service_name": SERVICE_NAMES.get(s, s), **counts}
                for s, counts in sorted(per_service.items())
            ],
            "exchanges": [
                {
                    "at": as_utc(r["at"]).isoformat(),  # type: ignore[union-attr]
                    "service": r["service"],
                    "connection": r["connection"],
                    "endpoint": r["endpoint"],
                    "direction": r["direction"],
                    "field": r["field"],
                    "about": r["subject_type"],
                    "purpose": r["purpose"],
                    "status": r["status"],
                    "apple_request_id": r["request_id"],
                    "matched": r["matched"],
                }
                for r in rows
            ],
            "values_kept": "none: the ledger keeps keyed fingerprints of values, never the values",
        }

    # -- erasure -----------------------------------------------------------------------------------

    def erase(self, query: str, *, by: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Fold the subject's ledger rows into per-day counts and delete them, clear what features
        keep about the people found (`SubjectErasure`), and record the erasure; all or nothing."""
        identifiers = self.resolve(query)
        rows, _ = self._rows(identifiers)
        people = {i["value"].strip() for i in identifiers if i["kind"] in PERSON_KINDS}
        people.add(query.strip())
        per_service: dict[str, int] = {}
        for r in rows:
            per_service[r["service"]] = per_service.get(r["service"], 0) + 1
        now = utcnow()
        with self._engine.begin() as conn:
            folded = fold_ids(conn, [r["id"] for r in rows]) if rows else 0
            cleared = sum(port.forget(conn, sorted(people)) for port in self._erasures)
            if not rows and not cleared:
                raise NotFound(f"nothing about {query.strip()!r} is in the ledger or the enrollment requests")
            erasure_id = conn.execute(
                ledger_erasures.insert().values(
                    at=now,
                    requested_by=by,
                    reason=(reason or "")[:500] or None,
                    row_count=folded,
                    per_service=json.dumps(per_service, sort_keys=True),
                )
            ).inserted_primary_key
        assert erasure_id is not None
        return {
            "erasure": erasure_id[0],
            "at": now.isoformat(),
            "rows_folded_into_counts": folded,
            "per_service": per_service,
            "enrollment_people_cleared": cleared,
            "kept": "per-day counts per service, connection, direction and field; no subject, value, "
            "endpoint or request id; enrollment requests without the person who signed in",
        }

    def erasures(self) -> list[dict[str, Any]]:
        with reading(self._engine) as conn:
            rows = conn.execute(select(ledger_erasures).order_by(ledger_erasures.c.id)).all()
        return [
            {
                "id": r.id,
                "at": as_utc(r.at).isoformat(),  # type: ignore[union-attr]
                "requested_by": r.requested_by,
                "reason": r.reason,
                "rows": r.row_count,
                "per_service": json.loads(r.per_service),
            }
            for r in rows
        ]


def _checked(query: str) -> str:
    query = (query or "").strip()
    if not query:
        raise Invalid(
            "name a subject: an email, Managed Apple ID, client user id, UDID, serial or push token"
        )
    if len(query) > MAX_QUERY:
        raise Invalid(f"a subject is at most {MAX_QUERY} characters")
    return query


def _add(found: dict[tuple[str, str], dict[str, str]], link: Link) -> None:
    value = link.value.strip()
    if not value:
        return
    key = (link.kind, value.casefold())
    if key in found:
        if link.source not in found[key]["source"]:
            found[key]["source"] += f"; {link.source}"
        return
    if ("query", value.casefold()) in found and link.kind in SEARCHABLE:
        found[("query", value.casefold())]["kind"] = link.kind  # now we know what was looked up
        if link.source not in found[("query", value.casefold())]["source"]:
            found[("query", value.casefold())]["source"] += f"; {link.source}"
        return
    found[key] = {"kind": link.kind, "value": value, "source": link.source}
