"""`russet abm …`: Apple Business / School Manager connections, device sync and ADE profiles.

All logic is in `russet.abm.service`, shared with the REST API; this module only parses options
and prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from russet.cli import connection
from russet.cli.common import handles_errors, open_russet
from russet.cli.output import emit_json, fields, json_or, table

OFFLINE = "Store the token without asking Apple for the account."


@click.group("abm")
def abm() -> None:
    """Apple Business / School Manager: connections, device sync, enrollment profiles."""


@abm.command("create")
@click.argument("name")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the public certificate to upload in ABM/ASM.",
)
@handles_errors
def create(name: str, out: Path) -> None:
    """Make the key pair of a new connection and write the certificate to upload in ABM/ASM."""
    result = open_russet().abm.create(name)
    out.write_text(result["certificate_pem"])
    click.echo(f"wrote the certificate of ABM connection {name!r} to {out}")
    click.echo(result["next"])


@connection.command(abm, "token", connection.token_file("FILE.p7m"), connection.flag("--offline", OFFLINE))
def token(name: str, token_file: Path, offline: bool, as_json: bool) -> None:
    """Load the server token downloaded from ABM/ASM (decrypted with the connection's key)."""
    result = connection.run(
        lambda russet: russet.abm.load_token(name, token_file.read_bytes(), fetch_account=not offline)
    )
    if json_or(result, as_json):
        return
    click.echo(
        f"stored the server token of ABM connection {name!r}; it expires {result['access_token_expiry']}"
    )
    connection.warn(result)
    if result["account"]:
        account = result["account"]
        click.echo(f"MDM server {account['server_name']!r} of {account['org_name']} ({account['org_type']})")
    if result["account_error"]:
        click.echo(
            f"warning: the token is stored, but reading the account failed: {result['account_error']}",
            err=True,
        )


list_ = connection.list_command(
    abm,
    lambda russet: russet.abm.list_connections(),
    "ABM/ASM connections: state, token expiry, devices, last sync.",
    "name=NAME, status=STATUS, server_name=ABM SERVER, org_name=ORGANISATION, devices=DEVICES, "
    "access_token_expiry=TOKEN EXPIRES, last_sync_at=LAST SYNC, last_error=LAST ERROR",
    "no ABM connections; create one with `russet abm create NAME --out CERT.pem`",
)


@connection.show_command(abm, lambda russet, name: russet.abm.show(name))
def show(data: dict[str, Any]) -> None:
    """One connection: the account Apple reports, the token, the sync state, the certificate."""
    fields(
        data,
        [
            "name",
            "status",
            "busy_with",
            "access_token_expiry",
            "token_stored_at",
            "default_profile_uuid",
            "devices",
        ],
    )
    connection.warn(data)
    if data["account"]:
        click.echo("\naccount (GET /account):")
        account = data["account"]
        fields(account, [k for k in account if k != "urls"])
    if data["sync"]:
        click.echo("\nsync:")
        fields(data["sync"], list(data["sync"]))
    if data["profile_statuses"]:
        click.echo(
            "\nprofile status of devices: "
            + ", ".join(f"{k} {v}" for k, v in data["profile_statuses"].items())
        )
    click.echo("\ncertificate to upload in ABM/ASM:\n" + data["certificate_pem"])


@connection.command(abm, "account")
def account(name: str, as_json: bool) -> None:
    """Read the account from Apple again (GET /account) and store it."""
    data = connection.run(lambda russet: russet.abm.refresh_account(name))
    if as_json:
        emit_json(data)
    else:
        fields(data, [k for k in data if k != "urls"])


@connection.command(
    abm,
    "sync",
    click.option("--full", is_flag=True, help="List every device again instead of fetching changes."),
)
def sync(name: str, full: bool, as_json: bool) -> None:
    """Sync the devices assigned to this MDM server now (the server also does it on a schedule)."""
    report = connection.run(lambda russet: russet.abm.sync_now(name, full=full, progress=_progress_printer()))
    if json_or(report, as_json):
        return
    click.echo(
        f"{report['mode']} sync of {name!r}: {report['pages']} pages, {report['devices']} devices "
        f"({report['added']} added, {report['modified']} modified, {report['deleted']} deleted) "
        f"in {report['seconds']} s"
    )
    if report["restarted_because"]:
        click.echo(f"Apple answered {report['restarted_because']}: the full device list was fetched again")
    if report["default_profile"]:
        click.echo("default profile: " + ", ".join(f"{k} {v}" for k, v in report["default_profile"].items()))
    if report["ignored_fields"]:
        click.echo(f"Apple sent fields Russet does not keep: {', '.join(report['ignored_fields'])}", err=True)
    connection.warn(report)


@connection.command(
    abm,
    "devices",
    click.option("--search", help="Filter by serial number, model, description or asset tag."),
    click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000)),
    click.option("--after", help="Continue after this serial number (from the previous page)."),
)
def devices(name: str, search: str | None, limit: int, after: str | None, as_json: bool) -> None:
    """Devices ABM/ASM assigns to this MDM server, with their enrollment in Russet."""
    data = open_russet().abm.devices(name, limit=limit, after=after, search=search)
    if json_or(data, as_json):
        return
    rows = [_device_row(d) for d in data["devices"]]
    table(
        rows,
        [
            ("serial_number", "SERIAL"),
            ("model", "MODEL"),
            ("os", "OS"),
            ("profile_status", "PROFILE"),
            ("profile_uuid", "PROFILE UUID"),
            ("result", "LAST RESULT"),
            ("enrolled", "ENROLLED"),
            ("asset_tag", "ASSET TAG"),
        ],
        f"no devices in ABM connection {name!r} (run `russet abm sync {name}`)",
    )
    if data["next"]:
        click.echo(f"more: --after {data['next']}", err=True)


