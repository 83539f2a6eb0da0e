"""A simulated Apple device that speaks the MDM protocol the way a real one does.

It installs a Russet enrollment profile (verifying its CMS signature, then either opening the
PKCS#12 identity with the payload's password or obtaining one over SCEP with its own key), then
signs every request body with that identity in an `Mdm-Signature` header, as a device does when
the MDM payload sets SignMessage. Behind a TLS-terminating proxy the identity travels as the TLS
client certificate instead: pass an httpx client holding it (see simulators/tls_proxy.py), or,
for in-process tests, set `proxy_header` and the device adds the header the proxy would.

It speaks for its user channels too (macOS users, Shared iPad users, User Enrollment users):
pass a `SimUser`'s keys with any message.

It answers commands as a device does (`answer`, `run_commands`): DeviceInformation from its
facts, and the commands that move secrets, checking them as the OS would (ClearPasscode needs the
UnlockToken it sent in TokenUpdate, SetRecoveryLock the current password, RotateFileVaultKey the
current recovery key), with the FileVault key encrypted to the escrow certificate of the profile
it installed (`install_profile`), as a Mac does.
"""

from __future__ import annotations

import base64
import json
import os
import plistlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from russet.mdm.channels import SHARED_IPAD_USER_ID
from russet.pki import sign_detached, verify_attached
from simulators.scep_client import ScepClient, ScepHttp, subject_from_apple

CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"
CONNECT_TYPE = "application/x-apple-aspen-mdm; charset=UTF-8"


class HttpClient(Protocol):
    def put(self, url: str, *, content: bytes, headers: dict[str, str]) -> Any: ...


_DDM_GROUPS = {
    "Activations": "activation",
    "Configurations": "configuration",
    "Assets": "asset",
    "Management": "management",
}


def nest_status(values: dict[str, Any]) -> dict[str, Any]:
    """Status items by dotted name, nested as a device sends them ({"a.b": 1} -> {"a": {"b": 1}})."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        *parents, last = name.split(".")
        here = nested
        for part in parents:
            here = here.setdefault(part, {})
        here[last] = value
    return nested


@dataclass
class DdmClient:
    """A device's declarative-management engine, as far as the protocol shows it: it keeps the
    declarations it fetched (by kind and identifier, with their ServerToken) and the last
    DeclarationsToken, syncs as a device does (tokens, then declaration-items only when the token
    moved, then each declaration whose ServerToken is new to it, and any data an asset or legacy
    profile points at), and reports its state in a status report."""

    held: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)  # identifier -> data fetched from its URL
    token: str | None = None
    fetched: list[str] = field(default_factory=list)  # identifiers fetched, in order (all syncs)
    # identifier -> reasons: the device reports it invalid with these (e.g. a passcode it cannot apply)
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def forget(self) -> None:
        """What an erase does: nothing held."""
        self.held.clear()
        self.data.clear()
        self.token = None

    def status_report(self, values: dict[str, Any] | None = None, *, full: bool = True) -> dict[str, Any]:
        states: dict[str, list[dict[str, Any]]] = {g.lower(): [] for g in _DDM_GROUPS}
        for (kind, identifier), declaration in sorted(self.held.items()):
            reasons = self.failures.get(identifier)
            entry: dict[str, Any] = {
                "identifier": identifier,
                "server-token": declaration["ServerToken"],
                "active": reasons is None,
                "valid": "invalid" if reasons else "valid",
            }
            if reasons:
                entry["reasons"] = reasons
            group = next(g for g, k in _DDM_GROUPS.items() if k == kind)
            states[group.lower()].append(entry)
        items = nest_status({**(values or {}), "management.declarations": states})
        return {"StatusItems": items, "Errors": [], "FullReport": full}


def _data_url(declaration: dict[str, Any]) -> str | None:
    """Where an asset's data (Reference.DataURL) or a legacy profile (ProfileURL) is."""
    payload = declaration.get("Payload", {})
    reference = payload.get("Reference")
    if isinstance(reference, dict) and isinstance(reference.get("DataURL"), str):
        return str(reference["DataURL"])
    url = payload.get("ProfileURL")
    return url if isinstance(url, str) else None


