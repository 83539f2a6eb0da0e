"""Device actions (issue #15 item 7): the commands admins reach for when a device is lost, must
be wiped or locked, has Shared iPad users to manage, or needs an OS update, as one use case each.

Each `Action` names the RequestType whose builder (generated from Apple's schema,
russet.commands.generated, with the hand-written extras of russet.commands.device...) checks it,
and how its typed input maps onto that builder's keys; the keys are checked against the builder
when this module is imported, so a mapping cannot name a key Apple's schema does not have.
`DeviceActions.run` validates the whole command and the target's platform, supervision and channel
(`DeviceService.check_command`: the refusals of russet.commands.check_target, with their reason)
before anything is queued; `check_only` stops there, for surfaces that confirm first (erase).
Secrets (a PIN) are sealed in the stored body by the queue, as the builder's `secret_keys` say.

`answer` turns a device's answer to one of these commands into something to show: the location
as fields, Shared iPad users, available OS updates, update statuses and results as rows.
The latest answers are kept in the device's inventory (russet.commands.inventory) too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from russet import schemas
from russet.commands import COMMANDS, Param
from russet.commands.inventory import NOT_LOCATION
from russet.commands.support import platform_of
from russet.kernel.errors import Invalid, NotFound
from russet.mdm.devices import DeviceService

PIN = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class Action:
    """One device action: `fields` maps its typed input's names to the command's keys; with `item`
    set, they are the keys of the one element of that array key (ScheduleOSUpdate's Updates)."""

    name: str
    request_type: str
    summary: str
    fields: Mapping[str, str] = field(default_factory=dict)
    item: str | None = None
    destructive: bool = False

    def params(self) -> Mapping[str, Param]:
        """The builder's keys the fields map onto."""
        params = COMMANDS[self.request_type].params
        if self.item is None:
            return params
        element = params[self.item].item
        assert element is not None and element.subkeys is not None, self.item
        return element.subkeys


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action(
            "lost-mode",
            "EnableLostMode",
            "Put a supervised iPhone or iPad in Lost Mode, with a message, phone number and footnote",
            {"message": "Message", "phone_number": "PhoneNumber", "footnote": "Footnote"},
        ),
        Action("disable-lost-mode", "DisableLostMode", "Take the device out of Lost Mode"),
        Action("locate", "DeviceLocation", "Ask a device in Lost Mode where it is"),
        Action("play-sound", "PlayLostModeSound", "Make a device in Lost Mode play a sound"),
        Action(
            "erase",
            "EraseDevice",
            "Erase the device (an Intel Mac needs a 6-digit Find My PIN)",
            {
                "pin": "PIN",
                "preserve_data_plan": "PreserveDataPlan",
                "disallow_proximity_setup": "DisallowProximitySetup",
                "obliteration_behavior": "ObliterationBehavior",
            },
            destructive=True,
        ),
        Action(
            "lock",
            "DeviceLock",
            "Lock the device now, with a message and phone number (a Mac needs a 6-digit PIN)",
            {"message": "Message", "phone_number": "PhoneNumber", "pin": "PIN"},
        ),
        Action("users", "UserList", "List the users with an account on the device (Shared iPad, Mac)"),
        Action("log-out-user", "LogOutUser", "Log the current user out of a Shared iPad"),
        Action(
            "delete-user",
            "DeleteUser",
            "Delete a user from a Shared iPad (or a Mac)",
            {"user_name": "UserName", "force_deletion": "ForceDeletion"},
            destructive=True,
        ),
        Action(
            "os-update-scan",
            "ScheduleOSUpdateScan",
            "Make a Mac scan for OS updates now",
            {"force": "Force"},
        ),
        Action("os-updates", "AvailableOSUpdates", "Ask the device which OS updates it can install"),
        Action(
            "schedule-os-update",
            "ScheduleOSUpdate",
            "Download and/or install an OS update, by ProductKey or ProductVersion",
            {
                "product_key": "ProductKey",
                "product_version": "ProductVersion",
                "install_action": "InstallAction",
                "max_user_deferrals": "MaxUserDeferrals",
                "priority": "Priority",
            },
            item="Updates",
        ),
        Action("os-update-status", "OSUpdateStatus", "Ask the device how its OS updates are doing"),
    )
}

for _action in ACTIONS.values():  # a mapping naming a key the schema lacks fails at import
    _missing = set(_action.fields.values()) - set(_action.params())
    if _missing:
        raise TypeError(f"action {_action.name}: {_action.request_type} has no key {sorted(_missing)}")

#: Where each answer's rows are, by RequestType (the array key of Apple's `responsekeys`).
ANSWER_ROWS = {
    "UserList": "Users",
    "AvailableOSUpdates": "AvailableOSUpdates",
    "OSUpdateStatus": "OSUpdateStatus",
    "ScheduleOSUpdate": "UpdateResults",
}
MAX_ROWS = 500


def choices(action: str, name: str) -> tuple[Any, ...] | None:
    """The values Apple's schema allows for an action's input `name` (None: any)."""
    found = ACTIONS[action]
    return found.params()[found.fields[name]].choices


@functools.cache
def answer_columns(request_type: str) -> tuple[str, ...]:
    """The keys of an answer's rows in the order Apple's schema lists them (its `responsekeys`)."""
    key = ANSWER_ROWS[request_type]
    for path in sorted((schemas.SCHEMA_DIR / "mdm" / "commands").glob("*.yaml")):
        if f"requesttype: {request_type}\n" not in path.read_text():
            continue
        spec = schemas.load(str(path.relative_to(schemas.SCHEMA_DIR)))
        for entry in spec.get("responsekeys") or []:
            if entry.get("key") != key:
                continue
            fields = entry.get("subkeys") or []
            if len(fields) == 1 and fields[0].get("type") == "<dictionary>":  # the array's item
                fields = fields[0].get("subkeys") or []
            return tuple(str(k["key"]) for k in fields if k.get("key") != "ErrorChain")
    return ()


