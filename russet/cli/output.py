"""Output for people (tables) and scripts (--json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
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


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [["" if row.get(key) is None else str(row.get(key)) for key, _ in columns] for row in rows]
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
        click.echo(f"{key.ljust(width)}  {'' if value is None else value}")
