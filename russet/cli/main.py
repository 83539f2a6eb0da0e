"""`russet`: run the server and administer it (devices, commands, API keys, enrollment).

Administration commands work on the database directly (through the services `russet.runtime`
builds, as the API does), so they need no running server; errors are one line naming the problem.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from russet import __version__
from russet.cli import supervisor
from russet.cli.abm import abm
from russet.cli.access import audit, role_choice, user
from russet.cli.actions import COMMANDS as ACTION_COMMANDS
from russet.cli.apns import apns
from russet.cli.apps import COMMANDS as APP_COMMANDS
from russet.cli.blueprints import blueprint, reconcile, setup_lines
from russet.cli.common import AuditedGroup, handles_errors, json_option, open_russet
from russet.cli.declarations import declaration
from russet.cli.devices import COMMANDS as DEVICE_COMMANDS
from russet.cli.enrollment import minimum_os as enrollment_minimum_os
from russet.cli.enrollment import requests as enrollment_requests
from russet.cli.enrollment import token as enrollment_token
from russet.cli.enrollment_domains import domain as enrollment_domain
from russet.cli.escrow import clear_passcode, secret
from russet.cli.groups import group
from russet.cli.ledger import connections, disconnect, ledger
from russet.cli.listen import listen, reachable
from russet.cli.output import emit_json, fields, table
from russet.cli.profiles import profile
from russet.cli.push import push
from russet.cli.setup import migrate, secrets
from russet.cli.tasks import tasks
from russet.cli.vpp import app, vpp
from russet.cli.webhooks import webhook
from russet.commands import COMMANDS


@click.group(cls=AuditedGroup)
@click.version_option(__version__, prog_name="russet")
def cli() -> None:
    """Russet, a self-hosted Apple MDM server."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@handles_errors
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the MDM server and the admin API."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The socket first: a port in use is one line before anything else happens, and the banner
    # below names the address actually bound (--port 0 picks a free one).
    sock = listen(host, port)
    port = sock.getsockname()[1]
    if not os.environ.get("RUSSET_PUBLIC_URL"):
        # Unset, the public URL follows --host/--port (workers read it from the environment too).
        os.environ["RUSSET_PUBLIC_URL"] = f"http://{reachable(host)}:{port}"
    # Migrations and the CA are set up here, under the first-start lock, before any worker starts.
    russet = open_russet(migrate=True)
    settings = russet.settings
    click.echo(
        f"Russet {__version__}: data in {settings.data_dir}, database {_safe_url(settings.database_url)}"
    )
    if russet.migration is not None and russet.migration.applied:
        click.echo(
            f"Database migrated to {russet.migration.after}: applied {', '.join(russet.migration.applied)}"
        )
    click.echo(f"Listening on http://{reachable(host)}:{port} ({workers} worker{'s' if workers > 1 else ''})")
    click.echo(f"Devices reach it at {settings.public_url}/mdm/checkin and /mdm/connect; API at /api/v1")
    click.echo(f"Console at {settings.public_url}/console")
    if workers == 1:
        import uvicorn

        from russet.app import create_app

        config = uvicorn.Config(create_app(russet), log_level=log_level, access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    else:
        # The parent only supervises the workers: it becomes a fresh interpreter holding uvicorn
        # alone (same pid, same socket), not the ~140 MB of the CLI and Russet (russet/cli/supervisor.py).
        russet.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, supervisor.command(sock, workers, log_level))


