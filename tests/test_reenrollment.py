"""Takeover of an enrolled device: another identity for a known UDID is accepted only when the
old identity was given up or expired, the new one is bound to the device (ADE), it renews the old
one (SCEP), or an admin opened re-enrollment; otherwise refused (403), recorded, and nothing of
the victim changes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import update

from russet.app import create_app
from russet.cli.main import cli
from russet.config import Settings
from russet.kernel.errors import NotFound
from russet.mdm.tables import enrollments
from russet.runtime import Russet
from russet.storage.db import utcnow
from russet.storage.tables import certificates
from russet.web.errors import status_for
from simulators.ade import AdeDevice, TestAppleCA
from simulators.device import SimDevice
from tests.conftest import PUBLIC_URL


def queue(client: TestClient, headers: dict[str, str], device_id: str) -> str:
    response = client.post(
        "/api/v1/commands",
        json={"devices": [device_id], "command": {"RequestType": "ProfileList"}},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["commands"][0]["command_uuid"])


def impostor(make_device: Any, victim: SimDevice) -> SimDevice:
    """A device with its own fresh identity (from any enrollment profile) claiming the victim's UDID."""
    return make_device(udid=victim.udid, serial=victim.serial)  # type: ignore[no-any-return]


def authenticate(client: TestClient, device: SimDevice) -> Any:
    return device.check_in(client, device.authenticate_message())


def test_plain_takeover_is_refused_and_the_victim_keeps_its_queue(
    client: TestClient, russet: Russet, make_device: Any, api_headers: dict[str, str]
) -> None:
    victim = make_device()
    victim.enroll(client)
    uuid = queue(client, api_headers, victim.udid)
    attacker = impostor(make_device, victim)
    refused = authenticate(client, attacker)
    assert refused.status_code == 403 and "allow-reenroll" in refused.text
    assert attacker.check_in(client, attacker.token_update_message()).status_code == 403
    # Nothing of the victim changed: still enabled, still bound, its command still queued and deliverable.
    shown = russet.storage.enrollments.get(victim.udid)
    assert shown is not None and shown["enabled"]
    assert russet.storage.queue.by_uuid(uuid)["status"] == "queued"  # type: ignore[index]
    cmd = victim.command_of(victim.connect(client, victim.report_message("Idle")))
    assert cmd is not None and cmd["CommandUUID"] == uuid
    assert attacker.connect(client, attacker.report_message("Idle")).status_code == 403
    # Recorded, and visible through the API.
    [row] = client.get("/api/v1/refusals", headers=api_headers).json()
    assert row["device_id"] == victim.udid and row["serial_number"] == victim.serial
    assert row["bound_fp"] == shown["identity_fp"] and row["presented_fp"] != shown["identity_fp"]


