"""`russet device lost-mode | disable-lost-mode | locate | play-sound | erase | lock | users |
log-out-user | delete-user | os-update-scan | os-updates | schedule-os-update | os-update-status`:
the device actions (russet.mdm.actions), one command each, and `russet device answer UUID` /
`russet device answers DEVICE` to read what the device answered.

Erase and delete-user check everything first (input, platform, supervision, the PIN a Mac needs),
then ask for confirmation unless `--yes`: a refusal never waits for a "yes".
"""

from __future__ import annotations

from typing import Any

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, fields, table
from russet.mdm.actions import ACTIONS, choices


def _queue(
    device: str,
    action: str,
    values: dict[str, Any] | None,
    as_json: bool,
    *,
    confirm: bool = False,
    yes: bool = False,
) -> None:
    actions = open_russet().actions
    if confirm:
        checked = actions.run(device, action, values, by="cli", check_only=True)
        if not yes:
            click.confirm(
                f"{ACTIONS[action].request_type} {checked['device']}: this cannot be undone. Go on?",
                abort=True,
            )
    done = actions.run(device, action, values, by="cli")
    if as_json:
        emit_json(done)
        return
    click.echo(f"{done['request_type']} queued for {done['device']}: {done['command_uuid']}")
    click.echo(f"(its answer: russet device answer {done['command_uuid']})", err=True)


def _simple(name: str) -> click.Command:
    """An action without input: `russet device NAME DEVICE`."""

    @click.command(name, help=f"{ACTIONS[name].summary} ({ACTIONS[name].request_type}).")
    @click.argument("device")
    @json_option
    @handles_errors
    def command(device: str, as_json: bool) -> None:
        _queue(device, name, None, as_json)

    return command


@click.command("lost-mode")
@click.argument("device")
@click.option("--message", help="Shown on the Lock screen")
@click.option("--phone", "phone_number", help="Shown on the Lock screen")
@click.option("--footnote", help="Shown at the bottom of the Lock screen")
@json_option
@handles_errors
def lost_mode(
    device: str, message: str | None, phone_number: str | None, footnote: str | None, as_json: bool
) -> None:
    """Put DEVICE (a supervised iPhone or iPad) in Lost Mode (EnableLostMode)."""
    values = {"message": message, "phone_number": phone_number, "footnote": footnote}
    _queue(device, "lost-mode", values, as_json)


def _choice(action: str, name: str) -> click.Choice:
    return click.Choice([str(c) for c in choices(action, name) or ()])


