"""`russet vpp …` (Apps and Books locations, assets, people, licences, events) and
`russet app …` (installing licensed apps on devices).

All logic is in `russet.vpp.service`, shared with the REST API; this module only parses options
and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from russet.cli import connection
from russet.cli.common import handles_errors, json_option, open_russet, run_async
from russet.cli.output import fields, json_or, table
from russet.vpp.errors import TakeoverNeeded

PRICING = click.Choice(["STDQ", "PLUS"])
TAKE_OVER = "Take the location over from another MDM without asking."


@click.group("vpp")
def vpp() -> None:
    """Apps and Books: locations, assets, people, licences and Apple's events."""


@connection.command(
    vpp, "add", connection.token_file("FILE.vpptoken"), connection.flag("--take-over", TAKE_OVER)
)
def add(name: str, token_file: Path, take_over: bool, as_json: bool) -> None:
    """Load a location's content token and make Russet the location's MDM."""
    russet = open_russet()
    data = token_file.read_bytes()
    try:
        result = run_async(russet, russet.vpp.add(name, data, take_over=take_over))
    except TakeoverNeeded as exc:
        click.echo(f"warning: {exc}", err=True)
        if not click.confirm(f"Take location {name!r} over from {exc.owner.get('name')!r}?", err=True):
            raise click.ClickException(
                "nothing was changed; the other MDM still manages the location"
            ) from None
        result = run_async(russet, russet.vpp.add(name, data, take_over=True))
    if json_or(result, as_json):
        return
    click.echo(
        f"Apps and Books location {name!r} ({result['org_name']}, {result['location_name']}) is managed by "
        f"Russet; its token expires {result['token_expires_at']}"
    )
    if result["took_over_from"]:
        click.echo(f"took it over from {result['took_over_from'].get('name')!r}")
    click.echo(f"notifications: {result['notification_url'] or result['notifications']}")
    if result["sync"]:
        click.echo(f"{result['sync']['assets']} assets read")
    if result["sync_error"]:
        click.echo(f"warning: reading the assets failed: {result['sync_error']}", err=True)
    connection.warn(result)


list_ = connection.list_command(
    vpp,
    lambda russet: russet.vpp.list_locations(),
    "Locations: token expiry, assets, people, licences, pending events.",
    "name=NAME, status=STATUS, org_name=ORGANISATION, location_name=LOCATION, assets=ASSETS, "
    "users=PEOPLE, licences=LICENCES, pending_events=PENDING, token_expires_at=TOKEN EXPIRES, "
    "last_sync_at=LAST SYNC",
    "no Apps and Books locations; add one with `russet vpp add NAME FILE.vpptoken`",
)


@connection.show_command(vpp, lambda russet, name: russet.vpp.show(name))
def show(data: dict[str, Any]) -> None:
    """One location: token, notifications, Apple's limits, counts."""
    fields(data, [k for k in data if k not in ("limits", "warning")])
    connection.warn(data)


@connection.command(vpp, "sync")
def sync(name: str, as_json: bool) -> None:
    """Read the location's assets (apps, books, licence counts) from Apple now."""
    report = connection.run(lambda russet: russet.vpp.sync_now(name))
    if json_or(report, as_json):
        return
    click.echo(
        f"assets of {name!r}: {report['assets']} in {report['pages']} pages ({report['added']} new, "
        f"{report['removed']} gone) in {report['seconds']} s"
    )
    connection.warn(report)


@connection.table_command(
    vpp,
    "assets",
    rows="assets",
    spec="adam_id=ADAMID, pricing_param=PRICING, product_type=TYPE, total_count=TOTAL, "
    "assigned_count=ASSIGNED, available_count=AVAILABLE, reserved=BEING ASSIGNED, "
    "devices=TO DEVICES, revocable=REVOCABLE",
    empty="no assets in {name!r} (run `russet vpp sync {name}`)",
    shape=lambda a: {
        **a,
        "devices": "yes" if a["device_assignable"] else "no",
        "revocable": "yes" if a["revocable"] else "no",
    },
)
def assets(name: str) -> dict[str, Any]:
    """Apps and books of the location with their licence counts."""
    return open_russet().vpp.assets(name)


# -- people ------------------------------------------------------------------------------------------


