"""Error kinds as CLI outcomes: the one place `russet` turns a `russet.kernel.errors` kind into
an exit code and the one line it prints (`Error: <message>`), never a traceback.

Every kind exits 1 except `Unavailable`, which exits 75 (EX_TEMPFAIL from sysexits.h): the one
outcome a script should retry, later.
"""

from __future__ import annotations

import click

from russet.kernel.errors import (
    Conflict,
    Invalid,
    NotFound,
    Refused,
    RussetError,
    TooLarge,
    Unavailable,
    UpstreamFailed,
    kind_of,
)

EXIT_CODE: dict[type[RussetError], int] = {
    Invalid: 1,
    NotFound: 1,
    Conflict: 1,
    Refused: 1,
    TooLarge: 1,
    UpstreamFailed: 1,
    Unavailable: 75,
}


def exit_code_for(exc: RussetError) -> int:
    """The exit code for an error of this kind."""
    return EXIT_CODE[kind_of(exc)]


def line_for(exc: RussetError) -> str:
    """The message printed after `Error: `: the error's own sentence, on one line, plus when to
    try again for an `Unavailable` that knows."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, Unavailable) and exc.retry_at is not None:
        text += f" (try again after {exc.retry_at.isoformat(timespec='seconds')})"
    return text


class KindFailure(click.ClickException):
    """A ClickException whose exit code is its error kind's (Click's own class fixes it at 1)."""

    def __init__(self, exc: RussetError) -> None:
        super().__init__(line_for(exc))
        self.exit_code = exit_code_for(exc)  # type: ignore[misc]


def as_click(exc: RussetError) -> click.ClickException:
    """The ClickException that prints `Error: <line>` and exits with the kind's code."""
    return KindFailure(exc)
