"""A Mac enrolled after sign-in during Setup Assistant gets its primary local account pre-filled
from the person who signed in: AccountConfiguration with PrimaryAccountUserName (a short name
made from their email address) and PrimaryAccountFullName (their name, when the provider gave
one). Queued when the device's TokenUpdate says AwaitingConfiguration, once per enrollment, before
the blueprints' DeviceConfigured (the composition root subscribes this handler first), so the
device receives it while Setup Assistant still waits. The person may still change both fields:
the account is pre-filled, not locked.
"""

from __future__ import annotations

import logging
import re

from russet.enrollment.ports import SetupCommands
from russet.enrollment.tokens import EnrollmentRequestLog, Person
from russet.kernel.errors import RussetError
from russet.kernel.events import DeviceAwaitingConfiguration

log = logging.getLogger("russet.enrollment")

ACCOUNT_CONFIGURATION = "AccountConfiguration"
MAX_SHORT_NAME = 31  # macOS short names stay well within this
MAX_FULL_NAME = 100


def short_name(person: Person) -> str:
    """A macOS short name from the person's email (the part before @, or their id): lower case,
    letters, digits, `.`, `_` and `-` only, starting with a letter."""
    source = (person.email or person.id).split("@", 1)[0].lower()
    name = re.sub(r"[^a-z0-9._-]", "", source)[:MAX_SHORT_NAME]
    return name if name[:1].isalpha() else ("user" + name)[:MAX_SHORT_NAME]


def account_configuration(person: Person) -> dict[str, str]:
    short = short_name(person)
    full = (person.name or "").strip()[:MAX_FULL_NAME] or short
    return {
        "RequestType": ACCOUNT_CONFIGURATION,
        "PrimaryAccountUserName": short,
        "PrimaryAccountFullName": full,
    }


class PrimaryAccounts:
    """Pre-fills the primary account of Macs whose person signed in (russet/enrollment/signin.py)."""

    def __init__(self, people: EnrollmentRequestLog, commands: SetupCommands) -> None:
        self._people = people
        self._commands = commands

    def on_awaiting_configuration(self, event: DeviceAwaitingConfiguration) -> None:
        person = self._people.signed_in_people([event.device_id]).get(event.device_id)
        if person is None or not self._commands.is_mac(event.device_id):
            return
        if self._commands.sent_since(event.device_id, ACCOUNT_CONFIGURATION, event.enrolled_at):
            return  # a repeated TokenUpdate of the same enrollment
        try:
            self._commands.send(event.device_id, account_configuration(person))
        except RussetError as exc:  # the Mac still gets DeviceConfigured: the person types it in
            log.warning("no AccountConfiguration for %s: %s", event.device_id, exc)
            return
        log.info("AccountConfiguration queued for %s (primary account pre-filled)", event.device_id)
