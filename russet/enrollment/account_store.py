"""Account-driven enrollment's rows: the organisation's domains, and the one-use bearer tokens.

A bearer token is 256 random bits stored as its SHA-256 only (as OTA enrollment tokens are). It is
spent by one conditional UPDATE (unused, unexpired, for this enrollment mode), so two requests
racing with the same token get one profile between them, and a replay changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from russet.enrollment.tables import enrollment_account_tokens, enrollment_domains
from russet.enrollment.tokens import Person, token_hash
from russet.storage.db import as_utc, reading, utcnow

ACCOUNT_TOKEN_PREFIX = "adt_"


@dataclass(frozen=True)
class Domain:
    domain: str
    mode: str  # user | device
    created_at: datetime


class DomainStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, domain: str, mode: str) -> Domain | None:
        """The new domain, or None when it is already there."""
        now = utcnow()
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(enrollment_domains).values(domain=domain, mode=mode, created_at=now))
        except IntegrityError:
            return None
        return Domain(domain, mode, now)

    def get(self, domain: str) -> Domain | None:
        with reading(self._engine) as conn:
            row = conn.execute(
                select(enrollment_domains).where(enrollment_domains.c.domain == domain)
            ).first()
        return None if row is None else Domain(row.domain, row.mode, as_utc(row.created_at))  # type: ignore[arg-type]

    def list(self) -> list[Domain]:
        with reading(self._engine) as conn:
            rows = conn.execute(select(enrollment_domains).order_by(enrollment_domains.c.domain)).all()
        return [Domain(r.domain, r.mode, as_utc(r.created_at)) for r in rows]  # type: ignore[arg-type]

    def remove(self, domain: str) -> bool:
        with self._engine.begin() as conn:
            res = conn.execute(delete(enrollment_domains).where(enrollment_domains.c.domain == domain))
        return res.rowcount > 0


class SpentToken(Exception):
    """The bearer token buys nothing; ``str()`` says why. Nothing was changed."""


class AccountTokenStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def issue(self, mode: str, person: Person, lifetime: timedelta) -> str:
        """A new token for `person`'s enrollment in `mode`; the only time the clear token exists."""
        token = ACCOUNT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                insert(enrollment_account_tokens).values(
                    token_hash=token_hash(token),
                    mode=mode,
                    person_id=person.id,
                    person_email=person.email,
                    person_name=person.name,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
        return token

    def spend(self, token: str, mode: str) -> Person:
        """Mark the token used and return its person, or raise SpentToken saying why not."""
        t = enrollment_account_tokens.c
        digest = token_hash(token)
        now = utcnow()
        with self._engine.begin() as conn:
            spent = conn.execute(
                update(enrollment_account_tokens)
                .where(t.token_hash == digest, t.used_at.is_(None), t.expires_at > now, t.mode == mode)
                .values(used_at=now)
            )
            if spent.rowcount == 1:
                mine = conn.execute(select(enrollment_account_tokens).where(t.token_hash == digest)).one()
                return Person(mine.person_id, mine.person_email, mine.person_name)
        with reading(self._engine) as conn:
            row = conn.execute(select(enrollment_account_tokens).where(t.token_hash == digest)).first()
        if row is None:
            raise SpentToken("the bearer token is unknown here (not issued by this server, or pruned)")
        if row.used_at is not None:
            raise SpentToken(
                f"the bearer token was already used at {as_utc(row.used_at):%Y-%m-%d %H:%M:%S} UTC"
            )
        if row.mode != mode:
            raise SpentToken(f"the bearer token was issued for {row.mode} enrollment, not {mode} enrollment")
        raise SpentToken(f"the bearer token expired at {as_utc(row.expires_at):%Y-%m-%d %H:%M:%S} UTC")

    def prune(self, grace: timedelta) -> int:
        """Tokens used or expired more than `grace` ago: their person is not kept longer."""
        t = enrollment_account_tokens.c
        cutoff = utcnow() - grace
        with self._engine.begin() as conn:
            res = conn.execute(
                delete(enrollment_account_tokens).where(or_(t.expires_at < cutoff, t.used_at < cutoff))
            )
        return res.rowcount
