"""Every query on the apps feature's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from russet.apps.tables import app_licence_requests, apps
from russet.kernel.errors import Conflict, NotFound
from russet.storage.db import as_utc, reading

_a, _l = apps.c, app_licence_requests.c


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    out["created_at"] = as_utc(out["created_at"])
    return out


class AppStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- the catalogue ---------------------------------------------------------------------------

    def all(self) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            return [_row(r) for r in conn.execute(select(apps).order_by(_a.id))]

    def get(self, ident: int | str) -> dict[str, Any]:
        """By id or name; NotFound otherwise."""
        where = _a.id == ident if isinstance(ident, int) else _a.name == ident
        with reading(self.engine) as conn:
            row = conn.execute(select(apps).where(where)).first()
        if row is None:
            raise NotFound(f"no app {ident!r} in the catalogue")
        return _row(row)

    def add(self, values: dict[str, Any]) -> int:
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(insert(apps).values(**values).returning(_a.id)).scalar_one())
        except IntegrityError:
            raise Conflict(f"an app named {values['name']!r} is already in the catalogue") from None

    def delete(self, app_id: int) -> None:
        with self.engine.begin() as conn:
            if conn.execute(delete(apps).where(_a.id == app_id)).rowcount != 1:
                raise NotFound(f"no app {app_id} in the catalogue")

    def package_in_use(self, sha256: str) -> bool:
        with reading(self.engine) as conn:
            return conn.execute(select(_a.id).where(_a.package_sha256 == sha256).limit(1)).first() is not None

    # -- licence requests ------------------------------------------------------------------------

    def request(self, app_id: int, serial: str, device_id: str, action: str, now: datetime) -> None:
        """Wish a licence assigned or returned; the newest wish replaces an older one."""
        with self.engine.begin() as conn:
            where = and_(_l.app_id == app_id, _l.serial == serial)
            values = {
                "device_id": device_id,
                "action": action,
                "state": "todo",
                "error": None,
                "updated_at": now,
            }
            if conn.execute(update(app_licence_requests).where(where).values(**values)).rowcount == 0:
                conn.execute(insert(app_licence_requests).values(app_id=app_id, serial=serial, **values))

    def wish(self, app_id: int, serial: str) -> dict[str, Any] | None:
        with reading(self.engine) as conn:
            row = conn.execute(
                select(app_licence_requests).where(_l.app_id == app_id, _l.serial == serial)
            ).first()
        return None if row is None else dict(row._mapping)

    def open_wishes(self, limit: int = 500) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(app_licence_requests)
                .where(_l.state.in_(("todo", "sent")))
                .order_by(_l.updated_at)
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]

    def move(self, wish: dict[str, Any], *, state: str | None, error: str | None, now: datetime) -> bool:
        """Move a wish on (state None: done, deleted), if nobody replaced it meanwhile."""
        where = and_(
            _l.app_id == wish["app_id"],
            _l.serial == wish["serial"],
            _l.action == wish["action"],
            _l.state == wish["state"],
        )
        with self.engine.begin() as conn:
            if state is None:
                done = conn.execute(delete(app_licence_requests).where(where))
            else:
                done = conn.execute(
                    update(app_licence_requests).where(where).values(state=state, error=error, updated_at=now)
                )
        return done.rowcount == 1

    def forget_wishes(self, app_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(app_licence_requests).where(_l.app_id == app_id))