def _safe_url(url: str) -> str:
    """The database URL without a password, for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


# -- devices ------------------------------------------------------------------------------------


@cli.command("devices")
@click.option("--search", help="Filter by id, serial number or name.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", help="Continue after this device id (from the previous page).")
@json_option
@handles_errors
def devices(search: str | None, limit: int, after: str | None, as_json: bool) -> None:
    """List enrolled devices."""
    page = open_russet().devices.list_devices(limit=limit, after=after, search=search)
    if as_json:
        emit_json(page)
        return
    table(
        page["devices"],
        [
            ("id", "ID"),
            ("serial_number", "SERIAL"),
            ("device_name", "NAME"),
            ("model", "MODEL"),
            ("os_version", "OS"),
            ("enrolled", "ENROLLED"),
            ("last_seen_at", "LAST SEEN"),
        ],
        "no devices",
    )
    if page["next"]:
        click.echo(f"more: --after {page['next']}")


@cli.group("device")
def device() -> None:
    """One device."""


@device.command("show")
@click.argument("device_id")
@json_option
@handles_errors
def device_show(device_id: str, as_json: bool) -> None:
    """Enrollment state, inventory and last seen of a device."""
    russet = open_russet()
    data = russet.devices.show_device(device_id)
    if data["channel"] == "device":  # an ADE device's way out of Setup Assistant (blueprints)
        data["setup"] = russet.blueprints.setup_of(device_id)
    if as_json:
        emit_json(data)
        return
    fields(data, [k for k in data if k not in ("inventory", "user_channels", "setup")])
    if data.get("setup"):
        for line in setup_lines(data["setup"]):
            click.echo(line)
    if data.get("user_channels"):
        click.echo("\nuser channels:")
        table(
            data["user_channels"],
            [("id", "ID"), ("user_short_name", "USER"), ("enrolled", "ENROLLED"), ("last_seen_at", "SEEN")],
            "",
        )
    for section, values in data["inventory"].items():
        click.echo(f"\n{section}:")
        click.echo(json.dumps(values, indent=2))


@device.command("commands")
@click.argument("device_id")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@json_option
@handles_errors
def device_commands(device_id: str, limit: int, as_json: bool) -> None:
    """Commands queued for a device, newest first."""
    data = open_russet().devices.device_commands(device_id, limit)
    if as_json:
        emit_json(data)
        return
    table(
        data["commands"],
        [
            ("command_uuid", "UUID"),
            ("request_type", "COMMAND"),
            ("status", "STATUS"),
            ("status_reason", "REASON"),
            ("created_at", "QUEUED"),
            ("reported_at", "REPORTED"),
        ],
        "no commands",
    )


# -- commands -----------------------------------------------------------------------------------


@cli.group("command")
def command() -> None:
    """Queue MDM commands and read their results."""


@command.command("send")
@click.argument("device_ids", nargs=-1, required=True, metavar="DEVICE...")
@click.option("--type", "request_type", required=True, help="RequestType, e.g. DeviceInformation.")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="A command parameter (repeatable)."
)
@click.option("--raw", "raw_file", type=click.File("rb"), help="A plist file holding the whole Command dict.")
@json_option
@handles_errors
def command_send(
    device_ids: tuple[str, ...], request_type: str, params: tuple[str, ...], raw_file: Any, as_json: bool
) -> None:
    """Queue a command for one or more devices."""
    cmd = _command_from_cli(request_type, params, raw_file)
    result = open_russet().devices.send_command(list(device_ids), cmd, created_by="cli")
    if as_json:
        emit_json(result)
        return
    table(result["commands"], [("device", "DEVICE"), ("command_uuid", "COMMAND UUID")], "nothing queued")


def _command_from_cli(request_type: str, params: tuple[str, ...], raw_file: Any) -> dict[str, Any]:
    if raw_file is not None:
        import plistlib

        try:
            raw = plistlib.load(raw_file)
        except Exception as exc:
            raise click.ClickException(f"--raw: not a property list ({type(exc).__name__})") from None
        if not isinstance(raw, dict):
            raise click.ClickException("--raw: the property list must be a dictionary (the Command dict)")
        return {**raw, "RequestType": request_type}
    pairs: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.ClickException(f"--param {item!r}: expected KEY=VALUE")
        pairs[key] = value
    builder = COMMANDS.get(request_type)
    if builder is None:
        if pairs:
            raise click.ClickException(
                f"{request_type} has no builder in Russet, so --param cannot type its values; "
                "use --raw FILE.plist"
            )
        return {"RequestType": request_type}
    return {"RequestType": request_type, **builder.coerce_cli_params(pairs)}


@command.command("show")
@click.argument("command_uuid")
@click.option(
    "--reveal", is_flag=True, help="Show secrets in the result (an UnlockToken...) instead of redacting them."
)
@json_option
@handles_errors
def command_show(command_uuid: str, reveal: bool, as_json: bool) -> None:
    """A command's status, result and its deliveries to other devices."""
    data = open_russet().devices.show_command(command_uuid, reveal=reveal)
    if as_json:
        emit_json(data)
        return
    fields(data, [k for k in data if k not in ("result", "deliveries")])
    if data["result"] is not None:
        click.echo("\nresult:")
        click.echo(json.dumps(data["result"], indent=2))
    if len(data["deliveries"]) > 1:
        click.echo("\ndeliveries:")
        table(data["deliveries"], [("device", "DEVICE"), ("command_uuid", "UUID"), ("status", "STATUS")], "")


