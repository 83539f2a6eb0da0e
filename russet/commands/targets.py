"""Refusing a command its target cannot run: the one place that reads Apple's `supportedOS`.

`check_target(request_type, facts, command)` raises `CommandError` (an `Invalid`) for a RequestType
no schema defines or a command that fails validation, and `CommandRefused` (a `Refused`) when the
platform, OS version, supervision, ADE, User Enrollment, Shared iPad or channel of the target rules
it out, for the command as a whole or for a key (or Settings item) it uses, with every reason in
words: "EnableLostMode needs a supervised device on iOS", "EraseDevice is not available on the user
channel". A caller (the device service, before queueing for each target) builds `DeviceFacts`
from what it knows, e.g. `DeviceFacts.from_inventory(inventory, channel="user")`; unknown facts
never cause a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from russet.commands.base import COMMANDS, CommandError, Param, build_command, unknown_request_type
from russet.commands.support import PLATFORMS, DeviceFacts, Platform, Support
from russet.commands.user_enrollment import USER_ENROLLMENT_PLATFORMS, query_refusals
from russet.kernel.errors import Refused


class CommandRefused(Refused):
    """The target cannot run this command; `reasons` lists each reason as a sentence."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def check_target(request_type: str, facts: DeviceFacts, command: Mapping[str, Any] | None = None) -> None:
    """Raise unless a device with `facts` can run `request_type` (with the keys of `command`).

    `command` is the Command dictionary as an admin gives it (validated here first); without it
    only the command as a whole is checked.
    """
    builder = COMMANDS.get(request_type)
    if builder is None:
        raise CommandError(unknown_request_type(request_type))
    if command is not None:
        built = build_command({**command, "RequestType": request_type})
    reasons = [f"{request_type} {why}" for why in command_refusals(builder.support, facts)]
    if command is not None and facts.platform is not None:
        body = {k: v for k, v in built.items() if k != "RequestType"}
        reasons += [
            f"{request_type}: {path} {why}"
            for path, why in _key_refusals(builder.params, body, facts.platform, facts, "")
        ]
    if command is not None and request_type == "DeviceInformation":
        reasons += query_refusals(command.get("Queries"), facts)  # only the queries asked for
    if reasons:
        raise CommandRefused(reasons)


def command_refusals(support: Mapping[Platform, Support], facts: DeviceFacts) -> list[str]:
    """Why a command with this `support` cannot run on `facts`, without its name."""
    if facts.platform is None:
        # The platform is not known yet (no DeviceInformation answer): refuse only what no
        # platform allows, so a User Enrollment device is never sent a device-wide command.
        reasons = []
        if facts.channel == "user" and not any(
            support.get(p, Support(available=False)).allows_user_channel(p) for p in PLATFORMS
        ):
            reasons.append("is not available on the user channel")
        if facts.user_enrollment and not any(
            support.get(p, Support(available=False)).available
            and support.get(p, Support(available=False)).user_enrollment is not False
            for p in USER_ENROLLMENT_PLATFORMS
        ):
            reasons.append("is not available with User Enrollment (on any platform)")
        return reasons
    entry = support.get(facts.platform, Support(available=False))
    return entry.refusals(facts.platform, facts, whole_command=True)


def _key_refusals(
    params: Mapping[str, Param], values: Mapping[str, Any], platform: Platform, facts: DeviceFacts, path: str
) -> list[tuple[str, str]]:
    """(key path, reason) for each key in `values` whose own support rules out `facts`."""
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        param = params.get(key)
        if param is None:
            continue
        where = f"{path}.{key}" if path else key
        out += _param_refusals(param, value, platform, facts, where)
    return out


def _param_refusals(
    param: Param, value: Any, platform: Platform, facts: DeviceFacts, where: str
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    entry = (param.support or {}).get(platform)
    if entry is not None:
        out += [(where, why) for why in entry.refusals(platform, facts, whole_command=False)]
    if param.subkeys is not None and isinstance(value, Mapping):
        out += _key_refusals(param.subkeys, value, platform, facts, where)
    if param.item is not None and isinstance(value, list):
        item = param.item
        for i, element in enumerate(value):
            out += _item_refusals(item, element, platform, facts, f"{where}[{i}]")
    return out


def _item_refusals(
    item: Param, value: Any, platform: Platform, facts: DeviceFacts, where: str
) -> list[tuple[str, str]]:
    if item.variants is None or not isinstance(value, Mapping):
        return _param_refusals(item, value, platform, facts, where)
    tag = value.get(item.tag)
    if not isinstance(tag, str) or tag not in item.variants:
        return []
    fields = item.variants[tag]
    out: list[tuple[str, str]] = []
    entry = (item.variant_support or {}).get(tag, {}).get(platform)
    label = f"{where} ({item.tag} {tag})"
    if entry is not None:
        out += [(label, why) for why in entry.refusals(platform, facts, whole_command=False)]
    rest = {k: v for k, v in value.items() if k != item.tag}
    return out + _key_refusals(fields, rest, platform, facts, where)
