"""Commands whose body or answer holds a password, a key or a bypass code: their `secret_keys`.

Their keys come from Apple's schema (russet.commands.generated); what these subclasses add is
which of them (or of the device's answer) are secrets, so the queue seals the command and its
result at rest and the API, console and CLI show them as REDACTED (russet.commands.secrets).
"""

from __future__ import annotations

from russet.commands import generated


class ActivationLockBypassCode(generated.ActivationLockBypassCode):
    """Fetch the code that clears Activation Lock on a supervised device."""

    secret_keys = frozenset({"ActivationLockBypassCode"})  # in the device's answer


class SetRecoveryLock(generated.SetRecoveryLock):
    """Set, change or clear the Recovery Lock password of an Apple silicon Mac."""

    secret_keys = frozenset({"CurrentPassword", "NewPassword"})


class VerifyRecoveryLock(generated.VerifyRecoveryLock):
    """Check a Recovery Lock password."""

    secret_keys = frozenset({"Password"})


class SetFirmwarePassword(generated.SetFirmwarePassword):
    """Set, change or clear the firmware password of an Intel Mac."""

    secret_keys = frozenset({"CurrentPassword", "NewPassword"})


class VerifyFirmwarePassword(generated.VerifyFirmwarePassword):
    """Check a firmware password."""

    secret_keys = frozenset({"Password"})


class SetAutoAdminPassword(generated.SetAutoAdminPassword):
    """Change the password of the admin account AccountConfiguration created."""

    secret_keys = frozenset({"passwordHash"})


class AccountConfiguration(generated.AccountConfiguration):
    """Create the Mac's local admin accounts during Setup Assistant; each may carry a password hash."""

    secret_keys = frozenset({"passwordHash"})


class RotateFileVaultKey(generated.RotateFileVaultKey):
    """Rotate a FileVault recovery key; the unlock password or institutional key and the new key."""

    secret_keys = frozenset(
        {"Password", "PrivateKeyExport", "PrivateKeyExportPassword", "EncryptedNewRecoveryKey"}
    )


class RequestMirroring(generated.RequestMirroring):
    """Ask the device to mirror its screen over AirPlay, with the destination's password if any."""

    secret_keys = frozenset({"Password"})
