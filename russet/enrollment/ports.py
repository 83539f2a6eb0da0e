"""What enrollment needs of other features, as Protocols (adapters in russet/wiring/adapters.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from russet.enrollment.tokens import Person

__all__ = ["Person", "PersonSignIn"]  # Person: what a sign-in gives, for the adapters


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
