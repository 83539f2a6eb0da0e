"""Device actions end to end with simulated devices (issue #15 item 7): Lost Mode (enable, locate,
sound, disable), erase with PIN and the iOS options, lock with message and PIN, Shared iPad users
(list, log out, delete), OS updates (scan, available, schedule, status), through the API, the CLI
and the console: each queued, delivered, its answer parsed and shown; refusals (an unsupervised
device for Lost Mode, a bad or missing PIN, a key the platform lacks) are a 4xx naming the reason
with nothing queued."""

from __future__ import annotations

import os
import plistlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from russet.cli.main import cli
from russet.commands import COMMANDS
from russet.config import Settings
from russet.escrow import filevault
from russet.kernel.errors import Invalid
from russet.mdm.actions import ACTIONS, ANSWER_ROWS
from russet.runtime import Russet
from russet.storage.certificates import CertificateStore
from russet.storage.db import make_engine
from russet.storage.secretbox import SecretBox
from simulators.device import DeviceSecrets, Enrollment, SimDevice
from tests.apple_schema import SCHEMAS, load_schema
from tests.conftest import new_profile
from tests.test_console import csrf_of, log_in
from tests.test_escrow import every_row, mac, settle


def iphone(
    russet: Russet, client: TestClient, *, supervised: bool = True, shared_ipad: bool | None = None
) -> SimDevice:
    """An enrolled iPhone (or iPad) that has answered DeviceInformation, so Russet knows its facts."""
    device = SimDevice(
        Enrollment.from_profile(new_profile(russet)),
        path_only=True,
        product_name="iPad13,1" if shared_ipad else "iPhone15,2",
        secrets=DeviceSecrets(supervised=supervised),
    )
    device.state.shared_ipad = shared_ipad
    device.enroll(client)
    russet.devices.send_command([device.udid], {"RequestType": "DeviceInformation"}, created_by="tests")
    settle(device, client)
    return device


def queued(russet: Russet, device: SimDevice) -> list[str]:
    return [c["request_type"] for c in russet.devices.device_commands(device.udid)["commands"]]


def post(
    client: TestClient, headers: dict[str, str], device: SimDevice, action: str, body: Any = None
) -> Any:
    return client.post(f"/api/v1/devices/{device.udid}/actions/{action}", headers=headers, json=body)


# -- the actions and Apple's schemas ---------------------------------------------------------------


def test_every_action_maps_onto_its_builders_keys_and_answers_onto_the_schema() -> None:
    for action in ACTIONS.values():
        assert action.request_type in COMMANDS
        assert set(action.fields.values()) <= set(action.params()), action.name
    # The rows of each answer are under the array key Apple's schema names in its responsekeys.
    for request_type, key in ANSWER_ROWS.items():
        path = next(
            p
            for p in sorted((SCHEMAS / "mdm" / "commands").glob("*.yaml"))
            if re.search(rf"^  requesttype: {request_type}$", p.read_text(), re.M)
        )
        schema = load_schema(str(path.relative_to(SCHEMAS)))
        arrays = [k["key"] for k in schema["responsekeys"] if k["type"] == "<array>"]
        assert arrays == [key], request_type


