"""MDM command builders: validate commands before they are queued and render them for devices.

Importing this package registers every builder in `COMMANDS`.
"""

from russet.commands import applications, device, information, lostmode, profiles, settings, updates
from russet.commands.base import (
    COMMANDS,
    Command,
    CommandError,
    Param,
    build_command,
    render_command_plist,
)

__all__ = [
    "COMMANDS",
    "Command",
    "CommandError",
    "Param",
    "applications",
    "build_command",
    "device",
    "information",
    "lostmode",
    "profiles",
    "render_command_plist",
    "settings",
    "updates",
]
