"""Apple's YAML schemas (russet/apple_schemas) for tests, so that what Russet builds is judged
by Apple's text rather than by Russet's own declarations.

The reading and the walking are the product's own (`russet.schemas`, which the profile library
validates uploads with): one piece of code, so the tests and the library cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from russet import schemas
from russet.schemas import SCHEMA_DIR as SCHEMAS
from russet.schemas import free_form

__all__ = ["CAPTURES", "SCHEMAS", "free_form", "load_schema", "schema_errors"]

# Real device captures are test data (tests/data/device-captures, MIT, see its README).
CAPTURES = Path(__file__).resolve().parent / "data" / "device-captures"


def load_schema(relative: str) -> dict[str, Any]:
    return schemas.load(relative)


def schema_errors(keys: list[dict[str, Any]] | None, value: Mapping[str, Any], path: str = "") -> list[str]:
    """Every way `value` breaks the schema `keys` (a `payloadkeys` or `subkeys` list), strictly:
    Russet's own output must say `<real>` where Apple does."""
    found = schemas.problems(keys, value, path.rstrip("."), limit=1000)
    return [str(problem) for problem in found]
