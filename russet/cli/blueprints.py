"""`russet blueprint …` (definitions, a device's desired vs actual) and `russet reconcile`.

All logic is in `russet.blueprints.service` (`russet.blueprints`), shared with the REST API; this
module parses options and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from russet.blueprints.service import AppRef, BlueprintSpec, ProfileRef
from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import fields, json_or, table
from russet.kernel.errors import Invalid

PROFILE_HELP = "A library profile, REF for its latest version or REF@VERSION to pin one (repeatable)."
CLEARABLE = ("profiles", "device-name", "time-zone", "apps", "declarations", "include", "exclude")


def _ident(ident: str) -> int | str:
    return int(ident) if ident.isdigit() and len(ident) < 19 else ident


def _profile(text: str) -> ProfileRef:
    ref, at, version = text.rpartition("@") if "@" in text else (text, "", "")
    if not at:
        return ProfileRef(text)
    if not version.isdigit() or not ref:
        raise Invalid(f"--profile {text!r}: expected REF or REF@VERSION (a positive number)")
    return ProfileRef(ref, int(version))


APP_HELP = (
    "A catalogue app, REF, or REF=CONFIG.json with its managed app configuration (a JSON "
    "dictionary) (repeatable)."
)


def _app(text: str) -> AppRef:
    ref, eq, path = text.partition("=")
    if not eq:
        return AppRef(text)
    try:
        raw = Path(path).read_bytes()[: 64 * 1024 + 1]
        configuration = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise Invalid(f"--app {text!r}: {path} is not a readable JSON file: {exc}") from None
    if not isinstance(configuration, dict):
        raise Invalid(f"--app {text!r}: the configuration must be a JSON dictionary")
    return AppRef(ref, configuration)


def _definition_options(func: Any) -> Any:
    options = [
        click.option("--description", help="What the blueprint is for."),
        click.option("--profile", "profiles", multiple=True, metavar="REF[@VERSION]", help=PROFILE_HELP),
        click.option("--device-name", help="Device name pattern; may use $SERIAL, $UDID, $MODEL."),
        click.option("--time-zone", help="IANA time zone, e.g. Europe/Paris."),
        click.option("--app", "apps", multiple=True, metavar="REF[=CONFIG.json]", help=APP_HELP),
        click.option(
            "--declaration",
            "declarations",
            multiple=True,
            metavar="IDENTIFIER",
            help="A declaration (`russet declaration list`) its devices get (repeatable).",
        ),
        click.option(
            "--include", multiple=True, type=click.IntRange(1), metavar="GROUP", help="Group id in scope."
        ),
        click.option(
            "--exclude", multiple=True, type=click.IntRange(1), metavar="GROUP", help="Group id left out."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _show(data: dict[str, Any]) -> None:
    fields(data, ["id", "name", "description", "created_by", "created_at", "updated_at"])
    click.echo(
        f"{'scope':<11}  include {data['scope']['include'] or '-'}  exclude {data['scope']['exclude'] or '-'}"
    )
    for key, value in data["settings"].items():
        if value is not None:
            click.echo(f"{key:<11}  {value}")
    if data["apps"]:
        click.echo(f"{'apps':<11}  {', '.join(data['apps'])}")
    if data.get("declarations"):
        click.echo(f"{'declarations':<11}  {', '.join(data['declarations'])}")
    click.echo("")
    table(
        data["profiles"],
        [("ref", "PROFILE"), ("version", "VERSION"), ("payload_identifier", "IDENTIFIER")],
        "no profiles",
    )


@click.group("blueprint")
def blueprint() -> None:
    """Blueprints: desired profiles and settings for the devices of some groups."""


@blueprint.command("list")
@json_option
@handles_errors
def list_blueprints(as_json: bool) -> None:
    """Blueprints with their item counts and scopes."""
    rows = open_russet().blueprints.list_blueprints()
    if json_or(rows, as_json):
        return
    table(
        rows,
        [
            ("id", "ID"),
            ("name", "NAME"),
            ("profiles", "PROFILES"),
            ("settings", "SETTINGS"),
            ("apps", "APPS"),
            ("declarations", "DECLARATIONS"),
            ("include", "INCLUDE"),
            ("exclude", "EXCLUDE"),
            ("updated_at", "UPDATED"),
        ],
        "no blueprints",
    )


@blueprint.command("show")
@click.argument("ident", metavar="ID|NAME")
@json_option
@handles_errors
def show(ident: str, as_json: bool) -> None:
    """One blueprint."""
    data = open_russet().blueprints.get(_ident(ident))
    if not json_or(data, as_json):
        _show(data)


@blueprint.command("create")
@click.argument("name")
@_definition_options
@json_option
@handles_errors
def create(
    name: str,
    description: str | None,
    profiles: tuple[str, ...],
    device_name: str | None,
    time_zone: str | None,
    apps: tuple[str, ...],
    declarations: tuple[str, ...],
    include: tuple[int, ...],
    exclude: tuple[int, ...],
    as_json: bool,
) -> None:
    """Create a blueprint."""
    spec = BlueprintSpec(
        name=name,
        description=description or "",
        profiles=tuple(_profile(p) for p in profiles),
        device_name=device_name,
        time_zone=time_zone,
        apps=tuple(_app(a) for a in apps),
        declarations=declarations,
        include=include,
        exclude=exclude,
    )
    data = open_russet().blueprints.create(spec, created_by="cli")
    if not json_or(data, as_json):
        _show(data)


@blueprint.command("update")
@click.argument("ident", metavar="ID|NAME")
@click.option("--name", "new_name", help="A new name.")
@_definition_options
@click.option("--clear", multiple=True, type=click.Choice(CLEARABLE), help="Empty this part (repeatable).")
@json_option
@handles_errors
def update(
    ident: str,
    new_name: str | None,
    description: str | None,
    profiles: tuple[str, ...],
    device_name: str | None,
    time_zone: str | None,
    apps: tuple[str, ...],
    declarations: tuple[str, ...],
    include: tuple[int, ...],
    exclude: tuple[int, ...],
    clear: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change a blueprint: each part given replaces that part, the others stay."""
    service = open_russet().blueprints
    now = service.get(_ident(ident))
    kept_profiles = tuple(
        ProfileRef(p["ref"], None if p["version"] == "latest" else p["version"]) for p in now["profiles"]
    )

    def pick(part: str, given: Any, current: Any, empty: Any) -> Any:
        return empty if part in clear else (given or current)

    spec = BlueprintSpec(
        name=new_name or now["name"],
        description=now["description"] if description is None else description,
        profiles=pick("profiles", tuple(_profile(p) for p in profiles), kept_profiles, ()),
        device_name=pick("device-name", device_name, now["settings"]["device_name"], None),
        time_zone=pick("time-zone", time_zone, now["settings"]["time_zone"], None),
        apps=pick(
            "apps",
            tuple(_app(a) for a in apps),
            tuple(AppRef(a, now.get("app_configurations", {}).get(a)) for a in now["apps"]),
            (),
        ),
        declarations=pick("declarations", declarations, tuple(now.get("declarations", ())), ()),
        include=pick("include", include, tuple(now["scope"]["include"]), ()),
        exclude=pick("exclude", exclude, tuple(now["scope"]["exclude"]), ()),
    )
    data = service.update(now["id"], spec)
    if not json_or(data, as_json):
        _show(data)


