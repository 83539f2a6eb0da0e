"""`russet tasks`: the server's periodic tasks, their intervals and last runs (all nodes together)."""

from __future__ import annotations

from typing import Any

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, table


def _interval(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _row(task: dict[str, Any]) -> dict[str, Any]:
    if task["scope"] == "each process":
        last = "(each process; not recorded)"
    elif task["last_started"] is None:
        last = "never"
    else:
        last = task["last_started"]
    state = f"running on {task['holder']}" if task["running"] else task["last_holder"]
    return {**task, "every": _interval(task["every_seconds"]), "last": last, "by": state}


@click.command("tasks")
@json_option
@handles_errors
def tasks(as_json: bool) -> None:
    """List the periodic tasks: interval, where they run, last run, holder, last error."""
    data = open_russet().schedule.overview()
    if as_json:
        emit_json(data)
        return
    table(
        [_row(t) for t in data["tasks"]],
        [
            ("name", "TASK"),
            ("every", "EVERY"),
            ("scope", "RUNS"),
            ("last", "LAST STARTED"),
            ("by", "HOLDER"),
            ("runs", "RUNS SO FAR"),
            ("last_error", "LAST ERROR"),
        ],
        "no periodic tasks",
    )