@dataclass
class Enrollment:
    """What a device keeps from an installed enrollment profile."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    server_url: str
    checkin_url: str
    topic: str
    scep_url: str | None = None  # where the identity came from, when it came over SCEP
    sign_message: bool = True  # the MDM payload's SignMessage

    @classmethod
    def from_profile(cls, profile: bytes, http_client: ScepHttp | None = None) -> Enrollment:
        """Install a profile. A SCEP identity is requested through `http_client`, or, without
        one, over a fresh httpx client to the payload's URL (as a device would)."""
        if profile.startswith(b"<?xml") or profile.startswith(b"bplist"):
            content = profile
        else:
            content = verify_attached(profile).content
        payloads = {p["PayloadType"]: p for p in plistlib.loads(content)["PayloadContent"]}
        mdm = payloads["com.apple.mdm"]
        identity = next(p for p in payloads.values() if p["PayloadUUID"] == mdm["IdentityCertificateUUID"])
        urls = (mdm["ServerURL"], mdm.get("CheckInURL", mdm["ServerURL"]), mdm["Topic"])
        sign = bool(mdm.get("SignMessage", False))
        if identity["PayloadType"] == "com.apple.security.scep":
            scep = identity["PayloadContent"]
            cert, key = _over_scep(http_client, scep)
            return cls(cert, key, *urls, scep_url=scep["URL"], sign_message=sign)
        p12_key, p12_cert, _ = pkcs12.load_key_and_certificates(
            identity["PayloadContent"], identity["Password"].encode()
        )
        assert isinstance(p12_key, rsa.RSAPrivateKey) and p12_cert is not None
        return cls(p12_cert, p12_key, *urls, sign_message=sign)

    def write_identity(self, directory: Path) -> tuple[str, str]:
        """The identity as PEM files (certificate, key), for a TLS client presenting it."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / "identity.pem", directory / "identity.key"
        cert_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return str(cert_file), str(key_file)

    def renew(self, http_client: ScepHttp) -> None:
        """Replace the identity with a new key and certificate by SCEP RenewalReq."""
        if self.scep_url is None:
            raise ValueError("this identity did not come over SCEP")
        client = ScepClient(http_client, self.scep_url)
        self.certificate, self.key = client.renew(self.certificate, self.key)


def _over_scep(
    http_client: ScepHttp | None, scep: dict[str, Any]
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    subject = subject_from_apple(scep.get("Subject", []))
    key_size = int(scep.get("Keysize", 1024))
    if http_client is not None:
        return ScepClient(http_client, scep["URL"]).enroll(subject, scep.get("Challenge"), key_size)
    import httpx  # only this path needs a real network client

    with httpx.Client() as http:
        return ScepClient(http, scep["URL"]).enroll(subject, scep.get("Challenge"), key_size)


@dataclass
class SimUser:
    """A user channel on a device: the identity keys it adds to every message (Apple §a.2)."""

    keys: dict[str, str]
    push_token: bytes = field(default_factory=lambda: os.urandom(32))
    push_magic: str = field(default_factory=lambda: str(uuid.uuid4()).upper())

    @classmethod
    def mac_user(cls, short_name: str = "alex") -> SimUser:
        user_id = str(uuid.uuid4()).upper()
        return cls({"UserID": user_id, "UserShortName": short_name, "UserLongName": short_name.title()})

    @classmethod
    def shared_ipad_user(cls, managed_apple_id: str = "alex@example.org") -> SimUser:
        return cls({"UserID": SHARED_IPAD_USER_ID, "UserShortName": managed_apple_id})

    @classmethod
    def user_enrollment_user(cls) -> SimUser:
        return cls({"EnrollmentUserID": str(uuid.uuid4()).upper(), "UserShortName": "alex@example.org"})

    @property
    def user_id(self) -> str:
        """The part after the colon in the user channel's enrollment id."""
        if self.keys.get("UserID") == SHARED_IPAD_USER_ID:
            return self.keys["UserShortName"]
        return self.keys.get("UserID") or self.keys["EnrollmentUserID"]


