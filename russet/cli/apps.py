"""`russet app list|show|add|upload|delete`: the app catalogue (next to `russet app install`, the
Apps and Books one-off installs of `russet/cli/vpp.py`).

All logic is in `russet.apps.service` (`russet.apps`), shared with the REST API; this module only
parses options and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, fields, table

SHOWN = [
    "id",
    "name",
    "kind",
    "bundle_id",
    "version",
    "title",
    "adam_id",
    "location",
    "pricing",
    "hosted",
    "from_manifest",
    "package_size",
    "created_by",
    "created_at",
]


def _show(data: dict[str, Any], as_json: bool) -> None:
    emit_json(data) if as_json else fields(data, [k for k in SHOWN if data.get(k) is not None])


def _ident(ident: str) -> int | str:
    return int(ident) if ident.isdigit() and len(ident) < 19 else ident


@click.command("list")
@json_option
@handles_errors
def list_apps(as_json: bool) -> None:
    """The app catalogue."""
    rows = open_russet().apps.list_apps()
    if as_json:
        emit_json(rows)
        return
    table(
        rows,
        [
            ("id", "ID"),
            ("name", "NAME"),
            ("kind", "KIND"),
            ("bundle_id", "BUNDLE"),
            ("adam_id", "ADAMID"),
            ("version", "VERSION"),
        ],
        "no apps in the catalogue",
    )


@click.command("show")
@click.argument("ident", metavar="ID|NAME")
@json_option
@handles_errors
def show(ident: str, as_json: bool) -> None:
    """One catalogue app."""
    _show(open_russet().apps.get(_ident(ident)), as_json)


@click.command("add")
@click.argument("name")
@click.option("--adam-id", required=True, help="The App Store id (among a connected location's assets).")
@click.option("--bundle-id", required=True, help="The app's bundle id.")
@click.option("--location", help="The Apps and Books location, if several hold the app.")
@click.option("--pricing", type=click.Choice(["STDQ", "PLUS"]))
@click.option("--title", help="A title for people.")
@json_option
@handles_errors
def add(
    name: str,
    adam_id: str,
    bundle_id: str,
    location: str | None,
    pricing: str | None,
    title: str | None,
    as_json: bool,
) -> None:
    """Add an Apps and Books app to the catalogue."""
    data = open_russet().apps.add_vpp(
        name, adam_id, bundle_id, location=location, pricing=pricing, title=title, created_by="cli"
    )
    _show(data, as_json)


@click.command("upload")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bundle-id", help="Needed for a .pkg.")
@click.option("--version", "version", help="Needed for a .pkg.")
@json_option
@handles_errors
def upload(name: str, file: Path, bundle_id: str | None, version: str | None, as_json: bool) -> None:
    """Add an enterprise app: an .ipa or .pkg Russet hosts, or a manifest .plist."""
    apps = open_russet().apps
    if file.name.lower().endswith(".plist"):
        data = apps.add_manifest(name, file.read_bytes()[: 1024 * 1024], created_by="cli")
    else:
        with file.open("rb") as stream:
            data = apps.add_package(
                name, file.name, stream, bundle_id=bundle_id, version=version, created_by="cli"
            )
    _show(data, as_json)


@click.command("delete")
@click.argument("ident", metavar="ID|NAME")
@json_option
@handles_errors
def delete(ident: str, as_json: bool) -> None:
    """Delete a catalogue app (refused while a blueprint names it)."""
    data = open_russet().apps.delete(_ident(ident))
    if as_json:
        emit_json(data)
    else:
        click.echo(f"deleted app {data['name']!r} (id {data['deleted']})")


COMMANDS = (list_apps, show, add, upload, delete)
