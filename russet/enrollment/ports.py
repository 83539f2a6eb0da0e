"""What enrollment needs of other features, as Protocols (adapters in russet/wiring/adapters.py).

A minimum OS may be a blueprint's (`russet enrollment minimum-os ios 18.1 --blueprint Lab`):
blueprints are their own feature, so enrollment names them through `BlueprintNames`, which
`russet.wiring.adapters.AbmBlueprintNames` implements over BlueprintService (ABM's ADE profiles
name blueprints the same way).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from russet.enrollment.tokens import Person

__all__ = [
    "BlueprintNames",
    "Person",
    "PersonSignIn",
    "PeopleSignIn",
    "SetupCommands",
]  # Person: for adapters


class PersonSignIn(Protocol):
    """A person signing in at the organisation's identity provider, for account-driven enrollment
    (the console's OpenID Connect provider, with the account-driven callback as redirect URL)."""

    def start(self) -> tuple[str, dict[str, str]]:
        """The provider's URL to send the browser to, and the flow to keep (sealed) until it returns."""
        ...

    def finish(self, flow: Mapping[str, str], params: Mapping[str, str]) -> Person:
        """The signed-in person (with a verified email), from the provider's redirect back;
        raises a kernel error kind saying why not."""
        ...


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


class SetupCommands(Protocol):
    """The MDM core's side of pre-filling a Mac's primary account during Setup Assistant."""

    def is_mac(self, device_id: str) -> bool:
        """Whether the enrolled device is a Mac (from what its Authenticate said)."""
        ...

    def sent_since(self, device_id: str, request_type: str, since: datetime | None) -> bool:
        """Whether a command of this type was queued for the device at or after `since`."""
        ...

    def send(self, device_id: str, command: dict[str, Any]) -> None:
        """Queue `command` for the device (raises an error kind when it is refused)."""
        ...


class BlueprintNames(Protocol):
    def resolve(self, ref: str) -> tuple[int, str]:
        """The id and name of blueprint `ref` (a name or an id as text); raises
        `russet.kernel.errors.NotFound` naming it when there is no such blueprint."""
        ...

    def names(self, ids: Collection[int]) -> Mapping[int, str]:
        """The current name of each blueprint id; a deleted blueprint is left out."""
        ...
