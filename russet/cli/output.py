"""Output for people (tables) and scripts (--json)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def json_or(data: Any, as_json: bool) -> bool:
    """Print `data` as JSON when asked; True when the caller has nothing more to print."""
    if as_json:
        emit_json(data)
    return as_json


# A UTC timestamp as services hand them over (datetime's str() or isoformat, +00:00 or naive).
_UTC_TEXT = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(\+00:00|Z)?$")


def cell(value: Any) -> str:
    """One value as people read it: UTC times to the second marked Z (every stored time is UTC),
    yes/no rather than True/False, JSON rather than Python's repr for lists and mappings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, separators=(", ", ": "))
    text = str(value)
    found = _UTC_TEXT.match(text)
    return f"{found.group(1)} {found.group(2)}Z" if found else text


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    t = Table(box=None, header_style="bold", pad_edge=False)
    for i, (_, title) in enumerate(columns):
        # The first column holds ids people copy: never shorten it; let the others fold.
        width = max(len(c[i]) for c in cells) if i == 0 else None
        t.add_column(title, min_width=width, no_wrap=i == 0, overflow="fold")
    for c in cells:
        t.add_row(*c)
    Console(width=None if sys.stdout.isatty() else 250).print(t)


def fields(data: dict[str, Any], keys: Sequence[str]) -> None:
    width = max(len(k) for k in keys)
    for key in keys:
        value = data.get(key)
        click.echo(f"{key.ljust(width)}  {cell(value)}")
