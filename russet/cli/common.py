"""What every `russet` subcommand shares: opening Russet, one-line errors, --json."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError

from russet.cli.errors import as_click
from russet.config import Settings
from russet.kernel.errors import RussetError
from russet.runtime import Russet

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def open_russet(*, migrate: bool = False) -> Russet:
    """Open Russet for this command; it is closed (ledger flushed) when the command ends.

    Only `serve` (and `migrate`) set the database up; every other command works on a database
    already set up, and says `run russet migrate first` otherwise.
    """
    russet = Russet.open(Settings.from_env(), migrate_db=migrate)
    click.get_current_context().call_on_close(russet.close)
    return russet


def run_async(russet: Russet, work: Awaitable[T]) -> T:
    """Run a service call that reaches Apple (a coroutine) from a command. The CLI's one way to
    `Russet.run`: a loop of its own, in which the gateway's connections are closed at the end."""
    return russet.run(work)


def handles_errors(func: F) -> F:
    """Turn Russet's own errors into a one-line CLI error (exit code by kind) instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RussetError as exc:  # every domain error, mapped by kind in russet.cli.errors
            raise as_click(exc) from None
        except OperationalError as exc:
            raise click.ClickException(f"cannot use the database: {exc.orig}") from None

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
