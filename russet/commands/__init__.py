"""MDM command builders: validate commands before they are queued and render them for devices.

Every RequestType of Apple's schemas has a builder generated from its YAML (`generated`,
rewritten by `python -m russet.commands.codegen`); the other modules subclass some of them with
what the schema cannot say. Importing this package registers every builder in `COMMANDS`.
`check_target` refuses a command its target's platform, OS or channel cannot run.
"""

from russet.commands import (
    applications,
    device,
    generated,
    information,
    lostmode,
    profiles,
    security,
    settings,
    updates,
)
from russet.commands.base import (
    COMMANDS,
    Command,
    CommandError,
    Param,
    build_command,
    refine,
    render_command_plist,
)
from russet.commands.support import DeviceFacts, Platform, Support, platform_of
from russet.commands.targets import CommandRefused, check_target

__all__ = [
    "COMMANDS",
    "Command",
    "CommandError",
    "CommandRefused",
    "DeviceFacts",
    "Param",
    "Platform",
    "Support",
    "applications",
    "build_command",
    "check_target",
    "device",
    "generated",
    "information",
    "lostmode",
    "platform_of",
    "profiles",
    "refine",
    "render_command_plist",
    "security",
    "settings",
    "updates",
]
