"""Console users: people who sign in to the web console with an email address and a password
(hashed with Argon2id, argon2-cffi's defaults) or through single sign-on (no password kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from russet.access.roles import Role
from russet.access.tables import console_users
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.storage.db import as_utc, reading, utcnow

EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z0-9-]{2,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # Argon2 takes any length; this bounds the work a sign-in can ask for

_hasher = PasswordHasher()
# A hash to verify against when the email is unknown, so an unknown address takes as long as a
# wrong password (no user enumeration by timing).
_DUMMY = _hasher.hash("not a password of anyone's")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: Role
    source: str
    has_password: bool
    created_at: datetime
    last_sign_in_at: datetime | None

    def view(self) -> dict[str, object]:
        return {
            "email": self.email,
            "role": self.role.label,
            "source": self.source,
            "password": self.has_password,
            "created_at": self.created_at,
            "last_sign_in_at": self.last_sign_in_at,
        }


def normal_email(text: str) -> str:
    email = text.strip().lower()
    if not EMAIL.match(email):
        raise Invalid(f"{text!r} is not an email address")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD or "\x00" in password:
        raise Invalid(f"a password must have at most {MAX_PASSWORD} characters and no NUL")


def _user(row: object) -> User:
    r = row
    return User(
        id=int(r.id),  # type: ignore[attr-defined]
        email=r.email,  # type: ignore[attr-defined]
        role=Role.parse(r.role),  # type: ignore[attr-defined]
        source=r.source,  # type: ignore[attr-defined]
        has_password=r.password_hash is not None,  # type: ignore[attr-defined]
        created_at=as_utc(r.created_at),  # type: ignore[attr-defined,arg-type]
        last_sign_in_at=as_utc(r.last_sign_in_at),  # type: ignore[attr-defined]
    )


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, email: str, role: Role, password: str | None, source: str = "local") -> User:
        email = normal_email(email)
        if password is not None:
            check_password(password)
        hashed = _hasher.hash(password) if password is not None else None
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(console_users).values(
                        email=email, role=role.label, password_hash=hashed, source=source, created_at=utcnow()
                    )
                )
        except IntegrityError:
            raise Conflict(f"a user {email!r} already exists") from None
        found = self.get(email)
        assert found is not None
        return found

    def get(self, email: str) -> User | None:
        with reading(self._engine) as conn:
            row = conn.execute(
                select(console_users).where(console_users.c.email == email.strip().lower())
            ).first()
        return None if row is None else _user(row)

    def by_id(self, user_id: int) -> User | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(console_users).where(console_users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def list(self) -> list[User]:
        with reading(self._engine) as conn:
            rows = conn.execute(select(console_users).order_by(console_users.c.email)).all()
        return [_user(r) for r in rows]

    def verify(self, email: str, password: str) -> User | None:
        """The live user whose password this is, or None (the same work either way)."""
        if len(password) > MAX_PASSWORD:
            return None
        with reading(self._engine) as conn:
            row = conn.execute(
                select(console_users).where(console_users.c.email == email.strip().lower())
            ).first()
        stored = row.password_hash if row is not None and row.password_hash else _DUMMY
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row.password_hash:
            return None
        if _hasher.check_needs_rehash(stored):
            with self._engine.begin() as conn:
                conn.execute(
                    update(console_users)
                    .where(console_users.c.id == row.id)
                    .values(password_hash=_hasher.hash(password))
                )
        return _user(row)

    def signed_in(self, user_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(console_users).where(console_users.c.id == user_id).values(last_sign_in_at=utcnow())
            )

    def set_role(self, email: str, role: Role) -> User:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(console_users)
                .where(console_users.c.email == email.strip().lower())
                .values(role=role.label)
            ).rowcount
        if not done:
            raise NotFound(f"no user {email!r}")
        found = self.get(email)
        assert found is not None
        return found

    def set_password(self, email: str, password: str) -> None:
        check_password(password)
        with self._engine.begin() as conn:
            done = conn.execute(
                update(console_users)
                .where(console_users.c.email == email.strip().lower())
                .values(password_hash=_hasher.hash(password))
            ).rowcount
        if not done:
            raise NotFound(f"no user {email!r}")

    def remove(self, email: str) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                delete(console_users).where(console_users.c.email == email.strip().lower())
            ).rowcount
        if not done:
            raise NotFound(f"no user {email!r}")
