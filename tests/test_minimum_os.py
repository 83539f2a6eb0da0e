"""The minimum OS at the door: an ADE device below its platform's minimum is answered Apple's
`com.apple.softwareupdate.required` (or a plain 403 when it cannot act on it) and enrolls once it
runs the version named; the setting through the API and the CLI, audited, bad input refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import insert

from russet.abm.tables import abm_devices, abm_profiles, abm_servers
from russet.access.roles import Role
from russet.blueprints.service import BlueprintSpec
from russet.config import Settings
from russet.enrollment.minimum_os import (
    Minimum,
    device_version,
    platform_of_product,
    shortfall,
    version_key,
)
from russet.enrollment.tables import enrollment_requests
from russet.kernel.errors import NotFound
from russet.runtime import Russet
from russet.scep.tables import scep_challenges
from russet.storage.db import utcnow
from simulators.ade import AdeDevice, TestAppleCA
from tests.apple_schema import load_schema, schema_errors
from tests.conftest import PUBLIC_URL

ENROLL_URL = f"{PUBLIC_URL}/mdm/enroll"
API = "/api/v1/enrollment/minimum-os"


def count(russet: Russet, table: Any) -> int:
    with russet.storage.engine.connect() as conn:
        return len(conn.execute(table.select()).all())


def post(client: TestClient, device: AdeDevice, **info: Any) -> Any:
    return device.post(client, ENROLL_URL, device.signed_request({**device.machine_info(), **info}))


# -- the rule --------------------------------------------------------------------------------------


def test_platforms_and_versions() -> None:
    assert [platform_of_product(p) for p in ("iPhone15,2", "iPad13,1", "iPod9,1", "Mac14,2")] == [
        "ios",
        "ios",
        "ios",
        "macos",
    ]
    assert [platform_of_product(p) for p in ("VirtualMac2,1", "AppleTV14,1", "RealityDevice14,1")] == [
        "macos",
        "tvos",
        "visionos",
    ]
    assert platform_of_product("Watch7,1") == "watchos" and platform_of_product("Toaster1,1") is None
    assert version_key("17.10") > version_key("17.4") and version_key("17.4.0") == version_key("17.4")
    assert device_version("17.4.1") == (17, 4, 1) and device_version("junk") is None
    ios = Minimum("ios", "17.4")
    assert shortfall(ios, "17.4", True) is None and shortfall(ios, "17.10", True) is None
    assert shortfall(None, "12.0", True) is None
    below = shortfall(ios, "17.3.1", True)
    assert below is not None and below.can_update
    unknown = shortfall(ios, None, True)  # no OS_VERSION: older than iOS 17, cannot be asked
    assert unknown is not None and not unknown.can_update and "did not say" in unknown.reason()


# -- at the door -----------------------------------------------------------------------------------


def test_a_device_below_the_minimum_is_asked_to_update_then_enrolls(
    ade: tuple[Russet, TestClient], apple: TestAppleCA, caplog: pytest.LogCaptureFixture
) -> None:
    russet, client = ade
    russet.enrollment.set_minimum_os("ios", "17.4")
    device = AdeDevice(apple, os_version="17.3", version="21D50")
    with caplog.at_level("WARNING", logger="russet.enrollment"):
        answer = post(client, device, OS_VERSION="17.3", VERSION="21D50")
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["code"] == "com.apple.softwareupdate.required"
    assert body["details"] == {"OSVersion": "17.4"}
    assert "iOS 17.4" in body["message"]
    errors = schema_errors(load_schema("mdm/errors/softwareupdate.required.yaml")["payloadkeys"], body)
    assert errors == []
    assert f"serial {device.serial}" in caplog.text and "update to iOS 17.4" in caplog.text
    assert (
        count(russet, enrollment_requests) == 0 and count(russet, scep_challenges) == 0
    )  # nothing handed out

    device.os_version, device.version = "17.4", "21E219"  # Setup Assistant installed it, asks again
    enrolled = device.enroll(client, ENROLL_URL)
    assert russet.storage.enrollments.get(enrolled.udid) is not None
    [request] = russet.enrollment.recent_requests()
    assert request["os_version"] == "17.4" and request["method"] == "ade"


def test_other_platforms_and_newer_devices_are_not_held(
    ade: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = ade
    russet.enrollment.set_minimum_os("macos", "15.2")
    russet.enrollment.set_minimum_os("ios", "17.4")
    assert post(client, AdeDevice(apple), OS_VERSION="17.10").status_code == 200  # 17.10 > 17.4
    mac = AdeDevice(apple, product="Mac14,2")
    answer = post(client, mac, PRODUCT="Mac14,2", OS_VERSION="15.1")
    assert answer.status_code == 403 and answer.json()["details"]["OSVersion"] == "15.2"
    assert post(client, mac, PRODUCT="Mac14,2", OS_VERSION="15.2.0").status_code == 200
    assert post(client, AdeDevice(apple), PRODUCT="AppleTV14,1", OS_VERSION="9.0").status_code == 200


@pytest.mark.parametrize(
    ("info", "says"),
    [
        ({"OS_VERSION": "16.7", "MDM_CAN_REQUEST_SOFTWARE_UPDATE": False}, "runs iOS 16.7"),
        ({"OS_VERSION": "17.1", "MDM_CAN_REQUEST_SOFTWARE_UPDATE": "yes"}, "runs iOS 17.1"),
        ({"OS_VERSION": None, "MDM_CAN_REQUEST_SOFTWARE_UPDATE": None}, "did not say"),
    ],
)
def test_a_device_that_cannot_update_in_setup_is_refused_naming_the_minimum(
    ade: tuple[Russet, TestClient], apple: TestAppleCA, info: dict[str, Any], says: str
) -> None:
    russet, client = ade
    russet.enrollment.set_minimum_os("ios", "17.4")
    device = AdeDevice(apple)
    machine_info = {k: v for k, v in {**device.machine_info(), **info}.items() if v is not None}
    answer = device.post(client, ENROLL_URL, device.signed_request(machine_info))
    assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/plain")
    assert "requires iOS 17.4 or later" in answer.text and says in answer.text
    assert count(russet, enrollment_requests) == 0


def test_ota_enrollment_is_not_checked(ade: tuple[Russet, TestClient]) -> None:
    russet, client = ade
    russet.enrollment.set_minimum_os("ios", "99")
    token = russet.enrollment.create_token()["token"]
    assert client.get("/mdm/enroll", params={"token": token}).status_code == 200


# -- the setting -----------------------------------------------------------------------------------


def test_api_sets_lists_and_clears_minimums_admin_only_and_audited(
    client: TestClient, russet: Russet
) -> None:
    admin = {"Authorization": f"Bearer {russet.access.create_key('alex')}"}
    operator = {"Authorization": f"Bearer {russet.access.create_key('op', Role.OPERATOR)}"}
    assert client.get(API, headers=admin).json() == []
    answer = client.put(f"{API}/iOS", headers=admin, json={"version": " 17.4 "})
    assert answer.status_code == 200 and answer.json() == {
        "platform": "ios",
        "version": "17.4",
        "blueprint": None,
    }
    assert client.put(f"{API}/macos", headers=admin, json={"version": "15.2"}).status_code == 200
    assert client.get(API, headers=operator).json() == [
        {"platform": "ios", "version": "17.4", "blueprint": None},
        {"platform": "macos", "version": "15.2", "blueprint": None},
    ]
    assert client.put(f"{API}/ios", headers=operator, json={"version": "18"}).status_code == 403
    for platform, version, says in [
        ("android", "14", "unknown platform 'android'"),
        ("ios", "17.x", "'17.x' is not an OS version"),
        ("ios", "", "is not an OS version"),
        ("ios", "1.2.3.4", "is not an OS version"),
    ]:
        refused = client.put(f"{API}/{platform}", headers=admin, json={"version": version})
        assert refused.status_code == 400 and says in refused.json()["detail"], refused.text
    assert client.put(f"{API}/ios", headers=admin, json={"version": "1" * 40}).status_code == 422
    assert client.get(API, headers=admin).json()[0]["version"] == "17.4"  # untouched
    cleared = client.delete(f"{API}/ios", headers=admin).json()
    assert cleared == {"platform": "ios", "version": None, "blueprint": None}
    missing = client.delete(f"{API}/ios", headers=admin)
    assert missing.status_code == 404 and "no minimum OS is set for ios" in missing.json()["detail"]
    assert client.get(API, headers=admin).json() == [
        {"platform": "macos", "version": "15.2", "blueprint": None}
    ]
    audited = [(r["action"], r["target"], r["status"]) for r in russet.access.audit_rows()]
    assert ("PUT /api/v1/enrollment/minimum-os/{platform}", "platform=iOS", 200) in audited
    assert ("DELETE /api/v1/enrollment/minimum-os/{platform}", "platform=ios", 200) in audited
    assert not any(action.startswith("GET") for action, _, _ in audited)


def test_cli_sets_lists_and_clears_minimums(invoke_cli: Callable[..., Result], settings: Settings) -> None:
    def run(*args: str) -> tuple[int, str]:
        result = invoke_cli("enrollment", "minimum-os", *args)
        return result.exit_code, result.output

    assert run() == (0, "no minimum OS set\n")
    code, out = run("ios", "17.4")
    assert code == 0 and "ios: ADE devices below 17.4 are asked to update" in out
    code, out = run("macos", "15.2", "--json")
    assert code == 0 and json.loads(out) == {"platform": "macos", "version": "15.2", "blueprint": None}
    code, out = run("--json")
    assert [(m["platform"], m["version"]) for m in json.loads(out)] == [("ios", "17.4"), ("macos", "15.2")]
    code, out = run()
    assert code == 0 and "ios" in out and "17.4" in out and "MINIMUM" in out
    for args, says in [
        (("android", "14"), "unknown platform 'android'"),
        (("ios", "17.x"), "'17.x' is not an OS version"),
        (("ios",), "give either a VERSION to set or --clear"),
        (("ios", "17.4", "--clear"), "give either a VERSION to set or --clear"),
        (("--clear",), "name a PLATFORM"),
        (("tvos", "--clear"), "no minimum OS is set for tvos"),
    ]:
        code, out = run(*args)
        assert code != 0 and says in out and "Traceback" not in out, (args, out)
    code, out = run("ios", "--clear")
    assert code == 0 and out == "ios: no minimum OS\n"
    assert json.loads(run("--json")[1]) == [{"platform": "macos", "version": "15.2", "blueprint": None}]
    russet = Russet.open(settings)
    try:
        audited = [(r["action"], r["target"], r["outcome"]) for r in russet.access.audit_rows()]
    finally:
        russet.close()
    assert ("cli enrollment minimum-os", "ios 17.4", "ok") in audited
    assert ("cli enrollment minimum-os", "ios --clear", "ok") in audited
    assert ("cli enrollment minimum-os", "ios 17.x", "refused") in audited
    assert len(audited) == 6  # the listings and the usage errors are not recorded


# -- a blueprint's minimum -------------------------------------------------------------------------


def assign_profile_naming(russet: Russet, serial: str, blueprint_id: int) -> None:
    """ABM/ASM lists `serial` with an ADE profile that names the blueprint (as a sync leaves it)."""
    now = utcnow()
    with russet.storage.engine.begin() as conn:
        conn.execute(insert(abm_servers).values(name="main", certificate_der=b"-", created_at=now))
        conn.execute(
            insert(abm_profiles).values(
                connection="main",
                profile_uuid="P-LAB",
                profile_name="Lab iPads",
                profile="{}",
                created_at=now,
                blueprint_id=blueprint_id,
            )
        )
        conn.execute(
            insert(abm_devices).values(
                connection="main", serial_number=serial, profile_uuid="P-LAB", generation=1, updated_at=now
            )
        )


def test_a_blueprints_minimum_wins_for_devices_its_ade_profile_enrolls(
    ade: tuple[Russet, TestClient], apple: TestAppleCA, caplog: pytest.LogCaptureFixture
) -> None:
    russet, client = ade
    lab = russet.blueprints.create(BlueprintSpec(name="Lab"), created_by="tests")
    in_lab, elsewhere = AdeDevice(apple), AdeDevice(apple)
    assign_profile_naming(russet, in_lab.serial, lab["id"])
    russet.enrollment.set_minimum_os("ios", "17.4")
    assert russet.enrollment.set_minimum_os("ios", "18.1", blueprint="Lab") == {
        "platform": "ios",
        "version": "18.1",
        "blueprint": "Lab",
    }
    with caplog.at_level("WARNING", logger="russet.enrollment"):
        answer = post(client, in_lab, OS_VERSION="17.6")
    assert answer.status_code == 403 and answer.json()["details"] == {"OSVersion": "18.1"}
    assert f"blueprint {lab['id']}" in caplog.text
    assert post(client, elsewhere, OS_VERSION="17.6").status_code == 200  # the platform's 17.4
    assert post(client, in_lab, OS_VERSION="18.1").status_code == 200
    # A blueprint's minimum may be lower than the platform's: it wins for its devices.
    russet.enrollment.set_minimum_os("ios", "17.0", blueprint=str(lab["id"]))
    assert post(client, in_lab, OS_VERSION="17.1").status_code == 200
    assert post(client, elsewhere, OS_VERSION="17.1").status_code == 403
    # Only the platform's own: a blueprint without one for macOS leaves the platform's.
    russet.enrollment.set_minimum_os("macos", "15.0")
    assert post(client, in_lab, PRODUCT="Mac14,2", OS_VERSION="14.7").status_code == 403

    assert russet.enrollment.minimum_os() == [
        {"platform": "ios", "version": "17.4", "blueprint": None},
        {"platform": "macos", "version": "15.0", "blueprint": None},
        {"platform": "ios", "version": "17.0", "blueprint": "Lab"},
    ]
    russet.blueprints.delete(lab["id"])
    assert russet.enrollment.minimum_os()[-1]["blueprint"] == f"#{lab['id']}"  # a profile may name it still
    with pytest.raises(NotFound, match="no such blueprint|Lab"):
        russet.enrollment.set_minimum_os("ios", "18", blueprint="Lab")
    russet.enrollment.clear_minimum_os("ios", blueprint=f"#{lab['id']}")
    assert [m["blueprint"] for m in russet.enrollment.minimum_os()] == [None, None]


def test_blueprint_minimums_through_the_api_and_the_cli(
    client: TestClient, russet: Russet, invoke_cli: Callable[..., Result]
) -> None:
    russet.blueprints.create(BlueprintSpec(name="Lab"), created_by="tests")
    admin = {"Authorization": f"Bearer {russet.access.create_key('alex')}"}
    answer = client.put(f"{API}/ios", headers=admin, params={"blueprint": "Lab"}, json={"version": "18.1"})
    assert answer.status_code == 200 and answer.json()["blueprint"] == "Lab"
    missing = client.put(f"{API}/ios", headers=admin, params={"blueprint": "Nope"}, json={"version": "18"})
    assert missing.status_code == 404 and "Nope" in missing.json()["detail"]
    assert client.get(API, headers=admin).json() == [
        {"platform": "ios", "version": "18.1", "blueprint": "Lab"}
    ]
    nothing = client.delete(f"{API}/ios", headers=admin)  # the platform's own: none set
    assert nothing.status_code == 404

    result = invoke_cli("enrollment", "minimum-os", "macos", "15.1", "--blueprint", "Lab")
    assert result.exit_code == 0 and "whose ADE profile names blueprint Lab below 15.1" in result.output
    result = invoke_cli("enrollment", "minimum-os")
    assert "BLUEPRINT" in result.output and "Lab" in result.output
    result = invoke_cli("enrollment", "minimum-os", "ios", "--clear", "--blueprint", "Lab")
    assert result.exit_code == 0 and result.output == "ios: no minimum OS in blueprint Lab\n"
    result = invoke_cli("enrollment", "minimum-os", "ios", "--clear", "--blueprint", "Lab")
    assert result.exit_code != 0 and "no minimum OS is set for ios in this blueprint" in result.output
    result = invoke_cli("enrollment", "minimum-os", "--blueprint", "Lab")
    assert result.exit_code != 0 and "name a PLATFORM" in result.output
    assert client.delete(f"{API}/macos", headers=admin, params={"blueprint": "Lab"}).status_code == 200
    audited = [(r["action"], r["target"]) for r in russet.access.audit_rows()]
    assert ("cli enrollment minimum-os", "macos 15.1 --blueprint Lab") in audited
    assert ("cli enrollment minimum-os", "ios --clear --blueprint Lab") in audited
