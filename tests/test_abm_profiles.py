"""ADE enrollment profiles: checked before sending, defined, assigned in batches, the default profile."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from russet.abm.errors import AbmError
from russet.abm.profiles import ade_url, validate_profile
from russet.abm.token import make_key_pair
from russet.config import Settings
from russet.runtime import Russet
from simulators.dep import DepSimulator
from tests.abm_support import bodies, connect, ledger_rows, run, simulated

URL = "https://mdm.example.test/mdm/enroll"


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet]]:
    with simulated(tmp_path, settings, devices=2100) as (sim, russet):
        connect(russet, sim)
        run(russet, russet.abm.sync_now("main"))
        yield sim, russet


def define(russet: Russet, spec: dict, default: bool = False) -> dict:  # type: ignore[type-arg]
    return run(russet, russet.abm.define_profile("main", spec, default=default))


def test_a_good_profile_gets_russets_ade_url_and_apples_field_names() -> None:
    _, cert = make_key_pair("anchor")
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    profile = validate_profile(
        {
            "profile_name": "Staff iPads",
            "is_supervised": True,
            "is_mdm_removable": False,
            "await_device_configured": True,
            "skip_setup_items": ["Siri", "Privacy", "Siri"],
            "language": "en",
            "region": "US",
            "department": "IT",
            "support_email_address": "it@example.org",
            "anchor_certs": [pem],
        },
        default_url=URL,
        default_org_magic="russet:main",
    )
    assert profile["url"] == URL and profile["org_magic"] == "russet:main"
    assert profile["skip_setup_items"] == ["Siri", "Privacy"]
    assert profile["anchor_certs"] == [
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    ]


def test_every_problem_with_a_profile_is_reported_before_anything_is_sent(
    dep: tuple[DepSimulator, Russet],
) -> None:
    sim, russet = dep
    with pytest.raises(AbmError) as raised:
        define(
            russet,
            {
                "profile_name": 42,
                "is_supervised": "yes",
                "is_mdm_removable": False,
                "skip_setup_items": ["Siri", "Teleport"],
                "language": "English",
                "anchor_certs": ["not a certificate"],
                "support_email_address": "nobody",
                "devices": ["SIM00000001"],
                "favourite_colour": "teal",
                "url": "http://insecure.example.test/enroll",
            },
        )
    message = str(raised.value)
    for expected in (
        "profile_name: should be text, got int",
        "is_supervised: should be true or false, got str",
        "is_mdm_removable: false is only allowed with is_supervised true",
        "skip_setup_items: unknown pane keys Teleport",
        "language: should be an ISO 639 code",
        "anchor_certs[0]: not a base64 DER certificate",
        "support_email_address: 'nobody' is not an email address",
        "devices: define the profile first",
        "favourite_colour: not a profile field",
        "url: devices only use https URLs",
    ):
        assert expected in message
    assert sim.calls["POST /profile"] == 0 and russet.abm.list_profiles("main")["profiles"] == []
    with pytest.raises(AbmError, match="should be a JSON object|a profile is a JSON object"):
        define(russet, ["profile_name"])  # type: ignore[arg-type]


def test_http_public_url_is_refused_for_ade(settings: Settings) -> None:
    with pytest.raises(AbmError, match="RUSSET_PUBLIC_URL"):
        validate_profile(
            {"profile_name": "x"}, default_url=ade_url("http://127.0.0.1:8080"), default_org_magic="m"
        )


def test_define_sends_the_profile_and_records_its_fields(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    result = define(
        russet, {"profile_name": "Staff", "is_supervised": True, "department": "IT"}, default=True
    )
    uuid = result["profile_uuid"]
    assert sim.profiles[uuid]["url"] == URL and sim.profiles[uuid]["department"] == "IT"
    listed = russet.abm.list_profiles("main")
    assert listed["default_profile_uuid"] == uuid and listed["profiles"][0]["default"] is True
    sent = {r["field"] for r in ledger_rows(russet, endpoint="POST /profile", direction="sent")}
    assert {"profile_name", "url", "org_magic", "is_supervised", "department", "session"} <= sent
    assert {r["field"] for r in ledger_rows(russet, endpoint="POST /profile", direction="received")} == {
        "profile_uuid"
    }


def test_sign_in_points_configuration_web_url_at_russets_page(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    result = run(russet, russet.abm.define_profile("main", {"profile_name": "Staff"}, sign_in=True))
    sent = sim.profiles[result["profile_uuid"]]
    assert sent["configuration_web_url"] == "https://mdm.example.test/mdm/enroll/signin"
    assert sent["url"] == URL
    with pytest.raises(AbmError, match="configuration_web_url: set by sign-in"):
        spec = {"profile_name": "Staff", "configuration_web_url": "https://elsewhere.example/"}
        run(russet, russet.abm.define_profile("main", spec, sign_in=True))
    assert len(russet.abm.list_profiles("main")["profiles"]) == 1


def test_apples_refusal_of_a_profile_is_shown_and_nothing_kept(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sim.inject("POST /profile", 400, '"CONFIG_NAME_INVALID"')
    with pytest.raises(AbmError, match="POST /profile answered 400 CONFIG_NAME_INVALID"):
        define(russet, {"profile_name": "Staff"})
    assert russet.abm.list_profiles("main")["profiles"] == []


def test_assign_in_batches_of_1000_with_per_device_results(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    uuid = define(russet, {"profile_name": "Staff"})["profile_uuid"]
    serials = [f"SIM{i:08d}" for i in range(2100)] + ["UNKNOWN001", "unknown002"]
    sim.fail_serials.add("SIM00000010")
    sim.throttle_serials.add("SIM00000011")
    result = run(russet, russet.abm.assign_profile("main", uuid, serials))
    assert sim.largest_batch == 1000 and len(bodies(sim, "POST /profile/devices")) == 3
    assert result["counts"] == {"SUCCESS": 2098, "FAILED": 1, "THROTTLED": 1, "NOT_ACCESSIBLE": 2}
    assert result["results"]["UNKNOWN002"] == "NOT_ACCESSIBLE"  # serials are upper-cased
    assert result["retry_after_seconds"] == 60
    shown = russet.abm.device("main", "SIM00000001")
    assert shown["profile_uuid"] == uuid and shown["profile_status"] == "assigned"
    assert shown["last_profile_result"]["status"] == "SUCCESS"
    assert russet.abm.device("main", "sim00000010")["last_profile_result"]["status"] == "FAILED"
    received = ledger_rows(russet, endpoint="POST /profile/devices", field="response_status")
    assert len(received) == 2100 + 2
    assert {r["field"] for r in ledger_rows(russet, endpoint="POST /profile/devices", direction="sent")} == {
        "session",
        "profile_uuid",
        "devices",
    }


def test_remove_assignment_with_results(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    uuid = define(russet, {"profile_name": "Staff"})["profile_uuid"]
    run(russet, russet.abm.assign_profile("main", uuid, ["SIM00000001", "SIM00000002"]))
    result = run(russet, russet.abm.remove_profile("main", ["SIM00000001", "GONE0001"]))
    assert result["results"] == {"SIM00000001": "SUCCESS", "GONE0001": "NOT_ACCESSIBLE"}
    assert bodies(sim, "DELETE /profile/devices") == [{"devices": ["SIM00000001", "GONE0001"]}]
    device = russet.abm.device("main", "SIM00000001")
    assert device["profile_uuid"] is None and device["last_profile_result"]["action"] == "remove"


@pytest.mark.parametrize(
    ("serials", "message"),
    [([], "at least one serial"), (["ok", 5], "not serial numbers"), ("SIM1", "at least one serial")],
)
def test_bad_serial_lists_are_refused(
    dep: tuple[DepSimulator, Russet], serials: object, message: str
) -> None:
    _, russet = dep
    with pytest.raises(AbmError, match=message):
        run(russet, russet.abm.remove_profile("main", serials))


def test_default_profile_goes_to_newly_added_devices(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    uuid = define(russet, {"profile_name": "Default"}, default=True)["profile_uuid"]
    # Devices present before the default was set keep their state; new ones get the profile.
    sim.add_device("NEWSERIAL01")
    sim.add_device("NEWSERIAL02")
    sim.add_device("NEWSERIAL03", profile_uuid="OTHER", profile_status="assigned")  # already has one
    sim.throttle_serials.add("NEWSERIAL02")
    report = run(russet, russet.abm.sync_now("main"))
    assert report["default_profile"] == {"SUCCESS": 1, "THROTTLED": 1}
    assert bodies(sim, "POST /profile/devices")[-1] == {
        "profile_uuid": uuid,
        "devices": ["NEWSERIAL01", "NEWSERIAL02"],
    }
    assert russet.abm.device("main", "SIM00000001")["profile_uuid"] == ""
    # Apple stops throttling: the next sync retries the throttled device.
    sim.throttle_serials.clear()
    report = run(russet, russet.abm.sync_now("main"))
    assert report["default_profile"] == {"SUCCESS": 1}
    assert russet.abm.device("main", "NEWSERIAL02")["profile_uuid"] == uuid
    assert run(russet, russet.abm.sync_now("main"))["default_profile"] == {}


def test_default_profile_must_be_known(dep: tuple[DepSimulator, Russet]) -> None:
    _, russet = dep
    with pytest.raises(AbmError, match="no profile 'ABC'"):
        russet.abm.set_default_profile("main", "ABC")
    assert russet.abm.set_default_profile("main", None)["default_profile_uuid"] is None