def _device_row(device: dict[str, Any]) -> dict[str, Any]:
    enrollment = device["enrollment"]
    result = device["last_profile_result"]
    return {
        **device,
        "enrolled": ("yes " if enrollment["enrolled"] else "no ") + enrollment["id"]
        if enrollment
        else "never",
        "result": f"{result['action']} {result['status']}" if result else None,
    }


@connection.command(abm, "device", click.argument("serial"))
def device(name: str, serial: str, as_json: bool) -> None:
    """One device as ABM/ASM reports it, with its enrollment in Russet."""
    data = open_russet().abm.device(name, serial)
    if as_json:
        emit_json(data)
    else:
        fields(
            _device_row(data),
            [k for k in data if k not in ("enrollment", "last_profile_result")] + ["result", "enrolled"],
        )


# -- profiles -------------------------------------------------------------------------------------


@abm.group("profile")
def profile() -> None:
    """ADE enrollment profiles: define, assign, remove, default."""


@connection.command(
    profile,
    "define",
    click.argument("profile_file", metavar="PROFILE.json", type=click.File("r")),
    click.option(
        "--default", "make_default", is_flag=True, help="Assign it to newly added devices from now on."
    ),
    click.option(
        "--blueprint",
        metavar="BLUEPRINT",
        help="The blueprint (name or id) for the devices this profile enrolls: their items come "
        "first, then DeviceConfigured releases them from Setup Assistant.",
    ),
    click.option(
        "--sign-in",
        "sign_in",
        is_flag=True,
        help="The person signs in during Setup Assistant (single sign-on or a local account) on "
        "Russet's own page (configuration_web_url); the device enrolls as theirs.",
    ),
)
def profile_define(
    name: str, profile_file: Any, make_default: bool, blueprint: str | None, sign_in: bool, as_json: bool
) -> None:
    """Define a profile from a JSON file of Apple's profile fields (url defaults to Russet's)."""
    try:
        spec = json.load(profile_file)
    except ValueError as exc:
        raise click.ClickException(f"{profile_file.name} is not valid JSON: {exc}") from None
    result = connection.run(
        lambda russet: russet.abm.define_profile(
            name, spec, default=make_default, blueprint=blueprint, sign_in=sign_in
        )
    )
    if json_or(result, as_json):
        return
    click.echo(f"defined profile {result['profile_uuid']} ({result['profile']['profile_name']!r})")
    if make_default:
        click.echo("it is now the default profile for newly added devices")
    if sign_in:
        click.echo(f"people sign in at {result['profile']['configuration_web_url']} during Setup Assistant")
    if result["blueprint"]:
        click.echo(f"devices it enrolls get blueprint {result['blueprint']['name']!r}")


