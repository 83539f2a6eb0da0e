"""Replacing the master key: every sealed value in every table re-sealed, in one transaction.

Each owner declares what it seals as `SealedColumn`s: the infrastructure's here
(`INFRASTRUCTURE_SEALED`), each feature's in its `sealed.py`, beside the store that seals them;
the composition gathers them all (`russet.wiring.sealed.SEALED_COLUMNS`, which a test checks
against every `sealed_*` column of the schema) and hands them to `rotate`. Each entry knows how
to rebuild its value's purpose label from its row, exactly as the store that sealed it did. This
module knows no feature.

The key file is replaced only after the transaction committed: until then `master.key` is the
old key and `master.key.new` the new one (both 0600). A crash between the commit and the rename
leaves both; the next start (or rotation) finds out which one the database is sealed with from
a check value written in the same transaction, and finishes or discards the rotation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, inspect, select, update

from russet.config import Settings
from russet.storage.db import first_start_lock, make_engine, reading, require_migrated, upsert, utcnow
from russet.storage.secretbox import (
    KEY_FILE,
    NEW_KEY_FILE,
    SecretBox,
    SecretError,
    decode_key,
    encode_key,
    is_sealed,
    new_key,
    write_private,
)
from russet.storage.tables import certificates
from russet.storage.tables import settings as settings_table

CHECK_SETTING = "secrets.key_check"  # sealed with the current key by each rotation
_CHECK_PLAIN = b"russet master key"
_BATCH = 1000


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: str
    purpose: Callable[[Any], str]  # row -> the purpose label it was sealed with
    may_be_clear: bool = False  # bodies and results: sealed only for commands that carry secrets

    @property
    def label(self) -> str:
        return f"{self.table.name}.{self.column}"


# What the infrastructure stores seal: settings' secrets and certificates' keys.
INFRASTRUCTURE_SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(settings_table, "sealed_value", lambda r: f"settings:{r.key}"),
    SealedColumn(certificates, "sealed_key", lambda r: f"certificate-key:{r.fingerprint}"),
)


@dataclass(frozen=True)
class Rotation:
    resealed: dict[str, int]  # column label -> values re-sealed
    new_key: str | None  # the new key in base64 when it lives in RUSSET_MASTER_KEY (else in the file)
    key_file: Path | None


def _rows(conn: Connection, col: SealedColumn) -> Iterator[Sequence[Any]]:
    (pk,) = col.table.primary_key.columns
    value = col.table.c[col.column]
    last: Any = None
    while True:
        query = select(col.table).where(value.is_not(None)).order_by(pk).limit(_BATCH)
        if last is not None:
            query = query.where(pk > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = getattr(rows[-1], pk.name)


def reseal(
    conn: Connection, old: SecretBox, new: SecretBox, columns: Sequence[SealedColumn]
) -> dict[str, int]:
    """Open every sealed value of `columns` with `old` and seal it with `new`, in the caller's
    transaction."""
    counts: dict[str, int] = {}
    for col in columns:
        (pk,) = col.table.primary_key.columns
        stmt = update(col.table).where(pk == bindparam("b_pk")).values({col.column: bindparam("b_value")})
        count = 0
        for rows in _rows(conn, col):
            batch = []
            for row in rows:
                sealed = getattr(row, col.column)
                if col.may_be_clear and not is_sealed(sealed):
                    continue
                purpose = col.purpose(row)
                batch.append(
                    {"b_pk": getattr(row, pk.name), "b_value": new.seal(old.open(sealed, purpose), purpose)}
                )
            if batch:
                conn.execute(stmt, batch)
                count += len(batch)
        counts[col.label] = count
    return counts


def _write_check(conn: Connection, box: SecretBox) -> None:
    sealed = box.seal(_CHECK_PLAIN, f"settings:{CHECK_SETTING}")
    upsert(
        conn,
        settings_table,
        {"key": CHECK_SETTING, "sealed_value": sealed, "updated_at": utcnow()},
        ["key"],
        ["sealed_value", "updated_at"],
    )


def _replace_key_file(new_path: Path, key_path: Path) -> None:
    os.replace(new_path, key_path)
    fd = os.open(key_path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself is durable
    finally:
        os.close(fd)


def rotate(
    settings: Settings, columns: Sequence[SealedColumn], announce: Callable[[str], None] | None = None
) -> Rotation:
    """Re-seal everything in `columns` (every sealed column: `russet.wiring.sealed.SEALED_COLUMNS`)
    under a fresh master key. Servers must be stopped: they hold the old key. With
    RUSSET_MASTER_KEY the new key is handed to `announce` before the transaction (so it cannot be
    lost to a crash after it), and the admin puts it in the environment."""
    key = new_key()
    new = SecretBox(key)
    engine = make_engine(settings.database_url)
    from_env = settings.master_key is not None
    key_path, new_path = settings.data_dir / KEY_FILE, settings.data_dir / NEW_KEY_FILE
    try:
        require_migrated(engine)
        with first_start_lock(engine):  # no server sets the database up meanwhile
            _finish_interrupted(engine, key_path, new_path)
            old = SecretBox.load(settings.data_dir, settings.master_key)
            if from_env:
                if announce is not None:
                    announce(encode_key(key))
            else:
                write_private(new_path, encode_key(key).encode())
            try:
                with engine.begin() as conn:
                    counts = reseal(conn, old, new, columns)
                    _write_check(conn, new)
            except BaseException:
                if not from_env:
                    new_path.unlink(missing_ok=True)  # nothing changed: the old key stays
                raise
            if not from_env:
                _replace_key_file(new_path, key_path)
    finally:
        engine.dispose()
    return Rotation(counts, encode_key(key) if from_env else None, None if from_env else key_path)


def finish_interrupted_rotation(settings: Settings, engine: Engine) -> str | None:
    """If a rotation stopped between its commit and replacing the key file, finish it (or drop the
    new key if it never committed); returns what was done, None when there was nothing to do."""
    if settings.master_key is not None:
        return None
    key_path, new_path = settings.data_dir / KEY_FILE, settings.data_dir / NEW_KEY_FILE
    if not new_path.exists():
        return None
    with first_start_lock(engine):
        return _finish_interrupted(engine, key_path, new_path)


def _finish_interrupted(engine: Engine, key_path: Path, new_path: Path) -> str | None:
    if not new_path.exists():
        return None
    try:
        candidate = SecretBox(decode_key(new_path.read_bytes(), str(new_path)))
    except SecretError:
        new_path.unlink()
        return f"removed {new_path}: it held no key"
    with reading(engine) as conn:
        sealed = None
        if inspect(conn).has_table(settings_table.name):
            sealed = conn.execute(
                select(settings_table.c.sealed_value).where(settings_table.c.key == CHECK_SETTING)
            ).scalar()
    if sealed is not None:
        try:
            candidate.open(sealed, f"settings:{CHECK_SETTING}")
        except SecretError:
            pass
        else:
            _replace_key_file(new_path, key_path)
            return f"finished an interrupted key rotation: {new_path} replaced {key_path}"
    new_path.unlink()
    return f"removed {new_path}: its rotation never committed"