@blueprint.command("delete")
@click.argument("ident", metavar="ID|NAME")
@json_option
@handles_errors
def delete(ident: str, as_json: bool) -> None:
    """Delete a blueprint; the next reconcile removes what it installed, and only that."""
    data = open_russet().blueprints.delete(_ident(ident))
    if not json_or(data, as_json):
        click.echo(f"deleted blueprint {data['name']!r} (id {data['deleted']})")


@blueprint.command("device")
@click.argument("device_id", metavar="DEVICE")
@json_option
@handles_errors
def device(device_id: str, as_json: bool) -> None:
    """A device's desired vs actual state: each item, drift, the commands the next pass queues."""
    data = open_russet().blueprints.device_state(device_id)
    if json_or(data, as_json):
        return
    names = ", ".join(b["name"] or str(b["id"]) for b in data["blueprints"])
    click.echo(f"device {data['device']}: blueprints {names or '-'}")
    rows = [
        {
            **item,
            "blueprints": ", ".join(b["name"] or str(b["id"]) for b in item["blueprints"]),
            "error": _error_line(item.get("error")),
        }
        for item in data["items"]
    ]
    table(
        rows,
        [
            ("item", "ITEM"),
            ("kind", "KIND"),
            ("state", "STATE"),
            ("blueprints", "BLUEPRINT"),
            ("desired", "DESIRED"),
            ("actual", "ACTUAL"),
            ("detail", "DETAIL"),
            ("error", "ERROR"),
        ],
        "no items",
    )
    if data.get("declarations"):
        listed = ", ".join(f"{d['identifier']} ({d['blueprint']})" for d in data["declarations"])
        click.echo(f"\ndeclarations: {listed} (their state: russet declaration device {data['device']})")
    if data["next_pass"]:
        click.echo("\nnext pass:")
        table(data["next_pass"], [("action", "ACTION"), ("item", "ITEM"), ("reason", "REASON")], "")
    if data.get("setup"):
        click.echo("")
        for line in setup_lines(data["setup"]):
            click.echo(line)
    for error in data["errors"]:
        click.echo(f"warning: {error}", err=True)