def test_refusals_are_listed_by_the_cli(
    client: TestClient, russet: Russet, make_device: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = make_device()
    victim.enroll(client)
    assert authenticate(client, impostor(make_device, victim)).status_code == 403
    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(cli, ["device", "refusals", "--json"])
    assert result.exit_code == 0, result.output
    [row] = __import__("json").loads(result.stdout)
    assert row["device_id"] == victim.udid
    missing = CliRunner().invoke(cli, ["device", "allow-reenroll", "NO-SUCH-DEVICE"])
    assert missing.exit_code != 0 and "no device with id 'NO-SUCH-DEVICE'" in missing.output
    assert "Traceback" not in missing.output
    bad = CliRunner().invoke(cli, ["device", "allow-reenroll", victim.udid, "--for", "soon"])
    assert bad.exit_code != 0 and "--for 'soon'" in bad.output


def test_the_same_identity_re_authenticating_is_a_re_enrollment(
    client: TestClient, russet: Russet, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    uuid = queue(client, api_headers, device.udid)
    device.os_version = "18.2"  # updated and wiped (a body of its own: an exact repeat is a replay)
    assert authenticate(client, device).status_code == 200
    assert russet.storage.queue.by_uuid(uuid)["status"] == "cancelled"  # type: ignore[index]


def test_an_expired_old_identity_may_be_replaced(
    client: TestClient, russet: Russet, make_device: Any
) -> None:
    victim = make_device()
    victim.enroll(client)
    from russet.pki import fingerprint

    with russet.storage.engine.begin() as conn:
        conn.execute(
            update(certificates)
            .where(certificates.c.fingerprint == fingerprint(victim.enrollment.certificate))
            .values(not_after=utcnow() - timedelta(minutes=1))
        )
    successor = impostor(make_device, victim)
    successor.enroll(client)
    assert russet.storage.enrollments.get(victim.udid)["identity_fp"] == fingerprint(  # type: ignore[index]
        successor.enrollment.certificate
    )


def test_an_identity_given_up_by_checkout_may_be_replaced(client: TestClient, make_device: Any) -> None:
    victim = make_device()
    victim.enroll(client)
    checkout = {"MessageType": "CheckOut", "Topic": victim.enrollment.topic, "UDID": victim.udid}
    assert victim.check_in(client, checkout).status_code == 200
    impostor(make_device, victim).enroll(client)


def test_an_admin_opening_admits_one_identity_until_it_expires(
    client: TestClient, russet: Russet, make_device: Any, api_headers: dict[str, str]
) -> None:
    victim = make_device()
    victim.enroll(client)
    opened = client.post(
        f"/api/v1/devices/{victim.udid}/allow-reenroll", json={"for": "2h"}, headers=api_headers
    )
    assert opened.status_code == 200 and opened.json()["uses"] == 1
    impostor(make_device, victim).enroll(client)  # the wiped device, with its new identity
    # One use: the next new identity is refused again.
    assert authenticate(client, impostor(make_device, victim)).status_code == 403
    # An expired opening admits nobody.
    russet.devices.allow_reenroll(victim.udid, "1m")
    with russet.storage.engine.begin() as conn:
        conn.execute(update(enrollments).values(reenroll_until=utcnow() - timedelta(seconds=1)))
    assert authenticate(client, impostor(make_device, victim)).status_code == 403
    with pytest.raises(NotFound, match="no device"):
        russet.devices.allow_reenroll("NO-SUCH-DEVICE")
    missing = client.post("/api/v1/devices/NOPE/allow-reenroll", headers=api_headers)
    assert missing.status_code == 404


def test_open_policy_accepts_a_takeover(settings: Settings, make_device: Any) -> None:
    russet = Russet.open(dataclasses.replace(settings, reenroll_policy="open"))
    try:
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            victim = SimDevice(make_device().enrollment, path_only=True)
            victim.enroll(client)
            impostor(make_device, victim).enroll(client)
    finally:
        russet.close()


def test_reenroll_policy_setting() -> None:
    assert Settings.from_env({}).reenroll_policy == "strict"
    assert Settings.from_env({"RUSSET_REENROLL_POLICY": "open"}).reenroll_policy == "open"
    with pytest.raises(ValueError, match="RUSSET_REENROLL_POLICY must be one of strict, open"):
        Settings.from_env({"RUSSET_REENROLL_POLICY": "lax"})


# -- identities bound to the device: SCEP renewal, ADE ----------------------------------------------


def test_a_renewed_identity_re_authenticates(client: TestClient, russet: Russet) -> None:
    from russet.enrollment.profile import ProfileRequest, build_profile, signed_profile
    from simulators.device import Enrollment
    from tests.conftest import TOPIC

    profile = build_profile(
        ProfileRequest(PUBLIC_URL, TOPIC),
        russet.authority,
        russet.storage.certificates,
        russet.storage.challenges,
    )
    device = SimDevice(
        Enrollment.from_profile(signed_profile(profile, russet.authority), client), path_only=True
    )
    device.enroll(client)
    device.enrollment.renew(client)
    assert device.connect(client, device.report_message("Idle")).status_code == 200
    assert authenticate(client, device).status_code == 200


def test_an_ade_device_re_enrolls_with_the_identity_issued_for_it(
    ade: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = ade
    box = AdeDevice(apple)
    first = box.enroll(client, f"{PUBLIC_URL}/mdm/enroll")
    second = box.enroll(client, f"{PUBLIC_URL}/mdm/enroll")  # wiped, out of the box again
    assert second.enrollment.certificate != first.enrollment.certificate
    assert second.connect(client, second.report_message("Idle")).status_code == 200
    # An identity bought with another device's MachineInfo does not take this one over.
    other = AdeDevice(apple)
    stolen = other.enroll(client, f"{PUBLIC_URL}/mdm/enroll")
    stolen.udid, stolen.serial = box.udid, box.serial
    assert authenticate(client, stolen).status_code == 403


def test_only_a_device_channel_can_be_forgotten_or_opened(russet: Russet) -> None:
    from russet.mdm.channels import Channel
    from russet.mdm.enrollments import DeviceFacts
    from tests.conftest import TOPIC

    udid, fp = "DEVICE-1", "ab" * 32
    russet.storage.enrollments.authenticate(Channel(udid, udid, False, "device"), fp, TOPIC, DeviceFacts())
    russet.storage.enrollments.token_update(
        Channel(udid, udid, False, "device"), fp, TOPIC, b"t", "m", None, False
    )
    user = Channel(f"{udid}:alex", udid, True, "user", "alex", "alex")
    russet.storage.enrollments.token_update(user, fp, TOPIC, b"u", "m", None, False)
    for operation in (russet.devices.forget, russet.devices.allow_reenroll):
        with pytest.raises(NotFound, match="no device") as refused:
            operation(f"{udid}:alex")
        assert status_for(refused.value) == 404
    assert russet.storage.enrollments.get(f"{udid}:alex")["forgotten_at"] is None  # type: ignore[index]
    russet.devices.forget(udid)  # the device and its user channels
    assert russet.storage.enrollments.get(f"{udid}:alex")["forgotten_at"] is not None  # type: ignore[index]


def test_housekeeping_prunes_old_refusals(russet: Russet) -> None:
    from russet.mdm.reenroll import REFUSALS_KEPT, ReenrollmentStore
    from russet.mdm.tables import enrollment_refusals

    store = ReenrollmentStore(russet.storage.engine)
    store.record_refusal("OLD", None, "a" * 64, "b" * 64, "refused")
    store.record_refusal("NEW", None, "c" * 64, "d" * 64, "refused")
    with russet.storage.engine.begin() as conn:
        conn.execute(
            update(enrollment_refusals)
            .where(enrollment_refusals.c.device_id == "OLD")
            .values(at=utcnow() - REFUSALS_KEPT - timedelta(days=1))
        )
    assert russet.housekeeping()["enrollment_refusals"] == 1
    assert [r["device_id"] for r in russet.devices.refusals()] == ["NEW"]
