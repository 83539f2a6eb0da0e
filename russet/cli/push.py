"""`russet push DEVICE...`: wake devices through APNs now; `russet push --status`."""

from __future__ import annotations

import click

from russet.cli.common import handles_errors, json_option, open_russet, run_async
from russet.cli.output import emit_json, fields, table


@click.command("push")
@click.argument("device_ids", nargs=-1, metavar="DEVICE...")
@click.option("--status", "show_status", is_flag=True, help="Show whether pushing runs, and counts.")
@json_option
@handles_errors
def push(device_ids: tuple[str, ...], show_status: bool, as_json: bool) -> None:
    """Push devices through APNs now (each device's outcome is shown and kept)."""
    russet = open_russet()
    if show_status or not device_ids:
        data = russet.push.push_status()
        if as_json:
            emit_json(data)
            return
        fields(data, ["url", "connection", "pushing", "problem", "detail", "requested", "dead_tokens"])
        click.echo(f"outcomes: {data['by_outcome']}")
        cert = data["certificate"]
        if cert.get("warning"):
            click.echo(f"warning: {cert['warning']}", err=True)
        return
    result = run_async(russet, russet.push.push_devices(list(device_ids)))
    if as_json:
        emit_json(result)
        return
    table(
        result["results"],
        [("device", "DEVICE"), ("outcome", "OUTCOME"), ("status", "STATUS"), ("reason", "REASON")],
        "nothing pushed",
    )