def setup_lines(setup: dict[str, Any]) -> list[str]:
    """An ADE device's way out of Setup Assistant, in a few lines (`blueprint device`, `device show`)."""
    if setup["state"] == "waiting":
        lines = [
            f"setup assistant: waiting since {setup['awaiting_since']}; DeviceConfigured when its items "
            f"are done, at the latest {setup['release_by']}"
        ]
    else:
        answer = f", answered {setup['answer']}" if setup["answer"] else ""
        lines = [
            f"setup assistant: DeviceConfigured {setup['state'].replace('device_configured_', '')} "
            f"at {setup['device_configured_queued_at']} ({setup['reason']}){answer}"
        ]
    for item in setup["incomplete"]:
        error = _error_line(item.get("error"))
        lines.append(
            f"  not in sync: {item['kind']} {item['item']}: {item['state']}"
            + (f" ({error})" if error else f" ({item['detail']})" if item["detail"] else "")
        )
    return lines


def _error_line(error: Any) -> str | None:
    if not isinstance(error, dict):
        return error
    chain = error.get("error_chain") or []
    parts = [
        f"{e.get('ErrorDomain')} {e.get('ErrorCode')}: "
        f"{e.get('USEnglishDescription') or e.get('LocalizedDescription')}"
        for e in chain
    ]
    if error.get("reason"):
        parts.append(error["reason"])
    return "; ".join(parts) or None


@click.command("reconcile")
@click.option("--device", "devices", multiple=True, metavar="DEVICE", help="Only this device (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would be queued; queue and store nothing.")
@click.option("--retry-failed", is_flag=True, help="Try failed items again.")
@json_option
@handles_errors
def reconcile(devices: tuple[str, ...], dry_run: bool, retry_failed: bool, as_json: bool) -> None:
    """Bring devices to their blueprints' desired state now."""
    data = open_russet().blueprints.reconcile(
        list(devices) or None, dry_run=dry_run, retry_failed=retry_failed, created_by="reconcile:cli"
    )
    if json_or(data, as_json):
        return
    verb = "would queue" if dry_run else "queued"
    commands = ", ".join(f"{n} {a}" for a, n in sorted(data["commands"].items())) or "nothing"
    click.echo(
        f"{data['devices']} devices: {verb} {commands}; {data['deferred']} waiting for a free command slot"
    )
    click.echo("items: " + (", ".join(f"{n} {s}" for s, n in sorted(data["states"].items())) or "none"))
    if data["devices_with_conflicts"]:
        click.echo(f"{data['devices_with_conflicts']} devices with conflicts (see `russet blueprint device`)")
    for entry in data["plan"]:
        for action in entry["actions"]:
            click.echo(
                f"  {entry['device']}: {action['action']} {action.get('item', '')} ({action['reason']})"
            )
    if data["plan_truncated"]:
        click.echo(f"  (first {len(data['plan'])} devices shown; --json for the same list)")
    for error in data["errors"]:
        click.echo(f"warning: {error}", err=True)
