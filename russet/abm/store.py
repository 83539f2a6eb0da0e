"""Storage for ABM connections: key and token (sealed), account, sync state, devices, profiles.

A device page and the cursor that follows it are written in one transaction, so after a crash
the listing resumes from the last page applied: never from zero, never skipping a page.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Connection, DateTime, Engine, delete, func, insert, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from russet.abm.errors import AbmConflict, AbmNotFound
from russet.abm.ports import EnrolledDevices
from russet.abm.records import ACCOUNT_FIELDS, DEVICE_COLUMNS, DevicePage
from russet.abm.tables import (
    abm_accounts,
    abm_devices,
    abm_profile_results,
    abm_profiles,
    abm_servers,
    abm_sync_state,
)
from russet.abm.token import ServerToken
from russet.apple.connection.tokens import ConnectionRows
from russet.apple.connections import ConnectionRegistry
from russet.storage import bulk
from russet.storage.db import as_utc, reading, upsert, utcnow

DEVICE_UPDATE_COLUMNS = [c.name for c in abm_devices.columns if c.name not in ("connection", "serial_number")]
IN_CHUNK = 900  # serials per IN (...) list: below SQLite's default variable limit with room to spare


@dataclass(frozen=True)
class SyncState:
    phase: str  # fetch | sync
    cursor: str | None
    generation: int
    fetched_until: datetime | None
    fetch_started_at: datetime | None
    fetch_completed_at: datetime | None
    last_sync_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    retry_at: datetime | None


@dataclass(frozen=True)
class Applied:
    """What applying one page changed."""

    added: int = 0
    modified: int = 0
    deleted: int = 0
    new_without_profile: tuple[str, ...] = ()  # candidates for the default profile


def _upsert_devices(dialect: str) -> tuple[Any, list[tuple[str, bool]]]:
    """INSERT … SELECT FROM the page's devices as one JSON parameter (russet.storage.bulk) …
    ON CONFLICT DO UPDATE: one statement per page. Also the columns in order, and which are times."""
    types = {c.name: c.type for c in abm_devices.columns}
    rows = bulk.json_rows(dialect, [(c, types[c]) for c in DEVICE_COLUMNS])
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(abm_devices)
    source = (
        select(
            bulk.param(dialect, "connection", types["connection"]),
            bulk.param(dialect, "generation", types["generation"]),
            bulk.param(dialect, "updated_at", types["updated_at"]),
            *rows.c,
        )
        .select_from(rows)
        .where(true())  # SQLite parses INSERT … SELECT … ON CONFLICT only with a WHERE
    )
    stmt = insert.from_select(["connection", "generation", "updated_at", *DEVICE_COLUMNS], source)
    stmt = stmt.on_conflict_do_update(
        index_elements=["connection", "serial_number"],
        set_={c: stmt.excluded[c] for c in DEVICE_UPDATE_COLUMNS},
    )
    return stmt, [(c, isinstance(types[c], DateTime)) for c in DEVICE_COLUMNS]


_UPSERT_DEVICES = {dialect: _upsert_devices(dialect) for dialect in ("sqlite", "postgresql")}


def _chunks(items: list[str], size: int = IN_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AbmSerials:
    """Which ABM/ASM connections list each serial number, for every connection at once (the
    device facts' `abm_account`; `russet.mdm.facts.AbmAccounts`), and which blueprint reaches
    the devices enrolled with a serial (the blueprints' `AdeBlueprints`; the enrolled devices come
    from the core, `enrolled`)."""

    def __init__(self, engine: Engine, enrolled: EnrolledDevices) -> None:
        self._engine = engine
        self._enrolled = enrolled

    def connections_by_serial(self, serials: Collection[str] | None) -> dict[str, tuple[str, ...]]:
        d = abm_devices.c
        query = select(d.serial_number, d.connection).order_by(d.serial_number, d.connection)
        found: dict[str, list[str]] = {}
        queries = (
            [query]
            if serials is None
            else [query.where(d.serial_number.in_(chunk)) for chunk in _chunks(sorted(set(serials)))]
        )
        with reading(self._engine) as conn:
            for each in queries:
                for serial, connection in conn.execute(each).all():
                    found.setdefault(serial, []).append(connection)
        return {serial: tuple(names) for serial, names in found.items()}

    def ade_blueprints(self) -> dict[str, int]:
        """Device channel ids -> the blueprint named by the ADE profile ABM/ASM has assigned to
        their serial number (the profile that enrolls them), for every such device at once: one
        join for the serials whose profile names a blueprint, then their enrolled devices from the
        core. A serial listed by several connections takes the first connection's (by name)."""
        d, p = abm_devices.c, abm_profiles.c
        query = (
            select(d.serial_number, p.blueprint_id)
            .select_from(
                abm_devices.join(
                    abm_profiles, (p.connection == d.connection) & (p.profile_uuid == d.profile_uuid)
                )
            )
            .where(p.blueprint_id.is_not(None))
            .order_by(d.serial_number, d.connection)
        )
        by_serial: dict[str, int] = {}
        with reading(self._engine) as conn:
            for serial, blueprint_id in conn.execute(query):
                by_serial.setdefault(serial, int(blueprint_id))
        if not by_serial:
            return {}
        found = {
            device_id: by_serial[serial]
            for serial, device_ids in self._enrolled.live_by_serial(by_serial).items()
            for device_id in device_ids
        }
        return dict(sorted(found.items()))


class AbmStore(ConnectionRows):
    service = "abm"
    table = abm_servers
    expiry_column = "access_token_expiry"

    # -- servers: key pair and token ----------------------------------------------------------

    def create(self, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        """Record a new connection's key pair; a name whose key was destroyed may be reused."""
        pkcs8 = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        values = {
            "certificate_der": cert.public_bytes(serialization.Encoding.DER),
            "sealed_key": self.seal("key", name, pkcs8),
            "sealed_token": None,
            "access_token_expiry": None,
            "token_stored_at": None,
            "created_at": utcnow(),
        }
        with self._engine.begin() as conn:
            existing = conn.execute(
                select(abm_servers.c.sealed_key).where(abm_servers.c.name == name)
            ).first()
            if existing is not None and existing.sealed_key is not None:
                raise AbmConflict(
                    f"an ABM connection named {name!r} already exists; its certificate is shown by "
                    f"`russet abm show {name}`",
                )
            if existing is None:
                conn.execute(insert(abm_servers).values(name=name, **values))
            else:
                conn.execute(update(abm_servers).where(abm_servers.c.name == name).values(**values))

    def server(self, name: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(abm_servers).where(abm_servers.c.name == name)).first()
        if row is None:
            return None
        return {
            "name": row.name,
            "certificate": x509.load_der_x509_certificate(row.certificate_der),
            "has_key": row.sealed_key is not None,
            "has_token": row.sealed_token is not None,
            "access_token_expiry": as_utc(row.access_token_expiry),
            "token_stored_at": as_utc(row.token_stored_at),
            "default_profile_uuid": row.default_profile_uuid,
            "created_at": as_utc(row.created_at),
        }

    def require(self, name: str) -> dict[str, Any]:
        server = self.server(name)
        if server is None:
            raise AbmNotFound(f"no ABM connection named {name!r}; create it with `russet abm create {name}`")
        return server

    def identity(self, name: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        with reading(self._engine) as conn:
            row = conn.execute(
                select(abm_servers.c.certificate_der, abm_servers.c.sealed_key).where(
                    abm_servers.c.name == name
                )
            ).first()
        if row is None:
            raise AbmNotFound(f"no ABM connection named {name!r}; create it with `russet abm create {name}`")
        if row.sealed_key is None:
            raise AbmConflict(
                f"the key of ABM connection {name!r} was destroyed when it was disconnected; "
                f"run `russet abm create {name}` and upload the new certificate to ABM/ASM",
            )
        key = serialization.load_der_private_key(self.unseal("key", name, row.sealed_key), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return x509.load_der_x509_certificate(row.certificate_der), key

    def store_token(self, name: str, token: ServerToken, registry: ConnectionRegistry) -> None:
        """Seal the token and mark the connection active, in one transaction."""
        with self._engine.begin() as conn:
            conn.execute(
                update(abm_servers)
                .where(abm_servers.c.name == name)
                .values(
                    sealed_token=self.seal("token", name, token.to_json()),
                    access_token_expiry=token.access_token_expiry,
                    token_stored_at=utcnow(),
                )
            )
            registry.connect(conn, "abm", name)

    def token(self, name: str) -> ServerToken:
        with reading(self._engine) as conn:
            sealed = conn.execute(
                select(abm_servers.c.sealed_token).where(abm_servers.c.name == name)
            ).scalar()
        if sealed is None:
            raise AbmConflict(
                f"ABM connection {name!r} has no server token; "
                f"load one with `russet abm token {name} FILE.p7m`",
            )
        return ServerToken.from_json(self.unseal("token", name, sealed))

    def set_default_profile(self, name: str, profile_uuid: str | None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(abm_servers)
                .where(abm_servers.c.name == name)
                .values(default_profile_uuid=profile_uuid)
            )

    # -- account --------------------------------------------------------------------------------

    def save_account(self, name: str, account: dict[str, Any]) -> None:
        values = {"connection": name, **account, "fetched_at": utcnow()}
        with self._engine.begin() as conn:
            upsert(conn, abm_accounts, values, ["connection"], [*ACCOUNT_FIELDS, "urls", "fetched_at"])

    def account(self, name: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(abm_accounts).where(abm_accounts.c.connection == name)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out.pop("connection")
        out["urls"] = json.loads(out["urls"]) if out["urls"] else None
        out["fetched_at"] = as_utc(out["fetched_at"])
        return out

    # -- sync state ---------------------------------------------------------------------------

    def sync_state(self, name: str) -> SyncState | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(abm_sync_state).where(abm_sync_state.c.connection == name)).first()
        if row is None:
            return None
        values: dict[str, Any] = {
            k: as_utc(v) if isinstance(v, datetime) else v for k, v in row._mapping.items()
        }
        values.pop("connection")
        return SyncState(**values)

    def start_full_fetch(self, name: str) -> SyncState:
        """Forget the cursor and begin a new generation: devices not seen again will be removed."""
        now = utcnow()
        with self._engine.begin() as conn:
            generation = conn.execute(
                select(abm_sync_state.c.generation).where(abm_sync_state.c.connection == name)
            ).scalar()
            values = {
                "connection": name,
                "phase": "fetch",
                "cursor": None,
                "generation": (generation or 0) + 1,
                "fetched_until": None,
                "fetch_started_at": now,
                "last_attempt_at": now,
                "retry_at": None,
            }
            upsert(conn, abm_sync_state, values, ["connection"], [k for k in values if k != "connection"])
        state = self.sync_state(name)
        assert state is not None
        return state

    def note_attempt(
        self,
        name: str,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
        completed: bool = False,
    ) -> None:
        values: dict[str, Any] = {"last_attempt_at": utcnow(), "last_error": error, "retry_at": retry_at}
        if completed:
            values["last_sync_at"] = values["last_attempt_at"]
        with self._engine.begin() as conn:
            conn.execute(update(abm_sync_state).where(abm_sync_state.c.connection == name).values(**values))

    def apply_page(
        self, name: str, page: DevicePage, generation: int, *, sync: bool, want_new: bool
    ) -> Applied:
        """Apply one checked page and save the cursor after it, atomically.

        A full listing's last page (no `more_to_follow`) also removes the devices it did not
        list, and switches to incremental sync from the cursor it ended with.
        """
        now = utcnow()
        gone = [d["serial_number"] for d in page.devices if d["op_type"] == "deleted"]
        kept = [d for d in page.devices if d["op_type"] != "deleted"]
        with self._engine.begin() as conn:
            current = conn.execute(
                select(abm_sync_state.c.generation, abm_sync_state.c.phase).where(
                    abm_sync_state.c.connection == name
                )
            ).first()
            if current is None or current.generation != generation:
                raise AbmConflict(f"the device listing of {name!r} was restarted meanwhile; try again")
            # Which serials are new matters only for the default profile: asked only then.
            existing = self._existing(conn, name, [d["serial_number"] for d in kept]) if want_new else None
            if kept:
                dialect = conn.dialect.name
                upsert_devices, columns = _UPSERT_DEVICES[dialect]
                when = bulk.time_text
                rows = [[when(dialect, d[c]) if time else d[c] for c, time in columns] for d in kept]
                params = {"connection": name, "generation": generation, "updated_at": now}
                conn.execute(upsert_devices, {"rows": bulk.encode(rows), **params})
            for chunk in _chunks(gone):
                self._forget(conn, name, chunk)
            pending = (
                []
                if existing is None
                else [
                    d["serial_number"]
                    for d in kept
                    if d["serial_number"] not in existing and not d["profile_uuid"]
                ]
            )
            if pending:  # marked in this transaction, so a crash cannot lose them
                self._save_results(conn, name, "assign", None, dict.fromkeys(pending, "PENDING"), now)
            state: dict[str, Any] = {"cursor": page.cursor, "fetched_until": page.fetched_until}
            stale = 0
            if not sync and not page.more_to_follow:
                # The listing is complete: what it did not list is no longer assigned to this server.
                stale = conn.execute(
                    delete(abm_devices).where(
                        abm_devices.c.connection == name, abm_devices.c.generation < generation
                    )
                ).rowcount
                listed = select(abm_devices.c.serial_number).where(abm_devices.c.connection == name)
                conn.execute(
                    delete(abm_profile_results).where(
                        abm_profile_results.c.connection == name,
                        abm_profile_results.c.serial_number.not_in(listed),
                    )
                )
                state.update(phase="sync", fetch_completed_at=now)
            conn.execute(update(abm_sync_state).where(abm_sync_state.c.connection == name).values(**state))
        if sync:
            ops = Counter(d["op_type"] for d in page.devices)
            return Applied(ops["added"], ops["modified"], ops["deleted"], tuple(pending))
        return Applied(deleted=stale, new_without_profile=tuple(pending))  # additions: see total()

    def _existing(self, conn: Connection, name: str, serials: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(serials):
            found.update(
                conn.execute(
                    select(abm_devices.c.serial_number).where(
                        abm_devices.c.connection == name, abm_devices.c.serial_number.in_(chunk)
                    )
                ).scalars()
            )
        return found

    def _forget(self, conn: Connection, name: str, serials: list[str]) -> None:
        for table in (abm_devices, abm_profile_results):
            conn.execute(delete(table).where(table.c.connection == name, table.c.serial_number.in_(serials)))

    # -- devices (AbmService adds each one's enrollment, from the MDM core) ----------------------

    def devices(
        self, name: str, *, limit: int, after: str | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        query = select(abm_devices).where(abm_devices.c.connection == name)
        if after:
            query = query.where(abm_devices.c.serial_number > after)
        if search:
            like = f"%{search.lower()}%"
            query = query.where(
                or_(
                    *(
                        func.lower(column).like(like)
                        for column in (
                            abm_devices.c.serial_number,
                            abm_devices.c.model,
                            abm_devices.c.description,
                            abm_devices.c.asset_tag,
                        )
                    )
                )
            )
        return self._joined(name, query.order_by(abm_devices.c.serial_number).limit(limit))

    def device(self, name: str, serial: str) -> dict[str, Any] | None:
        query = select(abm_devices).where(
            abm_devices.c.connection == name,
            func.upper(abm_devices.c.serial_number) == serial.strip().upper(),
        )
        rows = self._joined(name, query)
        return rows[0] if rows else None

    def _joined(self, name: str, query: Any) -> list[dict[str, Any]]:
        """ABM's rows with the last profile result of each."""
        with reading(self._engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            serials = [r["serial_number"] for r in rows]
            results = self._results(conn, name, serials)
        for row in rows:
            row.pop("connection")
            row.pop("generation")
            for key, value in row.items():
                if isinstance(value, datetime):
                    row[key] = as_utc(value)
            row["enrollment"] = None  # the MDM core's, filled in by AbmService
            row["last_profile_result"] = results.get(row["serial_number"])
        return rows

    def _results(self, conn: Connection, name: str, serials: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for chunk in _chunks(serials):
            for r in conn.execute(
                select(abm_profile_results).where(
                    abm_profile_results.c.connection == name, abm_profile_results.c.serial_number.in_(chunk)
                )
            ):
                out[r.serial_number] = {
                    "action": r.action,
                    "profile_uuid": r.profile_uuid,
                    "status": r.status,
                    "at": as_utc(r.at),
                }
        return out

    def total(self, name: str) -> int:
        with reading(self._engine) as conn:
            return conn.execute(
                select(func.count()).select_from(abm_devices).where(abm_devices.c.connection == name)
            ).scalar_one()

    def counts(self, name: str) -> dict[str, int]:
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(abm_devices.c.profile_status, func.count())
                .where(abm_devices.c.connection == name)
                .group_by(abm_devices.c.profile_status)
            ).all()
        return {(status or "unknown"): count for status, count in rows}

    def pending_default(self, name: str) -> list[str]:
        """Serials waiting for the default profile: new (PENDING) or refused for now (THROTTLED)."""
        with reading(self._engine) as conn:
            return list(
                conn.execute(
                    select(abm_profile_results.c.serial_number)
                    .where(
                        abm_profile_results.c.connection == name,
                        abm_profile_results.c.action == "assign",
                        abm_profile_results.c.status.in_(("PENDING", "THROTTLED")),
                    )
                    .order_by(abm_profile_results.c.serial_number)
                ).scalars()
            )

    # -- profiles and per-device results --------------------------------------------------------

    def save_profile(
        self, name: str, profile_uuid: str, profile: dict[str, Any], blueprint_id: int | None = None
    ) -> None:
        with self._engine.begin() as conn:
            upsert(
                conn,
                abm_profiles,
                {
                    "connection": name,
                    "profile_uuid": profile_uuid,
                    "profile_name": profile["profile_name"],
                    "profile": json.dumps(profile, sort_keys=True),
                    "created_at": utcnow(),
                    "blueprint_id": blueprint_id,
                },
                ["connection", "profile_uuid"],
                ["profile_name", "profile", "blueprint_id"],
            )

    def set_profile_blueprint(self, name: str, profile_uuid: str, blueprint_id: int | None) -> bool:
        """Name (or clear) the blueprint of a profile defined here; False when there is no such profile."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(abm_profiles)
                .where(abm_profiles.c.connection == name, abm_profiles.c.profile_uuid == profile_uuid)
                .values(blueprint_id=blueprint_id)
            )
        return bool(done.rowcount)

    def profiles(self, name: str) -> list[dict[str, Any]]:
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(abm_profiles)
                .where(abm_profiles.c.connection == name)
                .order_by(abm_profiles.c.created_at)
            ).all()
        return [
            {
                "profile_uuid": r.profile_uuid,
                "profile_name": r.profile_name,
                "profile": json.loads(r.profile),
                "created_at": as_utc(r.created_at),
                "blueprint_id": r.blueprint_id,
            }
            for r in rows
        ]

    def save_results(self, name: str, action: str, profile_uuid: str | None, results: dict[str, str]) -> None:
        """Store Apple's per-device answers; SUCCESS also updates the device's profile at once."""
        now = utcnow()
        succeeded = [s for s, status in results.items() if status == "SUCCESS"]
        values = (
            {"profile_uuid": profile_uuid, "profile_status": "assigned", "profile_assign_time": now}
            if action == "assign"
            else {"profile_uuid": None, "profile_status": "removed", "profile_assign_time": None}
        )
        with self._engine.begin() as conn:
            self._save_results(conn, name, action, profile_uuid, results, now)
            for chunk in _chunks(succeeded):
                conn.execute(
                    update(abm_devices)
                    .where(abm_devices.c.connection == name, abm_devices.c.serial_number.in_(chunk))
                    .values(**values, updated_at=now)
                )

    def _save_results(
        self,
        conn: Connection,
        name: str,
        action: str,
        profile_uuid: str | None,
        results: dict[str, str],
        now: datetime,
    ) -> None:
        rows = [
            {
                "connection": name,
                "serial_number": serial,
                "action": action,
                "profile_uuid": profile_uuid,
                "status": status[:40],
                "at": now,
            }
            for serial, status in results.items()
            if len(serial) <= 64  # Apple echoing something that is no serial is not stored
        ]
        if not rows:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(abm_profile_results)
        stmt = stmt.on_conflict_do_update(
            index_elements=["connection", "serial_number"],
            set_={c: stmt.excluded[c] for c in ("action", "profile_uuid", "status", "at")},
        )
        conn.execute(stmt, rows)
