"""What enrollment needs of other features, as Protocols (adapters in russet/wiring/adapters.py).

A minimum OS may be a blueprint's (`russet enrollment minimum-os ios 18.1 --blueprint Lab`):
blueprints are their own feature, so enrollment names them through `BlueprintNames`, which
`russet.wiring.adapters.AbmBlueprintNames` implements over BlueprintService (ABM's ADE profiles
name blueprints the same way).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from russet.enrollment.tokens import Person

__all__ = ["BlueprintNames", "Person", "PersonSignIn"]  # Person: what a sign-in gives, for the adapters


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


class BlueprintNames(Protocol):
    def resolve(self, ref: str) -> tuple[int, str]:
        """The id and name of blueprint `ref` (a name or an id as text); raises
        `russet.kernel.errors.NotFound` naming it when there is no such blueprint."""
        ...

    def names(self, ids: Collection[int]) -> Mapping[int, str]:
        """The current name of each blueprint id; a deleted blueprint is left out."""
        ...