def answer(request_type: str, result: Any) -> dict[str, Any] | None:
    """A device's answer to an action's command, to show: `{"rows": [...], "columns": [...]}` for
    a list (users, updates), `{"fields": {...}}` for a location (or another answer's keys); None
    when there is none."""
    if not isinstance(result, Mapping):
        return None
    key = ANSWER_ROWS.get(request_type)
    if key is not None:
        rows = [r for r in result.get(key) or [] if isinstance(r, Mapping)][:MAX_ROWS]
        columns = [c for c in answer_columns(request_type) if any(c in r for r in rows)]
        for row in rows:  # keys the schema does not list (a newer OS), after those it does
            columns += [str(k) for k in row if str(k) not in columns and k != "ErrorChain"]
        return {"rows": [dict(r) for r in rows], "columns": columns}
    # The location, and any other answer's own keys (DeviceLock's MessageResult...).
    shown = {k: v for k, v in result.items() if k not in NOT_LOCATION}
    return {"fields": shown} if shown else None


class DeviceActions:
    """The device actions over DeviceService: typed input in, one command queued (or refused)."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def run(
        self,
        device: str,
        action: str,
        values: Mapping[str, Any] | None = None,
        *,
        by: str,
        check_only: bool = False,
    ) -> dict[str, Any]:
        """Queue `action` for `device` with `values` (its typed input; None values left out).

        Everything is checked first: the input against the command's builder, the device's
        platform, supervision, OS and channel, and the PIN a Mac needs. `check_only`: only that.
        """
        found = ACTIONS.get(action)
        if found is None:
            raise Invalid(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        row = self._devices.find_device(device) if ":" not in device else None
        if row is None:
            raise NotFound(f"no device with UDID or serial number {device!r}")
        given = {k: v for k, v in (values or {}).items() if v is not None}
        unknown = set(given) - set(found.fields)
        if unknown:
            raise Invalid(f"{action} takes no {', '.join(sorted(unknown))}")
        keys = {found.fields[k]: v for k, v in given.items()}
        command: dict[str, Any] = {"RequestType": found.request_type}
        if found.item is not None:
            command[found.item] = [keys]
        else:
            command.update(keys)
        self._check_pin(found, row, keys)
        device_id = row["id"]
        self._devices.check_command([device_id], command)
        out = {"device": device_id, "action": action, "request_type": found.request_type}
        if check_only:
            return {**out, "queued": False}
        queued = self._devices.send_command([device_id], command, created_by=by)
        return {**out, "queued": True, "command_uuid": queued["commands"][0]["command_uuid"]}

    @staticmethod
    def _check_pin(action: Action, row: Mapping[str, Any], keys: Mapping[str, Any]) -> None:
        """A locked or erased Mac is unlocked only with the Find My PIN the command set: DeviceLock
        needs one on every Mac, EraseDevice on an Intel (T2 or earlier) Mac, where Apple silicon
        ignores it. The PIN is 6 digits (russet.commands.device refines the schema's string)."""
        if "PIN" not in action.fields.values():
            return
        pin = keys.get("PIN")
        if pin is not None and not (isinstance(pin, str) and PIN.fullmatch(pin)):
            raise Invalid(f"{action.request_type}: PIN must be a string of 6 digits")
        inventory = row.get("inventory") or {}
        info = inventory.get("DeviceInformation")
        info = info if isinstance(info, Mapping) else {}
        product = row.get("product_name") or info.get("ProductName") or row.get("model")
        if pin is not None or platform_of(product if isinstance(product, str) else None) != "macOS":
            return
        silicon = info.get("IsAppleSilicon")
        if action.request_type == "DeviceLock":
            raise Invalid("DeviceLock: a Mac needs a 6-digit PIN to be unlocked again; give one")
        if silicon is not True:
            why = "is an Intel Mac" if silicon is False else "may be an Intel Mac (not known yet)"
            raise Invalid(f"EraseDevice: {row['id']} {why}: it needs a 6-digit Find My PIN; give one")

    def answer(self, command_uuid: str) -> dict[str, Any]:
        """An action's command with its answer, to show (`answer`: rows or fields, or None)."""
        shown = self._devices.show_command(command_uuid)
        return {
            "command_uuid": shown["command_uuid"],
            "device": shown["device"],
            "request_type": shown["request_type"],
            "status": shown["status"],
            "status_reason": shown["status_reason"],
            "reported_at": shown["reported_at"],
            "answer": answer(shown["request_type"], shown["result"])
            if shown["status"] == "acknowledged"
            else None,
        }

    def latest(self, device: str) -> dict[str, Any]:
        """The device's latest answers to the actions that ask something (from its inventory)."""
        shown = self._devices.show_device(device)
        inventory = shown.get("inventory") or {}
        out: dict[str, Any] = {"device": shown["id"]}
        for request_type in ("DeviceLocation", *ANSWER_ROWS):
            section = inventory.get(request_type)
            if request_type == "ScheduleOSUpdate" or section is None:
                out[request_type] = None
                continue
            rows = ANSWER_ROWS.get(request_type)
            out[request_type] = answer(request_type, {rows: section} if rows else section)
        out.pop("ScheduleOSUpdate", None)
        return out
