"""The admin surfaces' one way to API keys, console users, single sign-on, sign-in failure counts
and the audit log.

The REST API checks each request's bearer key here (`principal`: who and with which role), the
console checks a sign-in (API key, email and password, or single sign-on) and, on each page, that
the key or user its session names is still live; the CLI creates, lists and revokes keys and users
here. Every surface records what it did in the audit log (`record`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from russet.access.audit import AuditEntry, AuditLog, Verdict
from russet.access.roles import Role
from russet.access.sso import Identity, Pending, SingleSignOn
from russet.access.users import User, UserStore
from russet.kernel.errors import Invalid, NotFound, Refused, Unavailable
from russet.storage.apikeys import ApiKey, ApiKeyStore
from russet.storage.db import utcnow
from russet.storage.login_failures import LoginLimiter


@dataclass(frozen=True)
class Principal:
    """Who is asking: `actor` is how the audit log names them (`api:<key>`, `user:<email>`)."""

    name: str
    actor: str
    role: Role


class AccessService:
    def __init__(
        self,
        keys: ApiKeyStore,
        sign_ins: LoginLimiter,
        users: UserStore | None = None,
        audit: AuditLog | None = None,
        sso: SingleSignOn | None = None,
        audit_retention_days: int = 730,
    ) -> None:
        self._keys = keys
        self._sign_ins = sign_ins
        self.users = users
        self.audit = audit
        self.sso = sso
        self.audit_retention = timedelta(days=audit_retention_days)

    # -- API keys ----------------------------------------------------------------------------------

    def create_key(self, name: str, role: str | Role = Role.ADMIN) -> str:
        """A new key named `name` with `role`: returned this once, stored only as a hash."""
        parsed = role if isinstance(role, Role) else Role.parse(role)
        return self._keys.create(name, parsed.label)

    def list_keys(self) -> list[ApiKey]:
        return self._keys.list()

    def revoke_key(self, name: str) -> None:
        """Revoke the live key `name` at once (its console sessions end with it)."""
        if not self._keys.revoke(name):
            raise NotFound(f"no live API key named {name!r}")

    def caller(self, key: str) -> str | None:
        """The name of the live key `key`, or None."""
        return self._keys.authenticate(key)

    def caller_of_hash(self, hashed: str) -> str | None:
        """The name of the live key whose hash a console session holds, or None once revoked."""
        return self._keys.authenticate_hash(hashed)

    def principal_of_hash(self, hashed: str) -> Principal | None:
        """The live key whose hash this is, as a principal, or None once revoked."""
        found = self._keys.holder_of_hash(hashed)
        if found is None:
            return None
        return Principal(found[0], f"api:{found[0]}", Role.parse(found[1]))

    def key_role(self, name: str) -> Role | None:
        """The role of the live key `name`, or None."""
        for key in self._keys.list():
            if key.name == name and key.revoked_at is None:
                return Role.parse(key.role)
        return None

    # -- console users -------------------------------------------------------------------------------

    def _users(self) -> UserStore:
        if self.users is None:
            raise Unavailable("console users are not set up")
        return self.users

    def add_user(self, email: str, role: str | Role, password: str | None) -> User:
        parsed = role if isinstance(role, Role) else Role.parse(role)
        return self._users().add(email, parsed, password)

    def list_users(self) -> list[User]:
        return self._users().list()

    def set_user_role(self, email: str, role: str | Role) -> User:
        return self._users().set_role(email, role if isinstance(role, Role) else Role.parse(role))

    def set_user_password(self, email: str, password: str) -> None:
        self._users().set_password(email, password)

    def remove_user(self, email: str) -> None:
        """Remove a user; their console sessions end at their next page."""
        self._users().remove(email)

    def user_principal(self, user_id: int) -> Principal | None:
        """The user a console session names, or None once removed."""
        user = self._users().by_id(user_id)
        return None if user is None else Principal(user.email, f"user:{user.email}", user.role)

    def password_sign_in(self, email: str, password: str) -> User | None:
        user = self._users().verify(email, password)
        if user is not None:
            self._users().signed_in(user.id)
        return user

    # -- single sign-on ------------------------------------------------------------------------------

    def sso_enabled(self) -> bool:
        return self.sso is not None

    def sso_start(self) -> tuple[str, Pending]:
        if self.sso is None:
            raise NotFound("single sign-on is not configured (RUSSET_OIDC_DISCOVERY_URL)")
        return self.sso.start()

    def sso_finish(self, pending: Pending, params: Mapping[str, str]) -> User:
        """The console user the provider vouched for: matched by email; the role comes from the
        configured claim when the token carries one (a new user is made then), else from the
        pre-created user. Refused when neither says."""
        if self.sso is None:
            raise NotFound("single sign-on is not configured (RUSSET_OIDC_DISCOVERY_URL)")
        identity: Identity = self.sso.finish(pending, params)
        users = self._users()
        user = users.get(identity.email)
        if user is None:
            if identity.role is None:
                raise Refused(
                    f"{identity.email} has no Russet user (add one with `russet user add {identity.email} "
                    "--role ROLE`) and the sign-on provider gave no role"
                )
            user = users.add(identity.email, identity.role, None, source="sso")
        elif identity.role is not None and identity.role != user.role:
            user = users.set_role(user.email, identity.role)
        users.signed_in(user.id)
        return user

    # -- console sign-in failures ---------------------------------------------------------------------

    def sign_in_wait(self, buckets: Sequence[str]) -> int | None:
        """Seconds to wait before another sign-in from these buckets is looked at, or None."""
        return self._sign_ins.retry_after(buckets)

    def sign_in_failed(self, buckets: Sequence[str]) -> None:
        self._sign_ins.failed(buckets)

    def sign_in_succeeded(self, buckets: Sequence[str]) -> None:
        self._sign_ins.succeeded(buckets)

    def prune_sign_in_failures(self) -> int:
        """Forget failure counts whose window has ended (housekeeping)."""
        return self._sign_ins.prune()

    # -- the audit log -------------------------------------------------------------------------------

    def _audit(self) -> AuditLog:
        if self.audit is None:
            raise Unavailable("the audit log is not set up")
        return self.audit

    def record(self, entry: AuditEntry) -> int:
        return self._audit().record(entry)

    def audit_page(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        surface: str | None = None,
        since: datetime | None = None,
    ) -> dict[str, Any]:
        if not 1 <= limit <= 1000:
            raise Invalid("limit must be 1 to 1000")
        if since is not None:
            try:
                since.astimezone(UTC)
            except (OverflowError, ValueError):
                raise Invalid(f"since {since.isoformat()} is out of range") from None
        return self._audit().page(limit=limit, before=before, actor=actor, surface=surface, since=since)

    def audit_rows(self) -> Any:
        return self._audit().rows()

    def audit_verify(self) -> Verdict:
        return self._audit().verify()

    def prune_audit(self) -> int:
        """Remove rows past the retention policy, keeping the chain verifiable (an anchor row)."""
        return self._audit().prune(utcnow() - self.audit_retention)
