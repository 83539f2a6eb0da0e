"""Which commands carry secrets, and redacting them from what admins see.

A command carries secrets when its builder lists `secret_keys`, or, for request types Russet
has no builder for but admins may send raw, when `RAW_SECRET_KEYS` lists it. The queue seals such
commands' bodies and the devices' answers at rest (mdm.queue); the API, console and CLI show
those keys as REDACTED unless asked to reveal them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from russet.commands.base import COMMANDS

REDACTED = "<redacted>"

#: Request types without a builder whose command or answer holds secrets (Apple's MDM schema).
RAW_SECRET_KEYS: Mapping[str, frozenset[str]] = {
    "ActivationLockBypassCode": frozenset({"ActivationLockBypassCode"}),
    "SetRecoveryLock": frozenset({"CurrentPassword", "NewPassword"}),
    "VerifyRecoveryLock": frozenset({"Password"}),
    "SetFirmwarePassword": frozenset({"CurrentPassword", "NewPassword"}),
    "VerifyFirmwarePassword": frozenset({"Password"}),
    "SetAutoAdminPassword": frozenset({"passwordHash"}),
    "RotateFileVaultKey": frozenset({"Password", "EncryptedNewRecoveryKey"}),
}


def secret_keys(request_type: str) -> frozenset[str]:
    builder = COMMANDS.get(request_type)
    if builder is not None:
        return builder.secret_keys
    return RAW_SECRET_KEYS.get(request_type, frozenset())


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
