"""MDM Lost Mode of supervised iOS devices: what EnableLostMode needs beyond its schema."""

from __future__ import annotations

from typing import Any

from russet.commands import generated


class EnableLostMode(generated.EnableLostMode):
    """Put the device in Lost Mode; the Lock screen must show a message, a phone number or both."""

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        if "Message" not in values and "PhoneNumber" not in values:
            return "Message or PhoneNumber is required"
        return None
