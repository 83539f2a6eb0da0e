"""The secrets an MDM must keep, as use cases (`russet.escrow`): the unlock token used for
ClearPasscode, Recovery Lock and firmware passwords, FileVault personal recovery keys, and
Activation Lock bypass codes, with who may be shown one.

Secrets reach devices only inside commands whose bodies the queue seals, come back in answers
whose results it seals (or in CMS envelopes only Russet's key opens), and are kept sealed here.
A password Russet sets is `pending` until the device acknowledges it, then `current`, then
verified by the matching Verify command. Showing one needs the `SecretViewer`'s yes and a reason,
is recorded (`escrow_secret_views`), and rotates the secret where the device allows it.
Nothing here logs a secret or returns one except `view`.
"""

from __future__ import annotations

import logging
import plistlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization

from russet.apple.connections import ConnectionRegistry
from russet.apple.gateway import AppleGateway, AppleUnavailable
from russet.escrow import filevault, passwords
from russet.escrow.activation_lock import SERVICE, ActivationLockClient, Unlock
from russet.escrow.ports import Commands, Devices, EscrowDevice, PushIdentity, SecretViewer
from russet.escrow.store import EscrowStore
from russet.kernel.errors import Invalid, NotFound, Refused, RussetError, Unavailable, UpstreamFailed
from russet.kernel.events import CommandAnswered
from russet.storage.certificates import CertificateStore

log = logging.getLogger("russet.escrow")

