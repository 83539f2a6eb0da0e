"""The admin surfaces' one way to the API keys and the console's sign-in failure counts.

The REST API checks each request's bearer key here, the console checks a sign-in (and, on each
page, the key hash its session holds) and counts failed sign-ins here, the CLI creates, lists and
revokes keys here. Both stores are infrastructure (`russet.storage`); this service is what the
surfaces are handed instead of the Storage bundle or the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

from russet.kernel.errors import NotFound
from russet.storage.apikeys import ApiKey, ApiKeyStore
from russet.storage.login_failures import LoginLimiter


class AccessService:
    def __init__(self, keys: ApiKeyStore, sign_ins: LoginLimiter) -> None:
        self._keys = keys
        self._sign_ins = sign_ins

    # -- API keys ----------------------------------------------------------------------------------

    def create_key(self, name: str) -> str:
        """A new key named `name`: returned this once, stored only as a hash."""
        return self._keys.create(name)

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
