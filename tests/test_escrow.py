"""Escrow end to end with simulated devices (issue #15 items 2-6): ClearPasscode with the escrowed
UnlockToken; Recovery Lock / firmware password set, verified, shown and rotated; the FileVault
recovery key escrowed from its CMS envelope, shown (recorded) and rotated; the Activation Lock
bypass code escrowed and sent to the simulated Apple service through the gateway (ledger rows,
disconnect and purge); and no secret in the clear in any table row or log line."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.apns.certificate import create_push_csr
from russet.app import create_app
from russet.apple.connections import Disconnected
from russet.apple.tables import ledger
from russet.config import Settings
from russet.escrow import filevault, passwords
from russet.kernel.errors import Conflict, Invalid, NotFound, Refused
from russet.runtime import Russet
from russet.storage import rotation
from russet.storage.db import reading
from russet.tables import metadata
from russet.wiring.sealed import SEALED_COLUMNS
from simulators.activation_lock import ActivationLockSimulator
from simulators.apns import FakeAppleCA
from simulators.device import DeviceSecrets, Enrollment, SimDevice
from simulators.tls import make_server_tls
from tests.conftest import PUBLIC_URL, TOPIC, new_profile

ADMIN = "cli:tests"


def mac(russet: Russet, client: TestClient, *, apple_silicon: bool) -> SimDevice:
    """An enrolled Mac that has answered DeviceInformation (so Russet knows which password it has)."""
    device = SimDevice(
        Enrollment.from_profile(new_profile(russet)),
        path_only=True,
        product_name="Mac14,2" if apple_silicon else "MacBookPro16,1",
        os_version="15.1",
        secrets=DeviceSecrets(apple_silicon=apple_silicon),
    )
    device.enroll(client)
    russet.devices.send_command([device.udid], {"RequestType": "DeviceInformation"}, created_by="tests")
    # Supervised: Russet asks for the bypass code at once, before Activation Lock can be turned on.
    assert settle(device, client) == ["DeviceInformation", "ActivationLockBypassCode"]
    listed = russet.escrow.secrets(device.udid)["secrets"]
    assert [(s["kind"], s["state"]) for s in listed] == [("bypass-code", "current")]
    return device


def settle(device: SimDevice, client: TestClient) -> list[str]:
    """Answer commands until none is left (an answer may queue the next one: a verification)."""
    answered: list[str] = []
    while done := device.run_commands(client):
        answered += done
    return answered


def every_row(russet: Russet) -> str:
    """Every value of every row of every table, as text, for looking for secrets in the clear."""
    russet.ledger.flush()
    out: list[str] = []
    with reading(russet.storage.engine) as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    out.append(value.hex() + repr(value) if isinstance(value, bytes) else str(value))
    return "\n".join(out)


def test_clear_passcode_uses_the_escrowed_unlock_token(
    russet: Russet, client: TestClient, device: SimDevice, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    device.enroll(client)
    assert russet.escrow.secrets(device.udid)["unlock_token"] == {"escrowed": True}
    queued = russet.escrow.clear_passcode(device.udid, by="tests")
    assert device.run_commands(client) == ["ClearPasscode"]
    assert device.secrets.passcode_cleared == 1  # the device accepted the token it sent
    shown = russet.devices.show_command(queued["command_uuid"])
    assert shown["status"] == "acknowledged"
    token = device.unlock_token
    rows = every_row(russet)
    assert token.hex() not in rows and repr(token) not in rows  # the body is sealed at rest
    assert token.hex() not in caplog.text

    # A device that sent no UnlockToken: refused with the reason, nothing queued.
    other = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
    for msg in (other.authenticate_message(), other.token_update_message()):
        msg.pop("UnlockToken", None)
        assert other.check_in(client, msg).status_code == 200
    with pytest.raises(Refused, match="no UnlockToken"):
        russet.escrow.clear_passcode(other.udid, by="tests")
    assert russet.devices.device_commands(other.udid)["commands"] == []


def test_recovery_lock_is_set_verified_shown_and_rotated(
    russet: Russet, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    device = mac(russet, client, apple_silicon=True)
    with pytest.raises(Refused, match="Apple silicon"):
        russet.escrow.rotate(device.udid, "firmware-password", by="tests")
    first = russet.escrow.rotate(device.udid, "recovery-lock", by="tests")
    assert first["state"] == "pending"
    with pytest.raises(Conflict, match="already waiting"):  # one change in flight at a time
        russet.escrow.rotate(device.udid, "recovery-lock", by="tests")
    assert settle(device, client) == ["SetRecoveryLock", "VerifyRecoveryLock"]
    listed = russet.escrow.secrets(device.udid)["secrets"]
    assert [(s["kind"], s["state"]) for s in listed] == [
        ("bypass-code", "current"),
        ("recovery-lock", "current"),
    ]
    assert listed[1]["verified_at"] is not None
    set_once = device.secrets.recovery_lock
    assert set_once is not None and len(set_once) == 24

    shown = russet.escrow.view(
        device.udid, "recovery-lock", viewer=ADMIN, reason="ticket 42: Mac in recovery"
    )
    assert shown["secret"] == set_once
    assert shown["rotation"]["queued"] is True  # rotated after each view
    assert russet.escrow.views(device.udid)[0] == {
        "at": shown["viewed_at"],
        "viewer": ADMIN,
        "device": device.udid,
        "kind": "recovery-lock",
        "reason": "ticket 42: Mac in recovery",
    }
    assert settle(device, client) == ["SetRecoveryLock", "VerifyRecoveryLock"]
    rotated = device.secrets.recovery_lock
    assert rotated not in (None, set_once)
    again = russet.escrow.view(device.udid, "recovery-lock", viewer=ADMIN, reason="check")
    assert again["secret"] == rotated

    # Secrets never in the clear: not in rows (bodies, results, escrow), listings or the log.
    rows = every_row(russet)
    commands = str(russet.devices.device_commands(device.udid)) + str(
        russet.devices.show_command(first["command_uuid"])
    )
    for secret in (set_once, rotated):
        assert secret not in rows and secret not in caplog.text and secret not in commands
        assert secret not in str(russet.escrow.secrets(device.udid))


def test_firmware_password_on_an_intel_mac(russet: Russet, client: TestClient) -> None:
    device = mac(russet, client, apple_silicon=False)
    russet.escrow.rotate(device.udid, "firmware-password", by="tests")
    assert settle(device, client) == ["SetFirmwarePassword", "VerifyFirmwarePassword"]
    shown = russet.escrow.view(device.udid, "firmware-password", viewer=ADMIN, reason="repair")
    assert shown["secret"] == device.secrets.firmware_password and shown["verified_at"]


def test_filevault_key_is_escrowed_shown_recorded_and_rotated(
    russet: Russet, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    device = mac(russet, client, apple_silicon=True)
    with pytest.raises(NotFound, match="no filevault"):
        russet.escrow.view(device.udid, "filevault", viewer=ADMIN, reason="user locked out")
    device.install_profile(russet.escrow.filevault_profile())
    first_key = device.secrets.filevault_key
    assert first_key is not None
    russet.escrow.fetch(device.udid, "filevault", by="tests")
    assert settle(device, client) == ["SecurityInfo"]
    shown = russet.escrow.view(device.udid, "filevault", viewer=ADMIN, reason="user locked out")
    assert shown["secret"] == first_key  # decrypted from the CMS envelope
    assert shown["rotation"]["queued"] is True
    assert [v["kind"] for v in russet.escrow.views(device.udid)] == ["filevault"]
    assert settle(device, client) == ["RotateFileVaultKey"]
    new_key = device.secrets.filevault_key
    assert new_key not in (None, first_key)  # the Mac accepted the escrowed key to unlock
    assert russet.escrow.view(device.udid, "filevault", viewer=ADMIN, reason="again")["secret"] == new_key
    states = [(s["kind"], s["state"]) for s in russet.escrow.secrets(device.udid)["secrets"]]
    assert states == [("bypass-code", "current"), ("filevault", "current"), ("filevault", "pending")]
    rows = every_row(russet)
    for key in (first_key, new_key):
        assert key not in rows and key not in caplog.text


def test_showing_a_secret_needs_a_reason_and_the_permission(russet: Russet, client: TestClient) -> None:
    device = mac(russet, client, apple_silicon=True)
    russet.escrow.rotate(device.udid, "recovery-lock", by="tests")
    settle(device, client)
    for reason in (None, "  ", "x" * 501, "two\nlines"):
        with pytest.raises(Invalid):
            russet.escrow.view(device.udid, "recovery-lock", viewer=ADMIN, reason=reason)
    with pytest.raises(Refused, match="may not be shown"):
        russet.escrow.view(device.udid, "recovery-lock", viewer="api:nobody", reason="curious")
    with pytest.raises(Invalid, match="unknown secret"):
        russet.escrow.view(device.udid, "pin", viewer=ADMIN, reason="x")
    assert russet.escrow.views(device.udid) == []  # refused views show and record nothing
    assert device.run_commands(client) == []  # and rotate nothing


# -- Activation Lock ------------------------------------------------------------------------------


@pytest.fixture
def apple() -> FakeAppleCA:
    return FakeAppleCA()


@pytest.fixture
def activation_lock(tmp_path: Path, apple: FakeAppleCA) -> Iterator[ActivationLockSimulator]:
    with ActivationLockSimulator(make_server_tls(tmp_path / "al-tls"), apple.pem) as sim:
        yield sim


@pytest.fixture
def server(
    settings: Settings, activation_lock: ActivationLockSimulator, apple: FakeAppleCA, tmp_path: Path
) -> Iterator[Russet]:
    configured = dataclasses.replace(
        settings, activation_lock_url=activation_lock.url, apple_ca_file=str(activation_lock.tls.ca_file)
    )
    russet = Russet.open(configured, apple_backoff=0.01)
    csr = create_push_csr(russet.storage, tmp_path / "push.csr", force=True)
    cert = apple.issue_push_certificate(csr.public_key(), TOPIC)
    russet.push.import_certificate(cert.public_bytes(serialization.Encoding.PEM))
    yield russet
    russet.close()


def _activation_lock_rows(russet: Russet) -> list[dict[str, Any]]:
    russet.ledger.flush()
    with reading(russet.storage.engine) as conn:
        rows = conn.execute(select(ledger).where(ledger.c.service == "activationlock")).all()
    return [dict(r._mapping) for r in rows]


def test_bypass_code_is_escrowed_and_clears_activation_lock_through_the_gateway(
    server: Russet, activation_lock: ActivationLockSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    russet = server
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
        device.enroll(client)
        russet.escrow.fetch(device.udid, "bypass-code", by="tests")
        assert device.run_commands(client) == ["ActivationLockBypassCode"]
    code = device.secrets.bypass_code
    (asked,) = russet.devices.device_commands(device.udid)["commands"]
    revealed = russet.devices.show_command(asked["command_uuid"], reveal=True)  # not a way around view
    assert revealed["result"]["ActivationLockBypassCode"] == "<redacted>"
    shown = russet.escrow.view(device.udid, "bypass-code", viewer=ADMIN, reason="device returned locked")
    assert shown["secret"] == code and shown["rotation"]["queued"] is False
    activation_lock.lock(device.serial, device.product_name, code)

    with pytest.raises(NotFound, match="no Activation Lock connection"):
        russet.run(russet.escrow.clear_activation_lock(device.udid, by="tests"))
    assert activation_lock.requests == []
    russet.escrow.connect_activation_lock("default", "Example School")
    done = russet.run(russet.escrow.clear_activation_lock(device.udid, by="tests"))
    assert done["cleared"] is True and activation_lock.devices[device.serial].cleared
    (request,) = activation_lock.requests
    assert request.status == 200 and request.client_topic == TOPIC  # mutual TLS with the push cert
    assert request.form["escrowKey"] == code and request.query["productType"] == device.product_name

    fields = sorted((r["direction"], r["field"]) for r in _activation_lock_rows(russet))
    assert fields == [("sent", f) for f in sorted(["escrowKey", "guid", "orgName", "productType", "serial"])]
    assert russet.escrow.activation_lock_clears(device.udid)[0]["outcome"] == "cleared"
    assert code not in every_row(russet) and code not in caplog.text  # fingerprints only

    # A wrong code is Apple's refusal, recorded; then disconnect + purge removes the connection's data.
    activation_lock.lock(device.serial, device.product_name, "SOMETHING-ELSE")
    with pytest.raises(Exception, match="answered 400"):
        russet.run(russet.escrow.clear_activation_lock(device.udid, by="tests"))
    ledger_rows = len(_activation_lock_rows(russet))
    assert ledger_rows > 0
    receipt = russet.ledger_admin.disconnect("activationlock", "default", purge=True)
    assert receipt["data_deleted"] == {
        "escrow_activation_lock_clears": 2,
        "escrow_activation_lock": 1,
        "apple_connections": 1,
        "ledger": ledger_rows,  # the fingerprints of what was sent go with the connection
    }
    assert _activation_lock_rows(russet) == []
    assert russet.escrow.activation_lock_clears(device.udid) == []
    assert russet.escrow.activation_lock_connections() == []
    sent = len(activation_lock.requests)
    russet.escrow.connect_activation_lock("default", "Example School")
    russet.connections.disconnect("activationlock", "default", purge=False)
    with pytest.raises(Disconnected):  # a disconnected connection sends nothing
        russet.run(russet.escrow.clear_activation_lock(device.udid, by="tests"))
    assert len(activation_lock.requests) == sent


def test_escrowed_secrets_survive_a_master_key_rotation(
    settings: Settings, russet: Russet, client: TestClient
) -> None:
    device = mac(russet, client, apple_silicon=True)  # its bypass code is escrowed on the way
    russet.close()
    rotation.rotate(settings, SEALED_COLUMNS)
    reopened = Russet.open(settings, migrate_db=False)
    try:
        shown = reopened.escrow.view(device.udid, "bypass-code", viewer=ADMIN, reason="after rotation")
        assert shown["secret"] == device.secrets.bypass_code
    finally:
        reopened.close()


def test_generated_passwords_fit_apples_charset_and_do_not_repeat() -> None:
    made = {passwords.generate() for _ in range(200)}
    assert len(made) == 200
    for password in made:
        groups = password.split("-")
        assert [len(g) for g in groups] == [4] * 5
        assert set("".join(groups)) <= set(passwords.ALPHABET)
        assert all(0x20 <= ord(c) <= 0x7E for c in password)  # what the EFI / recoveryOS prompt takes


def test_a_malformed_filevault_envelope_is_refused_with_the_reason(russet: Russet) -> None:
    identity = filevault.escrow_identity(russet.storage.certificates)
    assert filevault.escrow_identity(russet.storage.certificates)[0] == identity[0]  # made once
    for envelope, why in (
        (None, "missing"),
        ("text", "not data"),
        (b"\x30" * (filevault.MAX_CMS_BYTES + 1), "larger than"),
        (b"not a CMS envelope", "cannot be opened"),
    ):
        with pytest.raises(Invalid, match=why):
            filevault.open_key(envelope, identity)
    other = FakeAppleCA().new_push_identity(TOPIC)[0]  # encrypted to someone else's certificate
    with pytest.raises(Invalid, match="cannot be opened"):
        filevault.open_key(pkcs7_envelope(b"KEY", other), identity)
    assert filevault.open_key(pkcs7_envelope(b" ABCD-EFGH \n", identity[0]), identity) == "ABCD-EFGH"


def pkcs7_envelope(content: bytes, cert: Any) -> bytes:
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(cert)
        .encrypt(serialization.Encoding.DER, [])
    )


def test_a_cellular_devices_imei_and_meid_go_with_the_clear_request(
    server: Russet, activation_lock: ActivationLockSimulator
) -> None:
    russet = server
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
        device.state.imei, device.state.meid = "35 999999 123456 7", "35999999123456"
        device.enroll(client)
        russet.devices.send_command([device.udid], {"RequestType": "DeviceInformation"}, created_by="tests")
        assert settle(device, client) == ["DeviceInformation", "ActivationLockBypassCode"]
    code = device.secrets.bypass_code
    activation_lock.lock(
        device.serial, device.product_name, code, imei="359999991234567", meid="35999999123456"
    )
    russet.escrow.connect_activation_lock("default", "Example School")
    assert russet.run(russet.escrow.clear_activation_lock(device.udid, by="tests"))["cleared"] is True
    (request,) = activation_lock.requests
    assert request.status == 200
    assert (request.query["imei"], request.query["meid"]) == ("359999991234567", "35999999123456")
    fields = sorted(r["field"] for r in _activation_lock_rows(russet))
    assert fields == sorted(["escrowKey", "guid", "orgName", "productType", "serial", "imei", "meid"])
