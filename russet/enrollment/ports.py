"""What enrollment needs from other features, as ports (adapters in russet/wiring/adapters.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from russet.enrollment.tokens import Person


class PeopleSignIn(Protocol):
    """Signs a person in before an ADE device gets its profile (Setup Assistant's web view): with
    the console's OpenID Connect provider, or a Russet local account (email and Argon2 password).

    Every method raises an error kind from russet.kernel.errors with a message for the person:
    Refused (wrong password, too many tries, the provider said no, a bad ID token), Invalid,
    NotFound (single sign-on not configured), UpstreamFailed (the provider cannot be reached)."""

    def sso_enabled(self) -> bool: ...

    def sso_start(self) -> tuple[str, dict[str, str]]:
        """The provider's authorization URL, and the flow (state, nonce, verifier) to keep sealed
        until the browser comes back."""
        ...

    def sso_finish(self, flow: Mapping[str, str], params: Mapping[str, str]) -> Person:
        """The person the provider vouched for, from its redirect back (code, state or error)."""
        ...

    def password(self, email: str, password: str, client: str | None) -> Person:
        """The local account with this email and password (failures counted per address/email)."""
        ...