@dataclass
class DeviceSecrets:
    """What the device itself holds: the secrets an MDM escrows, and the facts that decide which."""

    apple_silicon: bool | None = None  # a Mac: Recovery Lock (True) or firmware password (False)
    supervised: bool = True
    recovery_lock: str | None = None
    firmware_password: str | None = None
    bypass_code: str = field(default_factory=lambda: "-".join(os.urandom(3).hex().upper() for _ in range(5)))
    filevault_key: str | None = None  # the personal recovery key, once FileVault is on
    escrow_certificate: x509.Certificate | None = None  # from an FDERecoveryKeyEscrow profile
    passcode_cleared: int = 0


@dataclass
class DeviceState:
    """What the device actions change or report (lost mode, lock, erase, Shared iPad users, OS
    updates), answered as the OS does: DeviceLocation and PlayLostModeSound only in Lost Mode, the
    erase and lock PIN kept, users logged out and deleted, an update scheduled then reported."""

    lost_mode: dict[str, Any] | None = None  # the Lock screen's Message/PhoneNumber/Footnote
    location: tuple[float, float] = (48.8584, 2.2945)
    sounds_played: int = 0
    locked: dict[str, Any] | None = None  # DeviceLock's keys
    erased: dict[str, Any] | None = None  # EraseDevice's keys
    users: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"UserName": "alex@example.org", "FullName": "Alex", "IsLoggedIn": True, "HasDataToSync": False},
            {"UserName": "sam@example.org", "FullName": "Sam", "IsLoggedIn": False, "HasDataToSync": True},
        ]
    )
    updates: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "ProductKey": "iOSUpdate22C152",
                "HumanReadableName": "iOS 18.2",
                "Version": "18.2",
                "Build": "22C152",
                "IsCritical": False,
                "RestartRequired": True,
            }
        ]
    )
    scheduled: dict[str, str] = field(default_factory=dict)  # ProductKey -> InstallAction
    scans: int = 0
    shared_ipad: bool | None = None  # DeviceInformation's IsMultiUser, when set
    imei: str | None = None  # a cellular device's, as DeviceInformation reports it (with spaces)
    meid: str | None = None


