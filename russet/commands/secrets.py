"""Which commands carry secrets, and redacting them from what admins see.

A command carries secrets when its builder lists `secret_keys` (russet.commands.device, .profiles,
.security...). The queue seals such commands' bodies and the devices' answers at rest (mdm.queue);
the API, console and CLI show those keys as REDACTED unless asked to reveal them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from russet.commands.base import COMMANDS

REDACTED = "<redacted>"


def secret_keys(request_type: str) -> frozenset[str]:
    """The keys of this request type's command or answer whose values are secrets."""
    builder = COMMANDS.get(request_type)
    return builder.secret_keys if builder is not None else frozenset()


# Answers holding a secret Russet escrows (russet.escrow): shown only through the escrow's view,
# which needs the permission and a reason and is recorded, so `reveal` leaves these redacted.
ESCROWED_KEYS: dict[str, frozenset[str]] = {
    "ActivationLockBypassCode": frozenset({"ActivationLockBypassCode"}),
}


def escrowed_keys(request_type: str) -> frozenset[str]:
    """The keys of this request type's answer that stay redacted even when revealing."""
    return ESCROWED_KEYS.get(request_type, frozenset())


def is_secret(request_type: str) -> bool:
    """Whether this request type's body and results are sealed at rest."""
    return bool(secret_keys(request_type))


def redact(value: Any, keys: frozenset[str]) -> Any:
    """`value` with the values of `keys`, at any depth, replaced by REDACTED."""
    if not keys:
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if k in keys else redact(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    return value