@click.command("erase")
@click.argument("device")
@click.option("--pin", help="6-digit Find My PIN (required for an Intel Mac)")
@click.option("--preserve-data-plan", is_flag=True, default=None, help="iOS: keep the cellular data plan")
@click.option("--disallow-proximity-setup", is_flag=True, default=None, help="iOS: no Quick Start after")
@click.option(
    "--obliteration",
    "obliteration_behavior",
    type=_choice("erase", "obliteration_behavior"),
    help="macOS 12+: when to obliterate",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@json_option
@handles_errors
def erase(
    device: str,
    pin: str | None,
    preserve_data_plan: bool | None,
    disallow_proximity_setup: bool | None,
    obliteration_behavior: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Erase DEVICE (EraseDevice); asks for confirmation unless --yes."""
    values = {
        "pin": pin,
        "preserve_data_plan": preserve_data_plan,
        "disallow_proximity_setup": disallow_proximity_setup,
        "obliteration_behavior": obliteration_behavior,
    }
    _queue(device, "erase", values, as_json, confirm=True, yes=yes)


@click.command("lock")
@click.argument("device")
@click.option("--message", help="Shown on the Lock screen")
@click.option("--phone", "phone_number", help="Shown on the Lock screen")
@click.option("--pin", help="6-digit Find My PIN (required for a Mac)")
@json_option
@handles_errors
def lock(device: str, message: str | None, phone_number: str | None, pin: str | None, as_json: bool) -> None:
    """Lock DEVICE now (DeviceLock)."""
    _queue(device, "lock", {"message": message, "phone_number": phone_number, "pin": pin}, as_json)


@click.command("delete-user")
@click.argument("device")
@click.argument("user_name")
@click.option("--force", "force_deletion", is_flag=True, default=None, help="Even with data not yet synced")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@json_option
@handles_errors
def delete_user(device: str, user_name: str, force_deletion: bool | None, yes: bool, as_json: bool) -> None:
    """Delete USER_NAME from DEVICE (DeleteUser); asks for confirmation unless --yes."""
    values = {"user_name": user_name, "force_deletion": force_deletion}
    _queue(device, "delete-user", values, as_json, confirm=True, yes=yes)


@click.command("os-update-scan")
@click.argument("device")
@click.option("--force", is_flag=True, default=None, help="Scan even when a scan ran recently")
@json_option
@handles_errors
def os_update_scan(device: str, force: bool | None, as_json: bool) -> None:
    """Make DEVICE (a Mac) scan for OS updates (ScheduleOSUpdateScan)."""
    _queue(device, "os-update-scan", {"force": force}, as_json)


@click.command("schedule-os-update")
@click.argument("device")
@click.option("--product-key", help="From `russet device os-updates`")
@click.option("--version", "product_version", help="e.g. 17.5.1, instead of --product-key")
@click.option(
    "--action", "install_action", required=True, type=_choice("schedule-os-update", "install_action")
)
@click.option("--max-user-deferrals", type=click.IntRange(0, 1000), help="macOS, InstallLater only")
@click.option("--priority", type=_choice("schedule-os-update", "priority"), help="macOS 12.3+")
@json_option
@handles_errors
def schedule_os_update(
    device: str,
    product_key: str | None,
    product_version: str | None,
    install_action: str,
    max_user_deferrals: int | None,
    priority: str | None,
    as_json: bool,
) -> None:
    """Download and/or install an OS update on DEVICE (ScheduleOSUpdate)."""
    values = {
        "product_key": product_key,
        "product_version": product_version,
        "install_action": install_action,
        "max_user_deferrals": max_user_deferrals,
        "priority": priority,
    }
    _queue(device, "schedule-os-update", values, as_json)


def _show_answer(shown: dict[str, Any] | None, empty: str) -> None:
    if shown is None:
        click.echo(empty)
    elif "fields" in shown:
        fields(shown["fields"], list(shown["fields"]))
    else:
        table(shown["rows"], [(c, c.upper()) for c in shown["columns"]], "(none)")


@click.command("answer")
@click.argument("command_uuid")
@json_option
@handles_errors
def answer(command_uuid: str, as_json: bool) -> None:
    """What the device answered to an action's command: its location, users, OS updates..."""
    data = open_russet().actions.answer(command_uuid)
    if as_json:
        emit_json(data)
        return
    fields(data, [k for k in data if k != "answer"])
    if data["status"] == "acknowledged":
        click.echo("")
        _show_answer(data["answer"], "(no answer to show)")


@click.command("answers")
@click.argument("device")
@json_option
@handles_errors
def answers(device: str, as_json: bool) -> None:
    """DEVICE's latest location, users, available OS updates and update statuses."""
    data = open_russet().actions.latest(device)
    if as_json:
        emit_json(data)
        return
    for request_type, shown in data.items():
        if request_type == "device":
            continue
        click.echo(f"\n{request_type}:")
        _show_answer(shown, "(not asked yet)")


COMMANDS = (
    lost_mode,
    _simple("disable-lost-mode"),
    _simple("locate"),
    _simple("play-sound"),
    erase,
    lock,
    _simple("users"),
    _simple("log-out-user"),
    delete_user,
    os_update_scan,
    _simple("os-updates"),
    schedule_os_update,
    _simple("os-update-status"),
    answer,
    answers,
)
