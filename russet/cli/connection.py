"""What `russet abm …` and `russet vpp …` print alike about their Apple connections.

Both features list connections with per-row token warnings, print a result or its JSON, and warn
about an expiring token the same way; they configure these helpers instead of copying them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from russet.cli.common import handles_errors, json_option, open_russet, run_async
from russet.cli.output import json_or, table
from russet.runtime import Russet

T = TypeVar("T")


def run(work: Callable[[Russet], Awaitable[T]]) -> T:
    """Open Russet for this command and run `work(russet)`, a call that reaches Apple, in a loop
    of its own (`run_async`, which closes the gateway's connections in that loop)."""
    russet = open_russet()
    return run_async(russet, work(russet))


def columns(spec: str) -> list[tuple[str, str]]:
    """Table columns written compactly: "key=TITLE, key=TITLE, …" (titles may hold spaces)."""
    return [(key.strip(), title.strip()) for key, title in (part.split("=", 1) for part in spec.split(","))]


def warn(data: dict[str, Any]) -> None:
    """The token-expiry warning of a result, on stderr so that scripts reading stdout ignore it."""
    if data.get("warning"):
        click.echo(f"warning: {data['warning']}", err=True)


def listing(rows: list[dict[str, Any]], as_json: bool, cols: Sequence[tuple[str, str]], empty: str) -> None:
    """A feature's connections as a table (or JSON), then each connection's token warning."""
    if json_or(rows, as_json):
        return
    table(rows, cols, empty)
    for row in rows:
        if row["warning"]:
            click.echo(f"warning: {row['name']}: {row['warning']}", err=True)


def token_file(metavar: str) -> Any:
    """The TOKEN_FILE argument of the commands that load a token downloaded from Apple."""
    return click.argument(
        "token_file", metavar=metavar, type=click.Path(exists=True, dir_okay=False, path_type=Path)
    )


def command(group: click.Group, name: str, *params: Any, named: bool = True) -> Any:
    """Register a command of a feature's group that takes a connection NAME, then `params`
    (click arguments and options, in order), then --json, and answers errors as one line."""

    def register(func: Any) -> Any:
        func = json_option(handles_errors(func))
        for param in reversed(params):
            func = param(func)
        if named:
            func = click.argument("name")(func)
        return group.command(name)(func)

    return register


def list_command(
    group: click.Group, fetch: Callable[[Russet], list[dict[str, Any]]], doc: str, spec: str, empty: str
) -> Any:
    """The `list` command of a feature: its connections (`fetch`), as `columns(spec)` or JSON."""

    def list_(as_json: bool) -> None:
        listing(fetch(open_russet()), as_json, columns(spec), empty)

    list_.__doc__ = doc
    return command(group, "list", named=False)(list_)


def table_command(
    group: click.Group,
    name: str,
    *params: Any,
    rows: str,
    spec: str,
    empty: str,
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    named: bool = True,
) -> Any:
    """Decorates a fetch of a listing into a command (see `command`) that prints the answer as JSON
    or its `rows` list as `columns(spec)`, each row through `shape` first; `empty` (formatted with
    the command's arguments) is what an empty list says. The fetch's docstring is the help."""

    def register(fetch: Callable[..., dict[str, Any]]) -> Any:
        def listing_(as_json: bool, **args: Any) -> None:
            data = fetch(**args)
            if json_or(data, as_json):
                return
            found = [shape(r) if shape else r for r in data[rows]]
            table(found, columns(spec), empty.format(**args))

        listing_.__doc__ = fetch.__doc__
        return command(group, name, *params, named=named)(listing_)

    return register


def show_command(group: click.Group, fetch: Callable[[Russet, str], dict[str, Any]]) -> Any:
    """Decorates a feature's renderer of one connection into its `show NAME` command: `fetch` gets
    the connection, the renderer prints it (or --json prints it as JSON); its docstring is the help."""

    def register(render: Callable[[dict[str, Any]], None]) -> Any:
        def show(name: str, as_json: bool) -> None:
            data = fetch(open_russet(), name)
            if not json_or(data, as_json):
                render(data)

        show.__doc__ = render.__doc__
        return command(group, "show")(show)

    return register


def flag(option: str, help: str) -> Any:  # noqa: A002 - click's own name for it
    """A boolean --option of a connection command."""
    return click.option(option, is_flag=True, help=help)
