"""`russet group …`: static and smart device groups, their members, CSV import, query previews
and scopes. Each command calls `russet.groups` (the same service as the API) and prints a table,
or JSON with `--json`."""

from __future__ import annotations

from pathlib import Path

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import fields, json_or, table
from russet.groups.csvimport import MAX_CSV_BYTES
from russet.groups.service import Scope
from russet.kernel.errors import TooLarge

GROUP_FIELDS = ["id", "name", "kind", "query", "description", "member_count", "evaluated_at", "updated_at"]


@click.group("group")
def group() -> None:
    """Device groups: static (members by UDID or serial) and smart (a query over device facts)."""


@group.command("list")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", help="Continue after this group name (from the previous page).")
@json_option
@handles_errors
def group_list(limit: int, after: str | None, as_json: bool) -> None:
    """Groups by name, with their kind, query and member count."""
    page = open_russet().groups.page(limit=limit, after=after)
    if json_or(page, as_json):
        return
    table(
        page["groups"],
        [("name", "NAME"), ("kind", "KIND"), ("member_count", "MEMBERS"), ("query", "QUERY")],
        "no groups",
    )
    if page["next"]:
        click.echo(f"more: --after {page['next']!r}")


@group.command("create")
@click.argument("name")
@click.option("--query", help="A smart group's query, e.g. 'os_version >= \"17.4\" and supervised = true'.")
@click.option("--description", help="What the group is for.")
@json_option
@handles_errors
def group_create(name: str, query: str | None, description: str | None, as_json: bool) -> None:
    """Create a static group, or with --query a smart group (evaluated at once)."""
    data = open_russet().groups.create(name, query=query, description=description)
    if json_or(data, as_json):
        return
    fields(data, GROUP_FIELDS)


@group.command("show")
@click.argument("name")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", help="Continue after this device id (from the previous page).")
@json_option
@handles_errors
def group_show(name: str, limit: int, after: str | None, as_json: bool) -> None:
    """A group and a page of its members."""
    data = open_russet().groups.show(name, limit=limit, after=after)
    if json_or(data, as_json):
        return
    fields(data, GROUP_FIELDS)
    click.echo("\nmembers:")
    for device_id in data["members"]:
        click.echo(device_id)
    if data["next"]:
        click.echo(f"more: --after {data['next']}")


@group.command("update")
@click.argument("name")
@click.option("--rename", "new_name", help="A new name.")
@click.option("--query", help="A new query (smart groups); re-evaluated at once.")
@click.option("--description", help="A new description.")
@json_option
@handles_errors
def group_update(
    name: str, new_name: str | None, query: str | None, description: str | None, as_json: bool
) -> None:
    """Rename a group, or change its query or description."""
    data = open_russet().groups.update(name, new_name=new_name, query=query, description=description)
    if json_or(data, as_json):
        return
    fields(data, GROUP_FIELDS)


@group.command("delete")
@click.argument("name")
@json_option
@handles_errors
def group_delete(name: str, as_json: bool) -> None:
    """Delete a group (refused while another group's query uses it)."""
    data = open_russet().groups.delete(name)
    if json_or(data, as_json):
        return
    click.echo(f"deleted group {data['deleted']} ({data['members']} members)")


@group.command("add")
@click.argument("name")
@click.argument("devices", nargs=-1, required=True, metavar="DEVICE...")
@json_option
@handles_errors
def group_add(name: str, devices: tuple[str, ...], as_json: bool) -> None:
    """Add devices (UDID or serial number) to a static group; all or none."""
    data = open_russet().groups.add_members(name, list(devices))
    if json_or(data, as_json):
        return
    click.echo(f"{name}: {data['added']} added, {data['members']} members")


@group.command("remove")
@click.argument("name")
@click.argument("devices", nargs=-1, required=True, metavar="DEVICE...")
@json_option
@handles_errors
def group_remove(name: str, devices: tuple[str, ...], as_json: bool) -> None:
    """Remove devices (UDID or serial number) from a static group."""
    data = open_russet().groups.remove_members(name, list(devices))
    if json_or(data, as_json):
        return
    click.echo(f"{name}: {data['removed']} removed, {data['members']} members")


@group.command("import")
@click.argument("name")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Make the members exactly the file's devices.")
@json_option
@handles_errors
def group_import(name: str, csv_file: Path, replace: bool, as_json: bool) -> None:
    """Add a static group's members from a CSV (first column: UDID or serial); any bad line fails it."""
    if csv_file.stat().st_size > MAX_CSV_BYTES:
        raise TooLarge(f"{csv_file}: larger than {MAX_CSV_BYTES // 1024} KiB")
    with csv_file.open("rb") as handle:
        data = handle.read(MAX_CSV_BYTES + 1)  # bounded while reading, whatever stat said
    result = open_russet().groups.import_csv(name, data, replace=replace)
    if json_or(result, as_json):
        return
    click.echo(
        f"{name}: {result['rows']} rows, {result['added']} added, {result['removed']} removed, "
        f"{result['members']} members"
    )


@group.command("preview")
@click.argument("query")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(0, 1000))
@json_option
@handles_errors
def group_preview(query: str, limit: int, as_json: bool) -> None:
    """The devices a smart query picks now, without saving anything."""
    data = open_russet().groups.preview(query, limit=limit)
    if json_or(data, as_json):
        return
    click.echo(f"{data['count']} devices")
    for device_id in data["devices"]:
        click.echo(device_id)


@group.command("scope")
@click.option("--include", "include", multiple=True, required=True, help="A group name (repeatable).")
@click.option("--exclude", "exclude", multiple=True, help="A group name (repeatable).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", help="Continue after this device id.")
@json_option
@handles_errors
def group_scope(
    include: tuple[str, ...], exclude: tuple[str, ...], limit: int, after: str | None, as_json: bool
) -> None:
    """The devices in any --include group and in no --exclude group."""
    devices = open_russet().groups.scope_devices(Scope(include, exclude), limit=limit, after=after)
    page = {"devices": devices, "next": devices[-1] if len(devices) == limit else None}
    if json_or(page, as_json):
        return
    for device_id in devices:
        click.echo(device_id)
    if page["next"]:
        click.echo(f"more: --after {page['next']}")
