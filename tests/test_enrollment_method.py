"""Every device says how it enrolled (the profile /mdm/enroll handed out: ota, ade, ade_signin,
account) and who signed in for it: device facts and smart groups, the API device view,
`russet device show`, the console's device page, and the enrollment request listing."""

from __future__ import annotations

import json
import plistlib
from collections.abc import Callable, Collection
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient

from russet.enrollment.tokens import EnrollmentRequestLog, Person
from russet.kernel.errors import Invalid
from russet.mdm.facts import MdmDeviceFacts
from russet.pki import fingerprint
from russet.runtime import Russet
from simulators.ade import AdeDevice, TestAppleCA
from simulators.device import Enrollment, SimDevice
from tests.conftest import PUBLIC_URL, new_profile
from tests.test_console import log_in

ENROLL_URL = f"{PUBLIC_URL}/mdm/enroll"


def challenge_of(profile: bytes) -> str:
    for payload in plistlib.loads(profile)["PayloadContent"]:
        if payload["PayloadType"] == "com.apple.security.scep":
            return str(payload["PayloadContent"]["Challenge"])
    raise AssertionError("no SCEP payload")


class NoAbm:
    def connections_by_serial(self, serials: Collection[str] | None) -> dict[str, tuple[str, ...]]:
        return {}


def facts_of(russet: Russet, device_ids: Collection[str] | None) -> dict[str, dict[str, Any]]:
    """The MDM core's device facts (what smart groups test), the enrollment log as its ports."""
    log = EnrollmentRequestLog(russet.storage.engine)
    found = MdmDeviceFacts(russet.storage.engine, abm=NoAbm(), ade=log, origins=log).facts(device_ids)
    return {f["device_id"]: f for f in found}


@pytest.fixture
def fleet(ade: tuple[Russet, TestClient], apple: TestAppleCA) -> dict[str, str]:
    """Four devices, each enrolled another way: name -> device id."""
    russet, client = ade
    token = russet.enrollment.create_token()["token"]
    ota = SimDevice(
        Enrollment.from_profile(client.get("/mdm/enroll", params={"token": token}).content, client),
        path_only=True,
    )
    ota.enroll(client)
    ade_device = AdeDevice(apple).enroll(client, ENROLL_URL)
    # ADE with sign-in: the profile handed out after the person signed in (its page is another
    # change's); recorded as /mdm/enroll's log records it, then installed by the device.
    profile = russet.enrollment.profile(signed=False)
    signed_in = SimDevice(Enrollment.from_profile(profile, client), path_only=True)
    EnrollmentRequestLog(russet.storage.engine).record(
        "ade_signin",
        challenge=challenge_of(profile),
        device={"udid": signed_in.udid, "serial_number": signed_in.serial, "product": "iPhone15,2"},
        person=Person("sub-7", "ana@example.com", "Ana Lima"),
    )
    signed_in.enroll(client)
    written = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)  # `enrollment profile`
    written.enroll(client)
    return {"ota": ota.udid, "ade": ade_device.udid, "ade_signin": signed_in.udid, "written": written.udid}


def test_device_facts_and_smart_groups_know_the_method_and_the_person(
    ade: tuple[Russet, TestClient], fleet: dict[str, str]
) -> None:
    russet, _ = ade
    facts = facts_of(russet, None)
    assert {name: facts[udid]["enrollment_method"] for name, udid in fleet.items()} == {
        "ota": "ota",
        "ade": "ade",
        "ade_signin": "ade_signin",
        "written": None,
    }
    assert facts[fleet["ade_signin"]]["enrolled_by"] == "ana@example.com"
    assert facts[fleet["ade"]]["enrolled_by"] is None
    some = facts_of(russet, [fleet["ade_signin"], fleet["ota"]])
    assert set(some) == {fleet["ade_signin"], fleet["ota"]}
    assert some[fleet["ade_signin"]]["enrollment_method"] == "ade_signin"
    assert some[fleet["ota"]]["enrollment_method"] == "ota"

    russet.groups.create("Signed in", query='enrollment_method = "ADE_SIGNIN"')
    assert russet.groups.show("Signed in")["members"] == [fleet["ade_signin"]]
    russet.groups.create("Ana's", query='enrolled_by ~ "ana@"')
    assert russet.groups.show("Ana's")["members"] == [fleet["ade_signin"]]
    russet.groups.create("Any ADE", query='enrollment_method ~ "ade"')
    assert set(russet.groups.show("Any ADE")["members"]) == {fleet["ade"], fleet["ade_signin"]}
    assert russet.groups.preview("enrollment_method = null")["devices"] == [fleet["written"]]
    with pytest.raises(Invalid, match="enrollment_method is one of ota, ade, ade_signin, account"):
        russet.groups.create("Typo", query='enrollment_method = "ade-signin"')