def test_the_openapi_document_lists_each_action_with_its_typed_input(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for name in ACTIONS:
        assert f"/api/v1/devices/{{device_id}}/actions/{name}" in paths, name
    erase = paths["/api/v1/devices/{device_id}/actions/erase"]["post"]
    schema = erase["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/Erase")
    components = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert set(components["Erase"]["properties"]) == {
        "pin",
        "preserve_data_plan",
        "disallow_proximity_setup",
        "obliteration_behavior",
    }
    assert components["ScheduleOsUpdate"]["properties"]["install_action"]["enum"][0] == "Default"


# -- Lost Mode ---------------------------------------------------------------------------------------


def test_lost_mode_enable_locate_sound_and_disable_through_the_api(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    device = iphone(russet, client)
    body = {"message": "Please call", "phone_number": "+33 1 23 45 67 89", "footnote": "Russet IT"}
    done = post(client, api_headers, device, "lost-mode", body)
    assert done.status_code == 201, done.text
    assert done.json()["request_type"] == "EnableLostMode"
    assert settle(device, client) == ["EnableLostMode"]
    assert device.state.lost_mode == {
        "Message": "Please call",
        "PhoneNumber": "+33 1 23 45 67 89",
        "Footnote": "Russet IT",
    }

    located = post(client, api_headers, device, "locate")
    assert located.status_code == 201
    assert settle(device, client) == ["DeviceLocation"]
    shown = client.get(f"/api/v1/actions/{located.json()['command_uuid']}", headers=api_headers).json()
    assert shown["status"] == "acknowledged"
    assert shown["answer"]["fields"]["Latitude"] == 48.8584
    assert shown["answer"]["fields"]["Longitude"] == 2.2945
    assert "Status" not in shown["answer"]["fields"] and "UDID" not in shown["answer"]["fields"]
    latest = client.get(f"/api/v1/devices/{device.udid}/actions", headers=api_headers).json()
    assert latest["DeviceLocation"]["fields"]["HorizontalAccuracy"] == 5.0  # the last location kept

    assert post(client, api_headers, device, "play-sound").status_code == 201
    assert post(client, api_headers, device, "disable-lost-mode").status_code == 201
    assert settle(device, client) == ["PlayLostModeSound", "DisableLostMode"]
    assert device.state.sounds_played == 1 and device.state.lost_mode is None

    # Out of Lost Mode the device refuses DeviceLocation: the answer shows the error, no location.
    again = post(client, api_headers, device, "locate").json()["command_uuid"]
    settle(device, client)
    shown = client.get(f"/api/v1/actions/{again}", headers=api_headers).json()
    assert shown["status"] == "error" and shown["answer"] is None


def test_lost_mode_is_refused_with_the_reason_and_nothing_queued(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    unsupervised = iphone(russet, client, supervised=False)
    before = queued(russet, unsupervised)
    refused = post(client, api_headers, unsupervised, "lost-mode", {"message": "lost"})
    assert refused.status_code == 403
    assert "EnableLostMode needs a supervised device" in refused.text
    for action in ("locate", "play-sound", "disable-lost-mode"):
        assert post(client, api_headers, unsupervised, action).status_code == 403
    assert queued(russet, unsupervised) == before

    device = iphone(russet, client)
    before = queued(russet, device)
    empty = post(client, api_headers, device, "lost-mode", {})
    assert empty.status_code == 400 and "Message or PhoneNumber is required" in empty.text
    typo = post(client, api_headers, device, "lost-mode", {"mesage": "x"})
    assert typo.status_code == 422
    assert queued(russet, device) == before

    mac_ = mac(russet, client, apple_silicon=True)
    refused = post(client, api_headers, mac_, "lost-mode", {"message": "x"})
    assert refused.status_code == 403 and "EnableLostMode" in refused.text
    assert post(client, api_headers, device, "lost-mode", None).status_code == 422  # a body is required
    missing = client.post("/api/v1/devices/NOPE/actions/locate", headers=api_headers)
    assert missing.status_code == 404


# -- erase and lock -------------------------------------------------------------------------------


def test_erase_an_intel_mac_needs_a_six_digit_pin_which_is_sealed(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    device = mac(russet, client, apple_silicon=False)
    before = queued(russet, device)
    missing = post(client, api_headers, device, "erase", {})
    assert missing.status_code == 400 and "Intel Mac" in missing.text and "PIN" in missing.text
    short = post(client, api_headers, device, "erase", {"pin": "12345"})
    assert short.status_code == 422
    with pytest.raises(Invalid, match="PIN must be a string of 6 digits"):
        russet.actions.run(device.udid, "erase", {"pin": "12a456"}, by="tests")
    ios_only = post(client, api_headers, device, "erase", {"pin": "424242", "preserve_data_plan": True})
    assert ios_only.status_code == 403 and "PreserveDataPlan" in ios_only.text
    bad_choice = post(
        client, api_headers, device, "erase", {"pin": "424242", "obliteration_behavior": "Nope"}
    )
    assert bad_choice.status_code == 400 and "ObliterationBehavior" in bad_choice.text
    assert queued(russet, device) == before

    done = post(
        client, api_headers, device, "erase", {"pin": "424242", "obliteration_behavior": "DoNotObliterate"}
    )
    assert done.status_code == 201, done.text
    assert settle(device, client) == ["EraseDevice"]
    assert device.state.erased == {"PIN": "424242", "ObliterationBehavior": "DoNotObliterate"}
    shown = client.get(f"/api/v1/commands/{done.json()['command_uuid']}", headers=api_headers)
    assert shown.json()["status"] == "acknowledged" and "424242" not in shown.text
    assert "424242" not in every_row(russet)  # the body is sealed at rest

    # An Apple silicon Mac ignores the PIN: erased without one.
    silicon = mac(russet, client, apple_silicon=True)
    assert post(client, api_headers, silicon, "erase", {}).status_code == 201
    assert settle(silicon, client) == ["EraseDevice"] and silicon.state.erased == {}


def test_erase_an_iphone_preserving_its_data_plan(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    device = iphone(russet, client)
    refused = post(client, api_headers, device, "erase", {"pin": "123456"})
    assert refused.status_code == 403 and "PIN" in refused.text  # iOS has no Find My PIN
    body = {"preserve_data_plan": True, "disallow_proximity_setup": True}
    assert post(client, api_headers, device, "erase", body).status_code == 201
    assert settle(device, client) == ["EraseDevice"]
    assert device.state.erased == {"PreserveDataPlan": True, "DisallowProximitySetup": True}


def test_lock_with_message_and_phone_and_a_mac_pin(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    phone = iphone(russet, client)
    body = {"message": "Return to IT", "phone_number": "555-0100"}
    locked = post(client, api_headers, phone, "lock", body)
    assert locked.status_code == 201
    assert settle(phone, client) == ["DeviceLock"]
    shown = client.get(f"/api/v1/actions/{locked.json()['command_uuid']}", headers=api_headers).json()
    assert shown["answer"] == {"fields": {"MessageResult": "Success"}}
    assert phone.state.locked == {"Message": "Return to IT", "PhoneNumber": "555-0100"}

    device = mac(russet, client, apple_silicon=True)
    before = queued(russet, device)
    refused = post(client, api_headers, device, "lock", {"message": "x"})
    assert refused.status_code == 400 and "6-digit PIN" in refused.text
    assert queued(russet, device) == before
    assert post(client, api_headers, device, "lock", {"message": "x", "pin": "000111"}).status_code == 201
    assert settle(device, client) == ["DeviceLock"]
    assert device.state.locked == {"Message": "x", "PIN": "000111"}
    assert "000111" not in every_row(russet)


# -- Shared iPad users -----------------------------------------------------------------------------


def test_shared_ipad_users_listed_logged_out_and_deleted(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    ipad = iphone(russet, client, shared_ipad=True)
    listed = post(client, api_headers, ipad, "users").json()["command_uuid"]
    assert settle(ipad, client) == ["UserList"]
    shown = client.get(f"/api/v1/actions/{listed}", headers=api_headers).json()["answer"]
    assert [r["UserName"] for r in shown["rows"]] == ["alex@example.org", "sam@example.org"]
    assert shown["columns"][:2] == ["UserName", "FullName"]

    assert post(client, api_headers, ipad, "log-out-user").status_code == 201
    assert settle(ipad, client) == ["LogOutUser"]
    assert not any(u["IsLoggedIn"] for u in ipad.state.users)

    # Sam has data to sync: the device refuses without ForceDeletion, deletes with it.
    kept = post(client, api_headers, ipad, "delete-user", {"user_name": "sam@example.org"}).json()
    settle(ipad, client)
    assert (
        client.get(f"/api/v1/actions/{kept['command_uuid']}", headers=api_headers).json()["status"] == "error"
    )
    forced = post(
        client, api_headers, ipad, "delete-user", {"user_name": "sam@example.org", "force_deletion": True}
    )
    assert forced.status_code == 201
    assert settle(ipad, client) == ["DeleteUser"]
    assert [u["UserName"] for u in ipad.state.users] == ["alex@example.org"]
    post(client, api_headers, ipad, "users")
    settle(ipad, client)
    latest = client.get(f"/api/v1/devices/{ipad.udid}/actions", headers=api_headers).json()
    assert [r["UserName"] for r in latest["UserList"]["rows"]] == ["alex@example.org"]

    # An iPhone that is not a Shared iPad cannot log a user out: refused, nothing queued.
    phone = iphone(russet, client, shared_ipad=False)
    before = queued(russet, phone)
    refused = post(client, api_headers, phone, "log-out-user")
    assert refused.status_code == 403 and "Shared iPad" in refused.text
    assert queued(russet, phone) == before


# -- OS updates --------------------------------------------------------------------------------------


def test_os_updates_scanned_listed_scheduled_and_followed(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    device = mac(russet, client, apple_silicon=True)
    assert post(client, api_headers, device, "os-update-scan", {"force": True}).status_code == 201
    listed = post(client, api_headers, device, "os-updates").json()["command_uuid"]
    assert settle(device, client) == ["ScheduleOSUpdateScan", "AvailableOSUpdates"]
    assert device.state.scans == 1
    rows = client.get(f"/api/v1/actions/{listed}", headers=api_headers).json()["answer"]["rows"]
    assert [(r["ProductKey"], r["Version"]) for r in rows] == [("iOSUpdate22C152", "18.2")]

    before = queued(russet, device)
    neither = post(client, api_headers, device, "schedule-os-update", {"install_action": "InstallASAP"})
    assert neither.status_code == 400 and "ProductKey or ProductVersion" in neither.text
    wrong = post(
        client, api_headers, device, "schedule-os-update", {"product_key": "X", "install_action": "Now"}
    )
    assert wrong.status_code == 400 and "InstallAction" in wrong.text
    assert queued(russet, device) == before

    body = {"product_key": "iOSUpdate22C152", "install_action": "InstallASAP", "priority": "High"}
    scheduled = post(client, api_headers, device, "schedule-os-update", body).json()["command_uuid"]
    status = post(client, api_headers, device, "os-update-status").json()["command_uuid"]
    assert settle(device, client) == ["ScheduleOSUpdate", "OSUpdateStatus"]
    results = client.get(f"/api/v1/actions/{scheduled}", headers=api_headers).json()["answer"]["rows"]
    assert results == [{"ProductKey": "iOSUpdate22C152", "InstallAction": "InstallASAP", "Status": "Idle"}]
    statuses = client.get(f"/api/v1/actions/{status}", headers=api_headers).json()["answer"]["rows"]
    assert statuses[0]["Status"] == "Installing"
    latest = client.get(f"/api/v1/devices/{device.udid}/actions", headers=api_headers).json()
    assert latest["AvailableOSUpdates"]["rows"][0]["ProductKey"] == "iOSUpdate22C152"
    assert latest["OSUpdateStatus"]["rows"][0]["ProductKey"] == "iOSUpdate22C152"

    # ScheduleOSUpdateScan is macOS only.
    phone = iphone(russet, client)
    refused = post(client, api_headers, phone, "os-update-scan", {})
    assert refused.status_code == 403 and "ScheduleOSUpdateScan" in refused.text


# -- the CLI -------------------------------------------------------------------------------------------


def test_cli_actions_validate_before_confirming(run, invoke_cli, russet: Russet, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    device = mac(russet, client, apple_silicon=False)
    before = queued(russet, device)
    code, out = run("device", "erase", device.udid)  # no PIN: refused before any question
    assert code == 1 and "PIN" in out and "Go on?" not in out and len(out.strip().splitlines()) == 1
    code, out = run("device", "erase", device.udid, "--pin", "12")
    assert code == 1 and "6 digits" in out and "Go on?" not in out
    result = CliRunner().invoke(cli, ["device", "erase", device.udid, "--pin", "424242"], input="n\n")
    assert result.exit_code == 1 and "Go on?" in result.output and "Aborted" in result.output
    assert queued(russet, device) == before

    code, out = run("device", "erase", device.udid, "--pin", "424242", "--yes")
    assert code == 0 and "EraseDevice queued" in out
    assert settle(device, client) == ["EraseDevice"] and device.state.erased == {"PIN": "424242"}

    phone = iphone(russet, client, supervised=False)
    code, out = run("device", "lost-mode", phone.udid, "--message", "lost")
    assert code == 1 and "needs a supervised device" in out

    ipad = iphone(russet, client, shared_ipad=True)
    code, out = run("device", "users", ipad.udid)
    assert code == 0 and "UserList queued" in out
    command_uuid = re.search(r"UserList queued for \S+: (\S+)", out).group(1)  # type: ignore[union-attr]
    settle(ipad, client)
    code, out = run("device", "answer", command_uuid)
    assert code == 0 and "USERNAME" in out and "sam@example.org" in out
    code, out = run("device", "delete-user", ipad.udid, "sam@example.org", "--force", "--yes")
    assert code == 0 and "DeleteUser queued" in out
    assert settle(ipad, client) == ["DeleteUser"]
    code, out = run("device", "schedule-os-update", ipad.udid, "--version", "18.2", "--action", "InstallASAP")
    assert code == 0 and "ScheduleOSUpdate queued" in out
    code, out = run("device", "schedule-os-update", ipad.udid, "--version", "18.2", "--action", "Later")
    assert code == 2 and "Later" in out  # not one of the schema's InstallActions
    code, out = run("device", "answers", ipad.udid)
    assert code == 0 and "UserList:" in out and "alex@example.org" in out


# -- the console ---------------------------------------------------------------------------------------


def test_console_actions_with_typed_erase_confirmation(russet: Russet, client: TestClient) -> None:
    key = russet.storage.api_keys.create("alex")
    log_in(client, key)
    device = iphone(russet, client)
    page = client.get(f"/console/devices/{device.udid}")
    assert page.status_code == 200 and 'action="/console/devices/' in page.text
    for name in ACTIONS:
        assert f'/actions/{name}"' in page.text, name
    csrf = csrf_of(page.text)
    base = f"/console/devices/{device.udid}/actions"

    done = client.post(f"{base}/lost-mode", data={"csrf": csrf, "message": "Lost!"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/console/commands/")
    located = client.post(f"{base}/locate", data={"csrf": csrf}, follow_redirects=False)
    assert settle(device, client) == ["EnableLostMode", "DeviceLocation"]
    command_page = client.get(located.headers["location"])
    assert "<h2>Answer</h2>" in command_page.text and "48.8584" in command_page.text
    assert "48.8584" in client.get(f"/console/devices/{device.udid}").text  # the latest location

    before = queued(russet, device)
    data = {"csrf": csrf, "preserve_data_plan": "1"}
    unconfirmed = client.post(f"{base}/erase", data=data)
    assert unconfirmed.status_code == 400 and "type the device" in unconfirmed.text
    wrong = client.post(f"{base}/erase", data={**data, "confirm": "SOMETHING-ELSE"})
    assert wrong.status_code == 400
    refused = client.post(f"{base}/erase", data={**data, "pin": "123456", "confirm": device.serial})
    assert refused.status_code == 403 and "PIN" in refused.text  # checked before the confirmation
    assert queued(russet, device) == before
    erased = client.post(f"{base}/erase", data={**data, "confirm": device.serial}, follow_redirects=False)
    assert erased.status_code == 303
    assert settle(device, client) == ["EraseDevice"] and device.state.erased == {"PreserveDataPlan": True}

    unsupervised = iphone(russet, client, supervised=False)
    page = client.post(
        f"/console/devices/{unsupervised.udid}/actions/lost-mode", data={"csrf": csrf, "message": "x"}
    )
    assert page.status_code == 403 and "needs a supervised device" in page.text
    assert client.post(f"{base}/bogus", data={"csrf": csrf}).status_code == 404
    assert client.post(f"{base}/locate", data={"csrf": "forged"}).status_code == 403


def test_console_lists_escrowed_secrets_and_shows_one_recorded_and_rotated(
    russet: Russet, client: TestClient
) -> None:
    key = russet.storage.api_keys.create("alex")
    log_in(client, key)
    device = mac(russet, client, apple_silicon=True)
    russet.escrow.rotate(device.udid, "recovery-lock", by="tests")
    settle(device, client)
    password = device.secrets.recovery_lock
    assert password is not None
    page = client.get(f"/console/devices/{device.udid}")
    assert "Escrowed secrets" in page.text and "recovery-lock" in page.text and "bypass-code" in page.text
    assert password not in page.text and device.secrets.bypass_code not in page.text
    csrf = csrf_of(page.text)
    view = f"/console/devices/{device.udid}/secrets/recovery-lock/view"

    no_reason = client.post(view, data={"csrf": csrf, "reason": " "})
    assert no_reason.status_code == 400 and "reason is required" in no_reason.text
    assert russet.escrow.views(device.udid) == []
    shown = client.post(view, data={"csrf": csrf, "reason": "user locked out"})
    assert shown.status_code == 200 and password in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert "A new one is being set now" in shown.text
    views = russet.escrow.views(device.udid)
    assert [(v["viewer"], v["reason"]) for v in views] == [("api:alex", "user locked out")]
    assert settle(device, client) == ["SetRecoveryLock", "VerifyRecoveryLock"]  # rotated after the view
    assert device.secrets.recovery_lock != password

    # A revoked key's session is over: the console asks to log in again, nothing is shown.
    russet.storage.api_keys.revoke("alex")
    again = client.post(view, data={"csrf": csrf, "reason": "again"}, follow_redirects=False)
    assert again.status_code == 303 and len(russet.escrow.views(device.udid)) == 1


# -- the FileVault escrow certificate, made by two processes at once (issue #15) ------------------


def test_two_processes_making_the_filevault_certificate_at_once_end_with_one(
    settings: Settings, migrated: None
) -> None:
    engines = [make_engine(settings.database_url) for _ in range(2)]  # two processes' worth
    box = SecretBox.load(settings.data_dir, settings.master_key)
    stores = [CertificateStore(engine, box) for engine in engines]
    both_made = threading.Barrier(2, timeout=30)

    def make() -> Any:
        made = filevault.make_escrow_identity()
        both_made.wait()  # neither inserts before both have made one: the race, every time
        return made

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda store: store.sole_identity(filevault.CERT_KIND, make), stores))
    try:
        assert got[0][0] == got[1][0]  # both use the same certificate...
        assert stores[0].count(filevault.CERT_KIND) == 1  # ...and only it is kept
        russet = Russet.open(settings)
        try:
            cert, _ = filevault.escrow_identity(russet.storage.certificates)
            assert cert == got[0][0]
            profile = plistlib.loads(russet.escrow.filevault_profile())
            der = profile["PayloadContent"][0]["PayloadContent"]
            assert der == cert.public_bytes(serialization.Encoding.DER)
        finally:
            russet.close()
    finally:
        for engine in engines:
            engine.dispose()


def test_a_filevault_certificate_made_before_claims_is_kept(russet: Russet) -> None:
    cert, key = filevault.make_escrow_identity()
    russet.storage.certificates.add(filevault.CERT_KIND, cert, key)  # as earlier releases made it
    assert filevault.escrow_identity(russet.storage.certificates)[0] == cert
    assert russet.storage.certificates.count(filevault.CERT_KIND) == 1


def test_an_update_that_needs_the_bootstrap_token_gets_the_escrowed_one(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    """Issue #15 item 2, checked: an Apple silicon Mac installing an update that needs its bootstrap
    token (AvailableOSUpdates `RequiresBootstrapToken`) asks for it with GetBootstrapToken, and
    is answered with the token it escrowed (README "Bootstrap tokens")."""
    device = mac(russet, client, apple_silicon=True)
    device.state.updates[0].update(
        ProductKey="macOSUpdate24C101", Version="15.2", RequiresBootstrapToken=True
    )
    token = os.urandom(40)
    escrow = {"MessageType": "SetBootstrapToken", "UDID": device.udid, "BootstrapToken": token}
    assert device.check_in(client, escrow).status_code == 200
    listed = post(client, api_headers, device, "os-updates").json()["command_uuid"]
    settle(device, client)
    (update,) = client.get(f"/api/v1/actions/{listed}", headers=api_headers).json()["answer"]["rows"]
    assert update["RequiresBootstrapToken"] is True
    body = {"product_key": update["ProductKey"], "install_action": "InstallASAP"}
    assert post(client, api_headers, device, "schedule-os-update", body).status_code == 201
    assert settle(device, client) == ["ScheduleOSUpdate"]
    asked = device.check_in(client, {"MessageType": "GetBootstrapToken", "UDID": device.udid})
    assert asked.status_code == 200 and plistlib.loads(asked.content) == {"BootstrapToken": token}
    shown = client.get(f"/api/v1/devices/{device.udid}", headers=api_headers)
    assert shown.json()["bootstrap_token"]["escrowed"] is True and token.hex() not in shown.text


def test_console_delete_user_needs_the_typed_confirmation(russet: Russet, client: TestClient) -> None:
    log_in(client, russet.storage.api_keys.create("alex"))
    ipad = iphone(russet, client, shared_ipad=True)
    csrf = csrf_of(client.get(f"/console/devices/{ipad.udid}").text)
    url = f"/console/devices/{ipad.udid}/actions/delete-user"
    data = {"csrf": csrf, "user_name": "sam@example.org", "force_deletion": "1"}
    before = queued(russet, ipad)
    assert client.post(url, data=data).status_code == 400
    assert queued(russet, ipad) == before
    done = client.post(url, data={**data, "confirm": ipad.udid}, follow_redirects=False)
    assert done.status_code == 303
    assert settle(ipad, client) == ["DeleteUser"]
    assert [u["UserName"] for u in ipad.state.users] == ["alex@example.org"]
