"""What the ABM feature needs from others, as Protocols the composition root wires.

An ADE profile may name the blueprint that applies to the devices it enrolls. ABM stores only the
blueprint's id; the blueprints feature says which blueprint a name (or id) is, and what each id is
called now, through `BlueprintNames` (wired in `russet/runtime.py` to `BlueprintService`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol


class BlueprintNames(Protocol):
    def resolve(self, ref: str) -> tuple[int, str]:
        """The id and name of blueprint `ref` (a name or an id as text); raises
        `russet.kernel.errors.NotFound` naming it when there is no such blueprint."""
        ...

    def names(self, ids: Collection[int]) -> Mapping[int, str]:
        """The current name of each blueprint id; a deleted blueprint is left out."""
        ...