def test_the_api_cli_and_console_show_it(
    ade: tuple[Russet, TestClient],
    fleet: dict[str, str],
    invoke_cli: Callable[..., Result],
) -> None:
    russet, client = ade
    key = russet.access.create_key("alex")
    headers = {"Authorization": f"Bearer {key}"}
    shown = client.get(f"/api/v1/devices/{fleet['ade_signin']}", headers=headers).json()
    assert (shown["enrollment_method"], shown["enrolled_by"]) == ("ade_signin", "ana@example.com")
    shown = client.get(f"/api/v1/devices/{fleet['written']}", headers=headers).json()
    assert (shown["enrollment_method"], shown["enrolled_by"]) == (None, None)
    listed = client.get("/api/v1/enrollment/requests", headers=headers).json()
    assert [(r["method"], r["person_email"]) for r in listed] == [
        ("ade_signin", "ana@example.com"),
        ("ade", None),
        ("ota", None),
    ]

    result = invoke_cli("device", "show", fleet["ade_signin"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["enrollment_method"], data["enrolled_by"]) == ("ade_signin", "ana@example.com")
    result = invoke_cli("device", "show", fleet["ota"])
    assert result.exit_code == 0 and "enrollment_method" in result.output and "ota" in result.output
    result = invoke_cli("enrollment", "requests")
    assert result.exit_code == 0 and "SIGNED IN" in result.output
    [row] = [line for line in result.output.splitlines() if "ade_signin" in line]
    assert "ana@example.com" in row

    log_in(client, key)
    page = client.get(f"/console/devices/{fleet['ade_signin']}").text
    assert "Automated Device Enrollment with sign-in" in page and "ana@example.com" in page
    page = client.get(f"/console/devices/{fleet['written']}").text
    assert "<dt>Enrolled through</dt><dd>unknown</dd>" in page


def test_the_person_is_escaped_on_the_console(ade: tuple[Russet, TestClient]) -> None:
    russet, client = ade
    profile = russet.enrollment.profile(signed=False)
    device = SimDevice(Enrollment.from_profile(profile, client), path_only=True)
    EnrollmentRequestLog(russet.storage.engine).record(
        "account", challenge=challenge_of(profile), person=Person("<b>x</b>", None)
    )
    device.enroll(client)
    assert russet.devices.show_device(device.udid)["enrolled_by"] == "<b>x</b>"  # the id, no email
    log_in(client, russet.access.create_key("alex"))
    page = client.get(f"/console/devices/{device.udid}").text
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def test_a_renewed_identity_keeps_its_origin(ade: tuple[Russet, TestClient]) -> None:
    russet, client = ade
    profile = russet.enrollment.profile(signed=False)
    device = SimDevice(Enrollment.from_profile(profile, client), path_only=True)
    EnrollmentRequestLog(russet.storage.engine).record(
        "ade_signin", challenge=challenge_of(profile), person=Person("sub-9", "bo@example.com")
    )
    device.enroll(client)
    first = fingerprint(device.enrollment.certificate)
    for _ in range(2):  # A -> B -> C by SCEP RenewalReq, each seen at a check-in
        device.enrollment.renew(client)
        assert device.check_in(client, device.token_update_message()).status_code == 200
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None and row["identity_fp"] not in (None, first)
    assert facts_of(russet, [device.udid])[device.udid]["enrollment_method"] == "ade_signin"
    assert facts_of(russet, None)[device.udid]["enrolled_by"] == "bo@example.com"
    shown = russet.devices.show_device(device.udid)
    assert (shown["enrollment_method"], shown["enrolled_by"]) == ("ade_signin", "bo@example.com")