@command.command("types")
@json_option
def command_types(as_json: bool) -> None:
    """Request types Russet builds and validates (others are accepted raw)."""
    if as_json:
        emit_json(sorted(COMMANDS))
        return
    for name in sorted(COMMANDS):
        click.echo(name)


# -- API keys -----------------------------------------------------------------------------------


@cli.group("apikey")
def apikey() -> None:
    """Keys for the admin REST API."""


@apikey.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=role_choice,
    default="admin",
    show_default=True,
    help="admin: everything; operator: devices and commands; auditor: read-only.",
)
@handles_errors
def apikey_create(name: str, role: str) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    key = open_russet().access.create_key(name, role)
    click.echo(key)
    click.echo(f"(API key {name!r}, role {role.lower()}: shown once, keep it safe)", err=True)


@apikey.command("list")
@json_option
@handles_errors
def apikey_list(as_json: bool) -> None:
    """Keys by name (never the keys themselves)."""
    rows = [vars(k) for k in open_russet().access.list_keys()]
    if as_json:
        emit_json(rows)
        return
    table(
        rows,
        [
            ("name", "NAME"),
            ("role", "ROLE"),
            ("prefix", "PREFIX"),
            ("created_at", "CREATED"),
            ("revoked_at", "REVOKED"),
        ],
        "no API keys",
    )


@apikey.command("revoke")
@click.argument("name")
@handles_errors
def apikey_revoke(name: str) -> None:
    """Revoke a key at once."""
    open_russet().access.revoke_key(name)
    click.echo(f"revoked {name}")


# -- enrollment ---------------------------------------------------------------------------------


@cli.group("enrollment")
def enrollment() -> None:
    """Enrollment profiles, and the URLs that hand them out (tokens, ADE requests, domains)."""


@enrollment.command("profile")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--topic", help="APNs topic (defaults to RUSSET_PUSH_TOPIC).")
@click.option("--organization", default="Russet", show_default=True)
@click.option("--unsigned", is_flag=True, help="Write the plain plist instead of the signed profile.")
@click.option(
    "--identity",
    type=click.Choice(["scep", "pkcs12"]),
    default="scep",
    show_default=True,
    help="scep: the device makes its key and fetches its certificate from /scep with a one-time "
    "challenge valid 1 hour; pkcs12: key and certificate are made now and carried in the profile.",
)
@handles_errors
def enrollment_profile(
    out: Path, topic: str | None, organization: str, unsigned: bool, identity: str
) -> None:
    """Write a .mobileconfig that enrolls a device (identity issued by Russet's CA)."""
    russet = open_russet()
    data = russet.enrollment.profile(
        topic=topic,
        organization=organization,
        identity="pkcs12" if identity == "pkcs12" else "scep",
        signed=not unsigned,
    )
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    warning = russet.enrollment.public_url_warning()
    if warning:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {out} ({'unsigned' if unsigned else 'signed'}, server {russet.enrollment.public_url})")


for _device_command in (*DEVICE_COMMANDS, *ACTION_COMMANDS):
    device.add_command(_device_command)
device.add_command(clear_passcode)
enrollment.add_command(enrollment_token)
enrollment.add_command(enrollment_requests)
enrollment.add_command(enrollment_domain)
enrollment.add_command(enrollment_minimum_os)
cli.add_command(declaration)
cli.add_command(ledger)
cli.add_command(connections)
cli.add_command(disconnect)
cli.add_command(apns)
cli.add_command(abm)
cli.add_command(push)
cli.add_command(vpp)
cli.add_command(app)
for _command in APP_COMMANDS:  # the catalogue, next to `russet app install(s)`
    app.add_command(_command)
cli.add_command(profile)
cli.add_command(migrate)
cli.add_command(secrets)
cli.add_command(tasks)
cli.add_command(group)
cli.add_command(blueprint)
cli.add_command(reconcile)
cli.add_command(secret)
cli.add_command(user)
cli.add_command(audit)
cli.add_command(webhook)


def main() -> None:
    os.umask(0o077)  # whatever Russet writes (database, keys, exports) is its owner's only
    try:
        cli(prog_name="russet")
    except KeyboardInterrupt:
        sys.exit(130)