@connection.command(vpp, "users")
def users(name: str, as_json: bool) -> None:
    """People registered for user-based licences."""
    data = open_russet().vpp.list_users(name)
    if json_or(data, as_json):
        return
    rows = [{**u, "pending": u["pending"]["action"] if u["pending"] else None} for u in data["users"]]
    table(
        rows,
        [
            ("client_user_id", "CLIENT USER ID"),
            ("status", "STATUS"),
            ("email", "EMAIL"),
            ("managed_apple_id", "MANAGED APPLE ID"),
            ("pending", "WAITING"),
            ("invite_code", "INVITE CODE"),
            ("error", "LAST ERROR"),
        ],
        f"no people registered in {name!r}",
    )


@vpp.group("user")
def user() -> None:
    """Register, update and retire people."""


def _user_result(data: dict[str, Any], verb: str, as_json: bool) -> None:
    if json_or(data, as_json):
        return
    click.echo(f"{verb} {data['client_user_id']}: Apple answers asynchronously (event {data['event_id']})")


@connection.command(user, "add", click.option("--email"), click.option("--managed-apple-id"))
def user_add(name: str, email: str | None, managed_apple_id: str | None, as_json: bool) -> None:
    """Register a person; Russet generates the client user id."""
    data = connection.run(
        lambda russet: russet.vpp.create_user(name, email=email, managed_apple_id=managed_apple_id)
    )
    _user_result(data, "registering", as_json)


@connection.command(
    user,
    "update",
    click.argument("client_user_id"),
    click.option("--email"),
    click.option("--managed-apple-id"),
)
def user_update(
    name: str, client_user_id: str, email: str | None, managed_apple_id: str | None, as_json: bool
) -> None:
    """Change a person's email or Managed Apple ID."""
    data = connection.run(
        lambda russet: russet.vpp.update_user(
            name, client_user_id, email=email, managed_apple_id=managed_apple_id
        ),
    )
    _user_result(data, "updating", as_json)


@connection.command(user, "retire", click.argument("client_user_id"))
def user_retire(name: str, client_user_id: str, as_json: bool) -> None:
    """Retire a person; their revocable licences go back to the location."""
    data = connection.run(lambda russet: russet.vpp.retire_user(name, client_user_id))
    _user_result(data, "retiring", as_json)
    if not as_json:
        click.echo(f"{data['licences_released']} licences are released with it")


@connection.command(user, "sync-people")
def user_sync_people(name: str, as_json: bool) -> None:
    """Register the people who signed in before enrollment (ADE sign-in, account-driven) who are
    not users of the location yet (by email)."""
    data = connection.run(lambda russet: russet.vpp.sync_people(name))
    if json_or(data, as_json):
        return
    for made in data["created"]:
        click.echo(f"registering {made['email']} as {made['client_user_id']} (event {made['event_id']})")
    for skipped in data["skipped"]:
        click.echo(f"skipped {skipped['email']}: {skipped['reason']}")
    for failed in data["failed"]:
        click.echo(f"failed {failed['email']}: {failed['reason']}")
    click.echo(
        f"{len(data['created'])} registered, {len(data['skipped'])} skipped, {len(data['failed'])} failed"
        + (f", {data['remaining']} left for another run" if data["remaining"] else "")
    )


# -- licences and events ------------------------------------------------------------------------------


@connection.table_command(
    vpp,
    "licences",
    click.option("--adam-id"),
    click.option("--subject", help="A serial number or client user id."),
    rows="licences",
    spec="adam_id=ADAMID, subject_type=KIND, subject=SERIAL / USER, status=STATUS, event_id=EVENT, "
    "error_message=LAST ERROR, reason=WHY",
    empty="no licences in {name!r}",
)
def licences(name: str, adam_id: str | None, subject: str | None) -> dict[str, Any]:
    """Licences held by devices and people, with their state."""
    return open_russet().vpp.list_licences(name, adam_id=adam_id, subject=subject)


def _subjects(from_file: Any) -> list[str]:
    if from_file is None:
        return []
    return [line.strip() for line in from_file if line.strip() and not line.startswith("#")]


def _licence_result(data: dict[str, Any], as_json: bool) -> None:
    if json_or(data, as_json):
        return
    for event in data["events"]:
        click.echo(
            f"event {event['event_id']}: {event['count']} {event['kind']}s; Apple answers asynchronously"
        )
    if not data["events"]:
        click.echo("nothing to send")
    for key in ("skipped", "not_assigned"):
        if data.get(key):
            shown = data[key] if isinstance(data[key], list) else [f"{k} ({v})" for k, v in data[key].items()]
            click.echo(f"{key.replace('_', ' ')}: {', '.join(shown)}")
    if data["error"]:
        click.echo(f"stopped: {data['error']}", err=True)