@profile.command("blueprint")
@click.argument("name")
@click.argument("profile_uuid")
@click.argument("blueprint", required=False)
@click.option("--clear", is_flag=True, help="No blueprint for the devices this profile enrolls.")
@handles_errors
def profile_blueprint(name: str, profile_uuid: str, blueprint: str | None, clear: bool) -> None:
    """Name the blueprint (name or id) that applies to the devices a profile enrolls."""
    if clear == (blueprint is not None):
        raise click.ClickException("give a BLUEPRINT or --clear")
    result = open_russet().abm.set_profile_blueprint(name, profile_uuid, blueprint)
    shown = result["blueprint"]["name"] if result["blueprint"] else "none"
    click.echo(f"blueprint of profile {profile_uuid}: {shown}")


@connection.table_command(
    profile,
    "list",
    rows="profiles",
    spec="profile_uuid=UUID, name=NAME, url=URL, default=DEFAULT, blueprint=BLUEPRINT, created_at=CREATED",
    empty="no profiles defined through {name!r}",
    shape=lambda p: {
        **p,
        "name": p["profile_name"],
        "url": p["profile"]["url"],
        "default": "yes" if p["default"] else "",
        "blueprint": _blueprint_name(p["blueprint"]),
    },
)
def profile_list(name: str) -> dict[str, Any]:
    """Profiles defined through this connection."""
    return open_russet().abm.list_profiles(name)


def _blueprint_name(blueprint: dict[str, Any] | None) -> str:
    if blueprint is None:
        return ""
    return blueprint["name"] or f"#{blueprint['id']} (deleted)"


def _serials(serials: tuple[str, ...], from_file: Any) -> list[str]:
    found = list(serials)
    if from_file is not None:
        found += [line.strip() for line in from_file if line.strip() and not line.startswith("#")]
    if not found:
        raise click.ClickException("name serial numbers, or --from a file with one per line")
    return found


def _results(result: dict[str, Any], as_json: bool) -> None:
    if json_or(result, as_json):
        return
    table(
        [{"serial": s, "status": st} for s, st in result["results"].items()],
        [("serial", "SERIAL"), ("status", "RESULT")],
        "no devices",
    )
    click.echo(", ".join(f"{k} {v}" for k, v in result["counts"].items()))
    if result["retry_after_seconds"]:
        click.echo(f"Apple asks to retry THROTTLED devices after {result['retry_after_seconds']} s", err=True)
    if result["error"]:
        click.echo(f"stopped: {result['error']}", err=True)


@connection.command(
    profile,
    "assign",
    click.argument("profile_uuid"),
    click.argument("serials", nargs=-1),
    click.option("--from", "from_file", type=click.File("r"), help="A file with one serial number per line."),
)
def profile_assign(
    name: str, profile_uuid: str, serials: tuple[str, ...], from_file: Any, as_json: bool
) -> None:
    """Assign a profile to devices (in batches of 1000); shows Apple's result per device."""
    cleaned = _serials(serials, from_file)
    _results(connection.run(lambda russet: russet.abm.assign_profile(name, profile_uuid, cleaned)), as_json)


@connection.command(
    profile,
    "remove",
    click.argument("serials", nargs=-1),
    click.option("--from", "from_file", type=click.File("r"), help="A file with one serial number per line."),
)
def profile_remove(name: str, serials: tuple[str, ...], from_file: Any, as_json: bool) -> None:
    """Remove the profile assignment from devices; shows Apple's result per device."""
    cleaned = _serials(serials, from_file)
    _results(connection.run(lambda russet: russet.abm.remove_profile(name, cleaned)), as_json)


@profile.command("default")
@click.argument("name")
@click.argument("profile_uuid", required=False)
@click.option("--clear", is_flag=True, help="No default profile: new devices are left unassigned.")
@handles_errors
def profile_default(name: str, profile_uuid: str | None, clear: bool) -> None:
    """Set the profile given automatically to newly added devices."""
    if clear == (profile_uuid is not None):
        raise click.ClickException("give a PROFILE_UUID or --clear")
    open_russet().abm.set_default_profile(name, None if clear else profile_uuid)
    click.echo(f"default profile of {name!r}: {profile_uuid or 'none'}")


def _progress_printer(every_seconds: float = 2.0) -> Callable[[dict[str, Any]], None]:
    """Prints a long sync's progress on stderr (stdout stays the result, for scripts), at most
    every couple of seconds: a 100,000-device listing is a few hundred pages."""
    last = time.monotonic()

    def show(so_far: dict[str, Any]) -> None:
        nonlocal last
        if time.monotonic() - last >= every_seconds:
            last = time.monotonic()
            click.echo(
                f"  {so_far['mode']} sync: {so_far['pages']} pages, {so_far['devices']} devices so far",
                err=True,
            )

    return show
