"""Per-device `$VARIABLES` in library profiles, substituted in parsed string values.

Substitution works on the parsed profile, string by string, and the result is written out again
by plistlib: a device name holding `<`, `&` or `]]>` becomes text in a `<string>`, never markup,
so no device value can break the plist or add keys to it.

A variable is `$` followed by capitals, digits and underscores (`$SERIAL`, `$DEVICE_NAME`); the
whole word is the name, so `$SERIALNUMBER` is not `$SERIAL` followed by text. Names Russet does not
know are left as they are (a password or a shell script may well hold `$HOME`); uploading such a
profile answers them in `unknown_variables`, so a typo (`$SERIEL`) is seen at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from russet.kernel.errors import Conflict

#: Every variable Russet substitutes, with where its value comes from.
VARIABLES: dict[str, str] = {
    "UDID": "the device's UDID (its EnrollmentID for User Enrollment)",
    "SERIAL": "the serial number",
    "DEVICE_NAME": "the device's name (DeviceInformation DeviceName)",
    "MODEL": "the model identifier (iPad13,1, Mac14,2)",
    "MODEL_NAME": "the model name (iPad, MacBook Pro)",
    "PRODUCT_NAME": "the product name",
    "OS_VERSION": "the OS version (18.1)",
    "BUILD_VERSION": "the OS build (22B83)",
    "ENROLLMENT_ID": "the enrollment id the command is queued to (a user channel's is <device>:<user>)",
    "USERNAME": "a user channel's short name (macOS user, Shared iPad Managed Apple Account)",
    "USER_FULL_NAME": "a user channel's full name",
    "EMAIL": "a Shared iPad user's Managed Apple Account (the only email Russet learns from devices)",
}

_NAME = re.compile(r"\$([A-Z][A-Z0-9_]*)")
# What an XML plist cannot hold (plistlib refuses it): dropped from device values.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class MissingValue(Conflict):
    """A profile uses a variable that Russet has no value for on one device."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def used(profile: Any) -> tuple[list[str], list[str]]:
    """The known variables and the unknown `$NAMES` in a profile's string values, each sorted."""
    names = {name for text in _strings(profile) for name in _NAME.findall(text)}
    return sorted(names & VARIABLES.keys()), sorted(names - VARIABLES.keys())


def substitute(profile: Any, facts: Mapping[str, str], device: str) -> Any:
    """A copy of `profile` with every known variable replaced by the device's value.

    MissingValue names the first variable the device has no value for (`$USERNAME` on a device
    channel): a profile with the word `$USERNAME` in it would be worse than none.
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in VARIABLES:
            return match.group(0)
        value = facts.get(name)
        if value is None:
            raise MissingValue(f"${name} has no value for {device} ({VARIABLES[name]})")
        return _NOT_XML.sub("", value)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _NAME.sub(one, value)
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(profile)