def _licence_options(func: Any) -> Any:
    for option in reversed(
        [
            click.argument("name"),
            click.argument("adam_id"),
            click.option("--serial", "serials", multiple=True, help="A device's serial number (repeat)."),
            click.option("--user", "users", multiple=True, help="A client user id (repeat)."),
            click.option("--from", "from_file", type=click.File("r"), help="Serial numbers, one per line."),
            click.option("--pricing", type=PRICING, help="Licence quality, when both exist."),
            json_option,
            handles_errors,
        ]
    ):
        func = option(func)
    return func


def _licence_command(change: str, doc: str) -> Any:
    """`russet vpp assign` and `unassign`: the same options, a different call of the service."""

    def command(
        name: str,
        adam_id: str,
        serials: tuple[str, ...],
        users: tuple[str, ...],
        from_file: Any,
        pricing: str | None,
        as_json: bool,
    ) -> None:
        subjects = [*serials, *_subjects(from_file)]
        data = connection.run(
            lambda russet: getattr(russet.vpp, change)(
                name, adam_id, serials=subjects, users=list(users), pricing=pricing
            )
        )
        _licence_result(data, as_json)

    command.__doc__ = doc
    return vpp.command(change)(_licence_options(command))


assign = _licence_command(
    "assign", "Assign an asset's licences to devices and people (all or none are reserved)."
)
unassign = _licence_command("unassign", "Take an asset's licences back from devices and people.")


@connection.command(
    vpp,
    "events",
    click.option("--pending", is_flag=True, help="Only events Apple has not finished."),
    click.option("--poll", is_flag=True, help="Ask Apple about pending events first."),
)
def events(name: str, pending: bool, poll: bool, as_json: bool) -> None:
    """Apple's asynchronous events (licences, people) and how they ended."""
    if poll:
        connection.run(lambda russet: russet.vpp.poll_now(name))
    data = open_russet().vpp.list_events(name, pending_only=pending)
    if json_or(data, as_json):
        return
    rows = [
        {**e, "failed": "; ".join(f"{f.get('errorNumber')} {f.get('errorMessage')}" for f in e["failures"])}
        for e in data["events"]
    ]
    table(
        rows,
        [
            ("event_id", "EVENT"),
            ("event_type", "TYPE"),
            ("status", "STATUS"),
            ("num_requested", "ITEMS"),
            ("completed_by", "ANSWERED BY"),
            ("reason", "WHY"),
            ("failed", "FAILURES"),
        ],
        f"no events in {name!r}",
    )


# -- app installs -------------------------------------------------------------------------------------


@click.group("app")
def app() -> None:
    """The app catalogue, and one-off installs with Apps and Books licences."""


@connection.command(
    app,
    "install",
    click.argument("device"),
    click.argument("adam_id"),
    click.option("--location", help="The Apps and Books location, if several hold the app."),
    click.option("--pricing", type=PRICING),
    click.option(
        "--keep-on-unenroll", is_flag=True, help="Leave the app on the device when it leaves management."
    ),
    named=False,
)
def install(
    device: str,
    adam_id: str,
    location: str | None,
    pricing: str | None,
    keep_on_unenroll: bool,
    as_json: bool,
) -> None:
    """License an app to a device (by serial number) if needed, then install it."""
    data = connection.run(
        lambda russet: russet.vpp.installs.install(
            device,
            adam_id,
            location=location,
            pricing=pricing,
            management_flags=None if keep_on_unenroll else 1,
            created_by="cli",
        ),
    )
    if json_or(data, as_json):
        return
    click.echo(f"install {data['id']} of app {data['adam_id']} on {data['enrollment_id']}: {data['status']}")
    if data.get("note"):
        click.echo(data["note"])


@connection.table_command(
    app,
    "installs",
    click.argument("device", required=False),
    click.option("--status", type=click.Choice(["licensing", "queued", "installing", "installed", "failed"])),
    rows="installs",
    spec="id=ID, enrollment_id=DEVICE, adam_id=ADAMID, status=STATUS, state=DEVICE STATE, "
    "bundle_id=BUNDLE, reason=REASON, updated_at=UPDATED",
    empty="no app installs",
    named=False,
)
def installs(device: str | None, status: str | None) -> dict[str, Any]:
    """App installs and their state."""
    return open_russet().vpp.list_installs(device=device, status=status)