@dataclass
class SimDevice:
    enrollment: Enrollment
    udid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    serial: str = field(default_factory=lambda: os.urandom(6).hex().upper())
    push_token: bytes = field(default_factory=lambda: os.urandom(32))
    push_magic: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    os_version: str = "18.1"
    path_only: bool = False  # send only the URL path (for ASGI test clients with a base URL)
    id_key: str = "UDID"  # "EnrollmentID" for a User Enrollment (BYOD) device
    # Stand in for a TLS-terminating proxy: put the identity in this header (rfc9440 | nginx).
    proxy_header: str | None = None
    proxy_format: str = "rfc9440"
    product_name: str = "iPhone15,2"
    unlock_token: bytes = b""  # the last one sent in TokenUpdate
    secrets: DeviceSecrets = field(default_factory=DeviceSecrets)
    ddm: DdmClient = field(default_factory=DdmClient)  # its declarative-management engine
    state: DeviceState = field(default_factory=DeviceState)  # what the device actions act on

    # -- message bodies ------------------------------------------------------------------------

    def user_channel(self, user: SimUser) -> str:
        """The enrollment id Russet gives the user's channel (and takes as a command target)."""
        return f"{self.udid}:{user.user_id}"

    def user_token_update_message(self, user: SimUser, **extra: Any) -> dict[str, Any]:
        return {
            "MessageType": "TokenUpdate",
            "Topic": self.enrollment.topic,
            self.id_key: self.udid,
            **user.keys,
            "Token": user.push_token,
            "PushMagic": user.push_magic,
            **extra,
        }

    def authenticate_message(self) -> dict[str, Any]:
        return {
            "MessageType": "Authenticate",
            "Topic": self.enrollment.topic,
            self.id_key: self.udid,
            "SerialNumber": self.serial,
            "ProductName": self.product_name,
            "OSVersion": self.os_version,
            "BuildVersion": "22B83",
        }

    def token_update_message(self, **extra: Any) -> dict[str, Any]:
        # A fresh UnlockToken each time (so no two TokenUpdate bodies are alike for the replay
        # guard); the device keeps the last one it sent, which is the one Russet escrows.
        self.unlock_token = os.urandom(64)
        return {
            "MessageType": "TokenUpdate",
            "Topic": self.enrollment.topic,
            self.id_key: self.udid,
            "Token": self.push_token,
            "PushMagic": self.push_magic,
            "UnlockToken": self.unlock_token,
            "AwaitingConfiguration": False,
            **extra,
        }

    def report_message(self, status: str, command_uuid: str | None = None, **extra: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {self.id_key: self.udid, "Status": status, **extra}
        if command_uuid is not None:
            msg["CommandUUID"] = command_uuid
        return msg

    # -- transport -----------------------------------------------------------------------------

    def signed_headers(self, body: bytes, content_type: str) -> dict[str, str]:
        """The headers a device sends (Mdm-Signature if its profile says SignMessage), plus the
        proxy's client-certificate header when standing in for one."""
        headers = {"Content-Type": content_type}
        if self.enrollment.sign_message:
            signature = sign_detached(body, self.enrollment.certificate, self.enrollment.key)
            headers["Mdm-Signature"] = base64.b64encode(signature).decode()
        if self.proxy_header is not None:
            from simulators.tls_proxy import header_value

            fmt = "nginx" if self.proxy_format == "nginx" else "rfc9440"
            headers[self.proxy_header] = header_value(self.enrollment.certificate, fmt)
        return headers

    def _url(self, url: str) -> str:
        if not self.path_only:
            return url
        return "/" + url.split("://", 1)[-1].split("/", 1)[1]

    def send_raw(
        self, client: HttpClient, kind: str, body: bytes, headers: dict[str, str] | None = None
    ) -> Any:
        url = self.enrollment.checkin_url if kind == "checkin" else self.enrollment.server_url
        content_type = CHECKIN_TYPE if kind == "checkin" else CONNECT_TYPE
        return client.put(
            self._url(url), content=body, headers=headers or self.signed_headers(body, content_type)
        )

    def check_in(self, client: HttpClient, msg: dict[str, Any]) -> Any:
        return self.send_raw(client, "checkin", plistlib.dumps(msg))

    def connect(self, client: HttpClient, msg: dict[str, Any]) -> Any:
        return self.send_raw(client, "connect", plistlib.dumps(msg))

    def enroll(self, client: HttpClient) -> None:
        """Authenticate then TokenUpdate, as a device installing the profile does."""
        for msg in (self.authenticate_message(), self.token_update_message()):
            response = self.check_in(client, msg)
            if response.status_code != 200:
                raise RuntimeError(f"{msg['MessageType']} refused: {response.status_code} {response.text}")

    # -- declarative device management ---------------------------------------------------------

    def declarative(self, client: HttpClient, endpoint: str, data: bytes | None = None) -> Any:
        """One DeclarativeManagement check-in.

        A device's signature carries its signing time, so its repeated `tokens` check-ins differ;
        the simulator's may repeat within one second, so each carries a key of its own that the
        server ignores (else the replay guard would rightly refuse the exact repeat)."""
        msg: dict[str, Any] = {
            "SimRequestID": str(uuid.uuid4()),
            "MessageType": "DeclarativeManagement",
            self.id_key: self.udid,
            "Endpoint": endpoint,
        }
        if data is not None:
            msg["Data"] = data
        return self.check_in(client, msg)

    def _ddm_json(self, client: HttpClient, endpoint: str) -> Any:
        response = self.declarative(client, endpoint)
        if response.status_code != 200:
            raise RuntimeError(f"DDM {endpoint} refused: {response.status_code} {response.text}")
        return json.loads(response.content)

    def ddm_sync(self, client: Any, status: dict[str, Any] | None = None, *, full: bool = True) -> list[str]:
        """A whole sync, as after a DeclarativeManagement command: tokens; if the token moved,
        declaration-items, each declaration whose ServerToken is new, dropping those no longer
        listed; then a status report (with `status` values; `full=False`: an incremental one).
        Returns what it fetched."""
        ddm = self.ddm
        fetched: list[str] = []
        token = self._ddm_json(client, "tokens")["SyncTokens"]["DeclarationsToken"]
        if token != ddm.token:
            items = self._ddm_json(client, "declaration-items")
            listed: set[tuple[str, str]] = set()
            for group, kind in _DDM_GROUPS.items():
                for item in items["Declarations"][group]:
                    key = (kind, item["Identifier"])
                    listed.add(key)
                    have = ddm.held.get(key)
                    if have is not None and have["ServerToken"] == item["ServerToken"]:
                        continue
                    declaration = self._ddm_json(client, f"declaration/{kind}/{item['Identifier']}")
                    ddm.held[key] = declaration
                    fetched.append(item["Identifier"])
                    url = _data_url(declaration)
                    if url is not None:
                        got = client.get(self._url(url))
                        if got.status_code != 200:
                            raise RuntimeError(f"data of {item['Identifier']}: {got.status_code}")
                        ddm.data[item["Identifier"]] = got.content
            for key in set(ddm.held) - listed:
                del ddm.held[key]
            ddm.token = items["DeclarationsToken"]
        ddm.fetched += fetched
        report = json.dumps(ddm.status_report(status, full=full)).encode()
        response = self.declarative(client, "status", report)
        if response.status_code != 200:
            raise RuntimeError(f"DDM status refused: {response.status_code} {response.text}")
        return fetched

    @staticmethod
    def command_of(response: Any) -> dict[str, Any] | None:
        """The command plist in a connect response, None for the empty "no more commands" body."""
        if response.status_code != 200:
            raise RuntimeError(f"connect refused: {response.status_code} {response.text}")
        return plistlib.loads(response.content) if response.content else None


    # -- answering commands --------------------------------------------------------------------

    def install_profile(self, profile: bytes) -> None:
        """Install a configuration profile: an FDERecoveryKeyEscrow payload makes FileVault
        escrow its recovery key to the certificate it names (and FileVault gets a key)."""
        payloads = {p["PayloadUUID"]: p for p in plistlib.loads(profile)["PayloadContent"]}
        for payload in payloads.values():
            if payload["PayloadType"] == "com.apple.security.FDERecoveryKeyEscrow":
                der = payloads[payload["EncryptCertPayloadUUID"]]["PayloadContent"]
                self.secrets.escrow_certificate = x509.load_der_x509_certificate(der)
                self.secrets.filevault_key = self.secrets.filevault_key or _recovery_key()

    def answer(self, command: dict[str, Any]) -> dict[str, Any]:
        """The report a device sends for `command` (Acknowledged with its answer, or Error)."""
        body, uuid_ = command["Command"], command["CommandUUID"]
        kind = body["RequestType"]
        handler = getattr(self, f"_answer_{kind}", None)
        if handler is None:
            return self.report_message("Acknowledged", uuid_)
        try:
            return self.report_message("Acknowledged", uuid_, **handler(body))
        except _Refuse as exc:
            said = str(exc)
            chain = [{"ErrorCode": exc.code, "ErrorDomain": "MCMDMErrorDomain", "USEnglishDescription": said}]
            return self.report_message("Error", uuid_, ErrorChain=chain)

    def run_commands(self, client: HttpClient, limit: int = 50) -> list[str]:
        """Connect and answer every queued command until the server has none; their types."""
        answered: list[str] = []
        response = self.connect(client, self.report_message("Idle"))
        for _ in range(limit):
            command = self.command_of(response)
            if command is None:
                return answered
            answered.append(command["Command"]["RequestType"])
            response = self.connect(client, self.answer(command))
        raise RuntimeError(f"more than {limit} commands queued")

    def _answer_DeviceInformation(self, body: dict[str, Any]) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "UDID": self.udid,
            "SerialNumber": self.serial,
            "ProductName": self.product_name,
            "OSVersion": self.os_version,
            "IsSupervised": self.secrets.supervised,
        }
        if self.secrets.apple_silicon is not None:
            facts["IsAppleSilicon"] = self.secrets.apple_silicon
        if self.state.shared_ipad is not None:
            facts["IsMultiUser"] = self.state.shared_ipad
        facts.update({k: v for k, v in (("IMEI", self.state.imei), ("MEID", self.state.meid)) if v})
        asked = body.get("Queries") or list(facts)
        return {"QueryResponses": {k: v for k, v in facts.items() if k in asked}}

    def _answer_ClearPasscode(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("UnlockToken") != self.unlock_token:
            raise _Refuse(12021, "The unlock token is invalid.")
        self.secrets.passcode_cleared += 1
        return {}

    def _mac_only(self, silicon: bool) -> None:
        if self.secrets.apple_silicon is not silicon:
            raise _Refuse(12078, "This command is not supported on this device.")

    def _answer_SetRecoveryLock(self, body: dict[str, Any]) -> dict[str, Any]:
        self._mac_only(True)
        current = self.secrets.recovery_lock
        if current is not None and body.get("CurrentPassword") != current:
            raise _Refuse(12101, "The current Recovery Lock password is incorrect.")
        self.secrets.recovery_lock = body["NewPassword"] or None
        return {}

    def _answer_VerifyRecoveryLock(self, body: dict[str, Any]) -> dict[str, Any]:
        self._mac_only(True)
        return {"PasswordVerified": body.get("Password") == self.secrets.recovery_lock}

    def _answer_SetFirmwarePassword(self, body: dict[str, Any]) -> dict[str, Any]:
        self._mac_only(False)
        current = self.secrets.firmware_password
        changed = current is None or body.get("CurrentPassword") == current
        if changed:
            self.secrets.firmware_password = body["NewPassword"] or None
        return {"SetFirmwarePassword": {"PasswordChanged": changed}}

    def _answer_VerifyFirmwarePassword(self, body: dict[str, Any]) -> dict[str, Any]:
        self._mac_only(False)
        verified = body.get("Password") == self.secrets.firmware_password
        return {"VerifyFirmwarePassword": {"PasswordVerified": verified}}

    def _answer_ActivationLockBypassCode(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.secrets.supervised:
            raise _Refuse(12081, "The device is not supervised.")
        return {"ActivationLockBypassCode": self.secrets.bypass_code}

    def _answer_SecurityInfo(self, body: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"FDE_Enabled": self.secrets.filevault_key is not None}
        cert = self.secrets.escrow_certificate
        if self.secrets.filevault_key is not None and cert is not None:
            info["FDE_HasPersonalRecoveryKey"] = True
            info["FDE_PersonalRecoveryKeyCMS"] = _envelope(self.secrets.filevault_key, cert)
            info["FDE_PersonalRecoveryKeyDeviceKey"] = self.serial
        return {"SecurityInfo": info}

    def _answer_RotateFileVaultKey(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.secrets.filevault_key is None:
            raise _Refuse(12090, "FileVault is not enabled.")
        if body.get("FileVaultUnlock", {}).get("Password") != self.secrets.filevault_key:
            raise _Refuse(12091, "The FileVault password or recovery key is incorrect.")
        self.secrets.filevault_key = _recovery_key()
        reply = x509.load_der_x509_certificate(body["ReplyEncryptionCertificate"])
        return {"RotateResult": {"EncryptedNewRecoveryKey": _envelope(self.secrets.filevault_key, reply)}}

    # -- the device actions (russet.mdm.actions) --------------------------------------------

    def _answer_EnableLostMode(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.secrets.supervised:
            raise _Refuse(12081, "The device is not supervised.")
        self.state.lost_mode = {k: v for k, v in body.items() if k != "RequestType"}
        return {}

    def _answer_DisableLostMode(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.state.lost_mode is None:
            raise _Refuse(12067, "The device is not in Lost Mode.")
        self.state.lost_mode = None
        return {}

    def _answer_DeviceLocation(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.state.lost_mode is None:
            raise _Refuse(12067, "The device is not in Lost Mode.")
        latitude, longitude = self.state.location
        return {
            "Latitude": latitude,
            "Longitude": longitude,
            "HorizontalAccuracy": 5.0,
            "VerticalAccuracy": 3.0,
            "Altitude": 35.0,
            "Speed": 0.0,
            "Course": -1.0,
            "Timestamp": "2026-12-07T06:00:00Z",
        }

    def _answer_PlayLostModeSound(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.state.lost_mode is None:
            raise _Refuse(12067, "The device is not in Lost Mode.")
        self.state.sounds_played += 1
        return {}

    def _answer_DeviceLock(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.locked = {k: v for k, v in body.items() if k != "RequestType"}
        return {"MessageResult": "Success"} if "Message" in body or "PhoneNumber" in body else {}

    def _answer_EraseDevice(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.secrets.apple_silicon is False and "PIN" not in body:
            raise _Refuse(12001, "A PIN is required to erase this Mac.")
        self.state.erased = {k: v for k, v in body.items() if k != "RequestType"}
        return {}

    def _answer_UserList(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Users": [dict(u) for u in self.state.users]}

    def _answer_LogOutUser(self, body: dict[str, Any]) -> dict[str, Any]:
        for user in self.state.users:
            user["IsLoggedIn"] = False
        return {}

    def _answer_DeleteUser(self, body: dict[str, Any]) -> dict[str, Any]:
        found = [u for u in self.state.users if u["UserName"] == body.get("UserName")]
        if not found:
            raise _Refuse(12072, "The user does not exist.")
        if found[0]["HasDataToSync"] and not body.get("ForceDeletion"):
            raise _Refuse(12073, "The user has data to sync.")
        self.state.users.remove(found[0])
        return {}

    def _answer_ScheduleOSUpdateScan(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.scans += 1
        return {}

    def _answer_AvailableOSUpdates(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"AvailableOSUpdates": [dict(u) for u in self.state.updates]}

    def _answer_ScheduleOSUpdate(self, body: dict[str, Any]) -> dict[str, Any]:
        results = []
        for update in body["Updates"]:
            known = {u["ProductKey"]: u for u in self.state.updates}
            key = update.get("ProductKey") or next(
                (k for k, u in known.items() if u["Version"] == update.get("ProductVersion")), None
            )
            if key is None or key not in known:
                raise _Refuse(12069, "The update is not available.")
            self.state.scheduled[key] = update["InstallAction"]
            results.append({"ProductKey": key, "InstallAction": update["InstallAction"], "Status": "Idle"})
        return {"UpdateResults": results}

    def _answer_OSUpdateStatus(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "OSUpdateStatus": [
                {
                    "ProductKey": key,
                    "IsDownloaded": True,
                    "DownloadPercentComplete": 1.0,
                    "Status": "Installing",
                }
                for key in self.state.scheduled
            ]
        }


class _Refuse(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _recovery_key() -> str:
    """A personal recovery key as macOS shows one: six groups of four."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(alphabet[b % 32] for b in os.urandom(4)) for _ in range(6))


def _envelope(key: str, cert: x509.Certificate) -> bytes:
    """CMS EnvelopedData holding `key`, encrypted to `cert` (what FDE_PersonalRecoveryKeyCMS is)."""
    return pkcs7.PKCS7EnvelopeBuilder().set_data(key.encode()).add_recipient(cert).encrypt(
        serialization.Encoding.DER, []
    )