RECOVERY_LOCK = "recovery-lock"
FIRMWARE_PASSWORD = "firmware-password"
FILEVAULT = "filevault"
BYPASS_CODE = "bypass-code"
KINDS = (RECOVERY_LOCK, FIRMWARE_PASSWORD, FILEVAULT, BYPASS_CODE)
SET = {RECOVERY_LOCK: "SetRecoveryLock", FIRMWARE_PASSWORD: "SetFirmwarePassword"}
VERIFY = {RECOVERY_LOCK: "VerifyRecoveryLock", FIRMWARE_PASSWORD: "VerifyFirmwarePassword"}
SYSTEM = "russet-escrow"  # created_by of the commands Russet queues by itself (verifications)
MAX_REASON = 500
MAX_BYPASS_CODE = 64
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise Invalid(f"unknown secret {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def check_reason(reason: str | None) -> str:
    """Why someone asks to see a secret: required, one line, at most MAX_REASON characters."""
    text = (reason or "").strip()
    if not text:
        raise Invalid("say why you need to see this secret (a reason is required)")
    if len(text) > MAX_REASON:
        raise Invalid(f"the reason is longer than {MAX_REASON} characters")
    if not text.isprintable():
        raise Invalid("the reason must be one line of printable text")
    return text


class EscrowService:
    def __init__(
        self,
        store: EscrowStore,
        certificates: CertificateStore,
        devices: Devices,
        commands: Commands,
        viewers: SecretViewer,
        push: PushIdentity,
        gateway: AppleGateway,
        connections: ConnectionRegistry,
        *,
        activation_lock_url: str,
        filevault_location: str,
    ) -> None:
        self._store = store
        self._certificates = certificates
        self._devices = devices
        self._commands = commands
        self._viewers = viewers
        self._push = push
        self._connections = connections
        self._apple = ActivationLockClient(gateway, activation_lock_url)
        self._location = filevault_location

    # -- devices ---------------------------------------------------------------------------------

    def _device(self, device: str) -> EscrowDevice:
        found = self._devices.find((device or "").strip())
        if found is None:
            raise NotFound(f"no device with UDID or serial number {device!r}")
        return found

    def password_kind(self, dev: EscrowDevice) -> str:
        """Recovery Lock on Apple silicon, the firmware password on Intel: only Macs have either."""
        if dev.platform is not None and dev.platform != "macOS":
            raise Refused(f"{dev.device_id} is not a Mac: it has no Recovery Lock or firmware password")
        if dev.apple_silicon is None:
            raise Refused(
                f"{dev.device_id}: whether it is an Apple silicon Mac is not known yet; "
                "send it DeviceInformation first"
            )
        return RECOVERY_LOCK if dev.apple_silicon else FIRMWARE_PASSWORD

    def secrets(self, device: str) -> dict[str, Any]:
        """What is escrowed for a device: kinds, states and times, never a value."""
        dev = self._device(device)
        return {
            "device": dev.device_id,
            "unlock_token": {"escrowed": self._devices.unlock_token(dev.device_id) is not None},
            "secrets": self._store.listing(dev.device_id),
        }

    # -- the unlock token ------------------------------------------------------------------------

    def clear_passcode(self, device: str, *, by: str) -> dict[str, Any]:
        """Queue ClearPasscode with the UnlockToken the device escrowed (sealed in the queue)."""
        dev = self._device(device)
        token = self._devices.unlock_token(dev.device_id)
        if token is None:
            raise Refused(
                f"{dev.device_id} has escrowed no UnlockToken (a supervised iPhone or iPad sends it in "
                "TokenUpdate; RequestUnlockToken asks for it)"
            )
        uuid_ = self._commands.send(dev.device_id, {"RequestType": "ClearPasscode", "UnlockToken": token}, by)
        return {"device": dev.device_id, "request_type": "ClearPasscode", "command_uuid": uuid_}

    # -- setting, fetching and rotating ---------------------------------------------------------

    def rotate(self, device: str, kind: str, *, by: str) -> dict[str, Any]:
        """Set a new Recovery Lock / firmware password, or rotate the FileVault recovery key."""
        dev = self._device(device)
        kind = check_kind(kind)
        if kind in SET:
            expected = self.password_kind(dev)
            if kind != expected:
                raise Refused(f"{dev.device_id} is {_mac(expected)}: its password is the {expected}")
            return self._set_password(dev, kind, by)
        if kind == FILEVAULT:
            return self._rotate_filevault(dev, by)
        raise Refused("a bypass code is made by the device; it changes only when the device is erased")

    def _set_password(self, dev: EscrowDevice, kind: str, by: str) -> dict[str, Any]:
        new = passwords.generate()
        current = self._store.get(dev.device_id, kind)
        command: dict[str, Any] = {"RequestType": SET[kind], "NewPassword": new}
        if current is not None:
            command["CurrentPassword"] = current.value
        return self._send_pending(dev, kind, new, command, by)

    def _rotate_filevault(self, dev: EscrowDevice, by: str) -> dict[str, Any]:
        current = self._store.get(dev.device_id, FILEVAULT)
        if current is None:
            raise Refused(
                f"no FileVault recovery key is escrowed for {dev.device_id} yet: install the FileVault "
                "profile, then fetch it (SecurityInfo)"
            )
        cert, _ = filevault.escrow_identity(self._certificates)
        command = {
            "RequestType": "RotateFileVaultKey",
            "KeyType": "personal",
            "FileVaultUnlock": {"Password": current.value},
            "ReplyEncryptionCertificate": cert.public_bytes(serialization.Encoding.DER),
        }
        # Pending holds the key that unlocks until the Mac answers with the new one.
        return self._send_pending(dev, FILEVAULT, current.value, command, by)

    def _send_pending(
        self, dev: EscrowDevice, kind: str, value: str, command: Mapping[str, Any], by: str
    ) -> dict[str, Any]:
        secret_id = self._store.add_pending(dev.device_id, kind, value)  # Conflict: one in flight
        try:
            command_uuid = self._commands.send(dev.device_id, command, by)
        except BaseException:
            self._store.drop(secret_id)
            raise
        self._store.set_command(secret_id, command_uuid)
        return {
            "device": dev.device_id,
            "kind": kind,
            "state": "pending",
            "request_type": command["RequestType"],
            "command_uuid": command_uuid,
        }

    def fetch(self, device: str, kind: str, *, by: str) -> dict[str, Any]:
        """Ask the device for a secret it makes: its FileVault key envelope (SecurityInfo) or its
        Activation Lock bypass code (supervised devices)."""
        dev = self._device(device)
        kind = check_kind(kind)
        request_type = {FILEVAULT: "SecurityInfo", BYPASS_CODE: "ActivationLockBypassCode"}.get(kind)
        if request_type is None:
            raise Refused(f"Russet makes the {kind} itself: rotate it to set a new one")
        if kind == BYPASS_CODE and dev.supervised is False:
            raise Refused(f"{dev.device_id} is not supervised: only supervised devices give a bypass code")
        command_uuid = self._commands.send(dev.device_id, {"RequestType": request_type}, by)
        return {
            "device": dev.device_id,
            "kind": kind,
            "request_type": request_type,
            "command_uuid": command_uuid,
        }

    # -- showing a secret ------------------------------------------------------------------------

    def view(self, device: str, kind: str, *, viewer: str, reason: str | None) -> dict[str, Any]:
        """Show an escrowed secret to `viewer`, who must be allowed and say why: the view is
        recorded before anything is shown, then the secret is rotated where the device allows."""
        dev = self._device(device)
        kind = check_kind(kind)
        why = check_reason(reason)
        if not self._viewers.may_view(viewer, dev.device_id, kind):
            raise Refused(f"{viewer} may not be shown escrowed secrets")
        secret = self._store.get(dev.device_id, kind)
        if secret is None:
            raise NotFound(f"no {kind} is escrowed for {dev.device_id}")
        viewed_at = self._store.record_view(viewer, dev.device_id, kind, why)
        log.info("%s was shown the %s of %s", viewer, kind, dev.device_id)
        return {
            "device": dev.device_id,
            "kind": kind,
            "secret": secret.value,
            "escrowed_at": _iso(secret.acknowledged_at or secret.created_at),
            "verified_at": _iso(secret.verified_at),
            "viewed_at": viewed_at.isoformat(),
            "rotation": self._rotate_after_view(dev, kind, viewer),
        }

    def _rotate_after_view(self, dev: EscrowDevice, kind: str, viewer: str) -> dict[str, Any]:
        if kind == BYPASS_CODE:
            return {"queued": False, "why": "the device makes its bypass code; it changes when it is erased"}
        try:
            done = self.rotate(dev.device_id, kind, by=f"rotation after view by {viewer}"[:100])
        except RussetError as exc:  # shown all the same: the admin learns why it was not rotated
            log.warning("%s of %s not rotated after a view: %s", kind, dev.device_id, exc)
            return {"queued": False, "why": str(exc)}
        return {"queued": True, "command_uuid": done["command_uuid"]}

    def views(self, device: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Who was shown which secret, when and why, newest first."""
        if not 1 <= limit <= 1000:
            raise Invalid("limit must be between 1 and 1000")
        device_id = self._device(device).device_id if device else None
        return self._store.views(device_id, limit)

    # -- FileVault profile -----------------------------------------------------------------------

    def filevault_profile(self) -> bytes:
        """The FileVault profile (XML, unsigned) escrowing recovery keys to Russet's certificate."""
        cert, _ = filevault.escrow_identity(self._certificates)
        return plistlib.dumps(filevault.escrow_profile(cert, self._location))

    # -- the devices' answers (CommandAnswered, subscribed by the composition root) ---------------

    def on_command_answered(self, event: CommandAnswered) -> None:
        handler = _HANDLERS.get(event.request_type)
        if handler is not None:
            handler(self, event)

    def _password_answered(self, event: CommandAnswered) -> None:
        secret = self._store.by_command(event.command_uuid)
        if secret is None or secret.state != "pending":
            return
        result = event.result.get("SetFirmwarePassword")
        changed = not (isinstance(result, Mapping) and result.get("PasswordChanged") is False)
        if event.status != "Acknowledged" or not changed:
            self._store.drop(secret.id)
            log.warning("%s refused the new %s (%s)", event.device_id, secret.kind, event.status)
            return
        if not self._store.promote(secret.id):
            return
        current = self._store.get(secret.device_id, secret.kind)
        if current is None:
            return
        verify = {"RequestType": VERIFY[secret.kind], "Password": current.value}
        self._store.set_command(current.id, self._commands.send(secret.device_id, verify, SYSTEM))

    def _verify_answered(self, event: CommandAnswered) -> None:
        secret = self._store.by_command(event.command_uuid)
        if secret is None or secret.state != "current":
            return
        found = event.result.get("VerifyFirmwarePassword", event.result)
        verified = (
            event.status == "Acknowledged"
            and isinstance(found, Mapping)
            and found.get("PasswordVerified") is True
        )
        self._store.mark_verified(secret.id, verified)
        if not verified:
            log.warning("%s did not verify its escrowed %s (%s)", event.device_id, secret.kind, event.status)

    def _security_info_answered(self, event: CommandAnswered) -> None:
        info = event.result.get("SecurityInfo")
        if event.status != "Acknowledged" or not isinstance(info, Mapping):
            return
        envelope = info.get("FDE_PersonalRecoveryKeyCMS")
        if envelope is None:
            return
        self._escrow_filevault(event.device_id, envelope)

    def _rotate_filevault_answered(self, event: CommandAnswered) -> None:
        secret = self._store.by_command(event.command_uuid)
        if secret is None or secret.state != "pending":
            return
        rotated = event.result.get("RotateResult")
        envelope = rotated.get("EncryptedNewRecoveryKey") if isinstance(rotated, Mapping) else None
        if event.status == "Acknowledged" and envelope is not None:
            self._escrow_filevault(event.device_id, envelope)
        else:
            log.warning("%s did not rotate its FileVault recovery key (%s)", event.device_id, event.status)
        self._store.drop(secret.id)

    def _escrow_filevault(self, device_id: str, envelope: object) -> None:
        try:
            key = filevault.open_key(envelope, filevault.escrow_identity(self._certificates))
        except Invalid as exc:
            log.warning("%s: FileVault recovery key not escrowed: %s", device_id, exc)
            return
        if self._store.put_current(device_id, FILEVAULT, key):
            log.info("%s: FileVault recovery key escrowed", device_id)

    def _device_information_answered(self, event: CommandAnswered) -> None:
        """A supervised device's bypass code is asked for as soon as Russet learns it is
        supervised: Apple says to escrow it before Activation Lock can be turned on. Once per
        device while none is kept (a pending row marks the question in flight)."""
        facts = event.result.get("QueryResponses")
        if event.status != "Acknowledged" or not isinstance(facts, Mapping):
            return
        if facts.get("IsSupervised") is not True or ":" in event.device_id:
            return
        device_id = event.device_id
        if self._store.get(device_id, BYPASS_CODE) or self._store.get(device_id, BYPASS_CODE, "pending"):
            return
        try:
            secret_id = self._store.add_pending(device_id, BYPASS_CODE, "")
        except RussetError:
            return  # asked concurrently
        try:
            command_uuid = self._commands.send(device_id, {"RequestType": "ActivationLockBypassCode"}, SYSTEM)
        except RussetError as exc:  # a platform without bypass codes (tvOS...)
            self._store.drop(secret_id)
            log.info("%s: bypass code not asked for: %s", device_id, exc)
            return
        self._store.set_command(secret_id, command_uuid)

    def _bypass_code_answered(self, event: CommandAnswered) -> None:
        asked = self._store.by_command(event.command_uuid)
        if asked is not None and asked.state == "pending":
            self._store.drop(asked.id)
        code = event.result.get("ActivationLockBypassCode")
        if event.status != "Acknowledged" or not isinstance(code, str) or not code:
            return  # an empty code is no news: Apple says keep the one you have
        if len(code) > MAX_BYPASS_CODE or not code.isprintable():
            log.warning("%s: the bypass code it reported is malformed; not escrowed", event.device_id)
            return
        if self._store.put_current(event.device_id, BYPASS_CODE, code):
            log.info("%s: Activation Lock bypass code escrowed", event.device_id)

    # -- Activation Lock -------------------------------------------------------------------------

    def connect_activation_lock(self, name: str, org_name: str) -> dict[str, Any]:
        """Set up (or re-activate) a connection to Apple's Activation Lock service."""
        if not _NAME.fullmatch(name or ""):
            raise Invalid("a connection name is 1 to 100 letters, digits, '.', '_' or '-'")
        org = (org_name or "").strip()
        if not org or len(org) > 200 or not org.isprintable():
            raise Invalid("the organisation name is 1 to 200 printable characters")
        with self._store.begin() as conn:
            created = self._store.add_connection(conn, name, org, str(uuid.uuid4()).upper())
            self._connections.connect(conn, SERVICE, name)
        return {"name": name, "org_name": org, "created": created}

    def activation_lock_connections(self) -> list[dict[str, Any]]:
        return self._store.connections()

    async def clear_activation_lock(
        self, device: str, *, by: str, connection: str = "default"
    ) -> dict[str, Any]:
        """Send the device's escrowed bypass code to Apple's Activation Lock service."""
        dev = self._device(device)
        code = self._store.get(dev.device_id, BYPASS_CODE)
        if code is None:
            raise NotFound(
                f"no Activation Lock bypass code is escrowed for {dev.device_id}; fetch it first "
                f"(russet secret fetch {dev.device_id} bypass-code)"
            )
        if not dev.serial_number or not dev.product_type:
            raise Refused(f"{dev.device_id}: its serial number and model are not known yet")
        row = self._store.connection(connection)
        if row is None:
            raise NotFound(
                f"no Activation Lock connection named {connection!r}; add one with "
                "`russet secret activation-lock NAME --org-name ORG`"
            )
        identity = self._push.identity()
        if identity is None:
            raise Refused(
                "no APNs certificate is installed: Apple's Activation Lock service knows Russet by it"
            )
        unlock = Unlock(
            dev.serial_number,
            dev.product_type,
            code.value,
            row["org_name"],
            row["guid"],
            imei=dev.imei,
            meid=dev.meid,
        )
        try:
            answer = await self._apple.unlock(connection, unlock, identity)
        except AppleUnavailable as exc:
            self._store.record_clear(connection, dev.device_id, dev.serial_number, by, None, str(exc))
            raise Unavailable(f"Apple's Activation Lock service could not be reached: {exc}") from None
        outcome = "cleared" if answer.status == 200 else f"refused: {answer.text}"
        self._store.record_clear(connection, dev.device_id, dev.serial_number, by, answer.status, outcome)
        if answer.status != 200:
            raise UpstreamFailed(
                f"Apple's Activation Lock service answered {answer.status} "
                f"for {dev.serial_number}: {answer.text}"
            )
        return {
            "device": dev.device_id,
            "serial_number": dev.serial_number,
            "connection": connection,
            "cleared": True,
        }

    def activation_lock_clears(self, device: str) -> list[dict[str, Any]]:
        return self._store.clears(self._device(device).device_id)


def _mac(kind: str) -> str:
    return "an Apple silicon Mac" if kind == RECOVERY_LOCK else "an Intel Mac"


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


_HANDLERS = {
    "SetRecoveryLock": EscrowService._password_answered,
    "SetFirmwarePassword": EscrowService._password_answered,
    "VerifyRecoveryLock": EscrowService._verify_answered,
    "VerifyFirmwarePassword": EscrowService._verify_answered,
    "SecurityInfo": EscrowService._security_info_answered,
    "RotateFileVaultKey": EscrowService._rotate_filevault_answered,
    "ActivationLockBypassCode": EscrowService._bypass_code_answered,
    "DeviceInformation": EscrowService._device_information_answered,
}
