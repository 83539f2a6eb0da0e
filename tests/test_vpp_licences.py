"""Licences: assigning to devices and people, Apple's asynchronous answers (notification or
status polling), partial failures, too few licences, taking licences back."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from russet.app import create_app
from russet.config import Settings
from russet.runtime import Russet
from russet.vpp.errors import VppError
from russet.vpp.tables import vpp_assets
from russet.web.errors import status_for
from simulators.device import Enrollment, SimDevice
from tests.conftest import PUBLIC_URL, new_profile
from tests.vpp_support import (
    BOOK,
    KEYNOTE,
    PAGES,
    add,
    asset,
    deliver,
    ledger_count,
    licences,
    run,
    simulated,
)


def _assign(russet: Russet, adam: str, serials: list[str] = (), users: list[str] = ()) -> dict:  # type: ignore[assignment]
    return run(russet, russet.vpp.assign("main", adam, serials=serials, users=users))


def _events(russet: Russet) -> list[dict]:
    return russet.vpp.list_events("main")["events"]


def _statuses(russet: Russet) -> dict[str, str]:
    return {lic["subject"]: lic["status"] for lic in licences(russet)}


def test_assignment_completed_by_notification(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        deliver(russet, sim)
        out = _assign(russet, PAGES, ["c02aaa0001", "C02AAA0002"])
        assert out["requested"] == 2 and len(out["events"]) == 1
        assert _statuses(russet) == {"C02AAA0001": "associating", "C02AAA0002": "associating"}
        assert asset(russet, PAGES)["reserved"] == 2 and asset(russet, PAGES)["available_count"] == 5
        assert _events(russet)[0]["status"] == "PENDING"

        sim.process()
        answers = deliver(russet, sim)
        assert (
            answers[0][0] == 200 and answers[0][1]["succeeded"] == 2 and answers[0][1]["status"] == "COMPLETE"
        )
        assert _statuses(russet) == {"C02AAA0001": "assigned", "C02AAA0002": "assigned"}
        counts = asset(russet, PAGES)
        assert (counts["assigned_count"], counts["available_count"], counts["reserved"]) == (2, 3, 0)
        event = _events(russet)[0]
        assert (event["status"], event["completed_by"], event["event_type"]) == (
            "COMPLETE",
            "notification",
            "ASSOCIATE",
        )
        # Assigning again changes nothing and sends nothing.
        again = _assign(russet, PAGES, ["C02AAA0001"])
        assert again["events"] == [] and again["skipped"] == {"device:C02AAA0001": "assigned"}
        # What Apple was told about the device, in the ledger.
        about = russet.ledger_admin.ledger_subject("C02AAA0001")
        fields = {(e["endpoint"], e["field"], e["direction"]) for e in about["exchanges"]}
        assert ("POST assets/associate", "serial number", "sent") in fields
        assert ("POST /vpp/notify (from Apple)", "serial number", "received") in fields


def test_assignment_completed_by_status_polling(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        sim.notify = False
        _assign(russet, KEYNOTE, ["C02POLL001"])
        first = run(russet, russet.vpp.poll_now("main"))
        assert first["events"][0]["status"] == "PENDING" and _statuses(russet) == {
            "C02POLL001": "associating"
        }
        assert _events(russet)[0]["last_polled_at"] is not None
        sim.process()
        second = run(russet, russet.vpp.poll_now("main"))
        assert second["events"][0]["status"] == "COMPLETE"
        event = _events(russet)[0]
        assert (event["completed_by"], event["num_requested"], event["num_completed"]) == ("status", 1, 1)
        assert _statuses(russet) == {"C02POLL001": "assigned"}
        assert ledger_count(russet, service="vpp", field="event status", direction="received") == 2
        # Nothing pending: nothing asked.
        asked = sim.calls["GET status"]
        run(russet, russet.vpp.poll_now("main"))
        assert sim.calls["GET status"] == asked

        # An event Apple no longer knows ends as failed, and what it reserved is not kept assigned.
        _assign(russet, KEYNOTE, ["C02LOST001"])
        sim.location(token).events.clear()
        run(russet, russet.vpp.poll_now("main"))
        lost = next(lic for lic in licences(russet) if lic["subject"] == "C02LOST001")
        assert lost["status"] == "failed" and lost["error_number"] == 9708
        assert _events(russet)[0]["status"] == "FAILED"


@pytest.mark.parametrize("answered_by", ["notification", "status"])
def test_partial_failures_are_recorded_per_item(tmp_path: Path, settings: Settings, answered_by: str) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        deliver(russet, sim)
        sim.notify = answered_by == "notification"
        sim.bad_serials = {"C02BAD0001": 9628}
        _assign(russet, PAGES, ["C02OK00001", "C02BAD0001", "C02OK00002"])
        sim.process()
        if answered_by == "notification":
            assert len(deliver(russet, sim)) == 2  # one SUCCESS, one FAILURE notification
        else:
            run(russet, russet.vpp.poll_now("main"))
        states = {lic["subject"]: lic for lic in licences(russet)}
        assert states["C02OK00001"]["status"] == states["C02OK00002"]["status"] == "assigned"
        bad = states["C02BAD0001"]
        assert bad["status"] == "failed" and bad["error_number"] == 9628
        assert "not eligible" in bad["error_message"]
        event = _events(russet)[0]
        assert event["status"] == "COMPLETE" and event["failures"][0]["errorNumber"] == 9628
        counts = asset(russet, PAGES)
        assert (counts["assigned_count"], counts["available_count"]) == (2, 3)
        # A failed licence can be tried again.
        sim.bad_serials = {}
        sim.notify = True
        assert _assign(russet, PAGES, ["C02BAD0001"])["requested"] == 1


def test_more_assignments_than_licences_are_refused_whole(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        with pytest.raises(
            VppError, match="3 needed, 2 available of 2; nothing was assigned"
        ) as refused:
            _assign(russet, KEYNOTE, ["C02N000001", "C02N000002", "C02N000003"])
        assert status_for(refused.value) == 409
        assert sim.calls["POST assets/associate"] == 0 and licences(russet) == []
        _assign(russet, KEYNOTE, ["C02N000001", "C02N000002"])
        with pytest.raises(VppError, match="0 available \\(2 more already being assigned\\)"):
            _assign(russet, KEYNOTE, ["C02N000003"])
        assert sim.calls["POST assets/associate"] == 1


def test_apple_running_out_of_licences_never_makes_counts_negative(
    tmp_path: Path, settings: Settings
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        deliver(russet, sim)
        sim.location(token).assets[(PAGES, "STDQ")].assigned = 4  # another admin used them meanwhile
        _assign(russet, PAGES, ["C02R000001", "C02R000002", "C02R000003"])  # Russet still counts 5
        sim.process()
        deliver(russet, sim)
        states = _statuses(russet)
        assert sorted(states.values()) == ["assigned", "failed", "failed"]
        assert {lic["error_number"] for lic in licences(russet) if lic["status"] == "failed"} == {9709}
        run(russet, russet.vpp.sync_now("main"))
        counts = asset(russet, PAGES)
        assert (counts["assigned_count"], counts["available_count"]) == (5, 0)
        # A refund larger than what is left: counts stop at zero.
        sim.purchase(token, PAGES, -100)
        deliver(russet, sim)
        counts = asset(russet, PAGES)
        assert (counts["total_count"], counts["available_count"]) == (0, 0)
        sim.purchase(token, PAGES, 110)
        deliver(russet, sim)
        assert asset(russet, PAGES)["available_count"] == 110
        # The database refuses a negative count outright.
        with pytest.raises(IntegrityError), russet.storage.engine.begin() as conn:
            conn.execute(update(vpp_assets).values(available_count=-1))


def test_bad_input_is_refused_before_anything_is_sent(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        with pytest.raises(VppError, match="no licences for adamId 999999") as unknown:
            _assign(russet, "999999", ["C02X000001"])
        assert status_for(unknown.value) == 404
        with pytest.raises(VppError, match="not an App Store id"):
            _assign(russet, "pages", ["C02X000001"])
        with pytest.raises(VppError, match="cannot be assigned to devices"):
            _assign(russet, BOOK, ["C02X000001"])
        with pytest.raises(VppError, match="not serial numbers"):
            _assign(russet, PAGES, ["C02 X; DROP"])
        with pytest.raises(VppError, match="no user 'nobody'"):
            _assign(russet, PAGES, users=["nobody"])
        with pytest.raises(VppError, match="name serial numbers"):
            _assign(russet, PAGES)
        assert sim.calls["POST assets/associate"] == 0 and licences(russet) == []


def test_a_request_apple_refuses_leaves_nothing_reserved(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        del sim.location(token).assets[(PAGES, "STDQ")]  # gone at Apple since the last sync
        with pytest.raises(VppError, match="POST assets/associate answered 400 9602"):
            _assign(russet, PAGES, ["C02G000001", "C02G000002"])
        assert licences(russet) == [] and _events(russet) == []
        assert asset(russet, PAGES)["reserved"] == 0
        sim.inject("POST assets/associate", 500, b"<html>oops</html>", times=4)
        with pytest.raises(VppError, match="answered 500"):
            _assign(russet, KEYNOTE, ["C02G000001"])
        assert licences(russet) == []


def test_taking_licences_back(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        sim.auto_process = True
        _assign(russet, PAGES, ["C02B000001", "C02B000002"])
        deliver(russet, sim)
        out = run(russet, russet.vpp.unassign("main", PAGES, serials=["C02B000001", "C02NOTHERE"]))
        assert out["not_assigned"] == ["device:C02NOTHERE"] and out["requested"] == 1
        assert _statuses(russet)["C02B000001"] == "disassociating"
        deliver(russet, sim)
        assert _statuses(russet) == {"C02B000002": "assigned"}
        counts = asset(russet, PAGES)
        assert (counts["assigned_count"], counts["available_count"]) == (1, 4)
        assert sim.location(token).assets[(PAGES, "STDQ")].assigned == 1
        with pytest.raises(VppError, match="not revocable"):
            run(russet, russet.vpp.unassign("main", BOOK, users=["x"]))


def test_apple_accepting_a_write_after_a_take_over_keeps_its_event(
    tmp_path: Path, settings: Settings
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        sim.location(token).mdm_info = {"id": "x", "name": "Other MDM", "metadata": "m"}
        out = _assign(russet, PAGES, ["C02T000001"])
        assert len(out["events"]) == 1 and _statuses(russet) == {"C02T000001": "associating"}
        assert russet.vpp.show("main")["taken_over_by"]["name"] == "Other MDM"
        with pytest.raises(VppError, match="managed by another MDM"):
            _assign(russet, PAGES, ["C02T000002"])


def _enrolled(russet: Russet, client: TestClient, serial: str) -> SimDevice:
    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True, serial=serial)
    device.enroll(client)
    return device


def test_licences_are_revoked_when_a_device_unenrolls_or_is_erased(
    tmp_path: Path, settings: Settings
) -> None:
    with (
        simulated(tmp_path, settings) as (sim, russet, token),
        TestClient(create_app(russet), base_url=PUBLIC_URL) as client,
    ):
        add(russet, token)
        sim.auto_process = True
        leaving = _enrolled(russet, client, "C02LEAVE01")
        erased = _enrolled(russet, client, "C02ERASE01")
        staying = _enrolled(russet, client, "C02STAY001")
        _assign(russet, PAGES, [leaving.serial, erased.serial, staying.serial])
        _assign(russet, KEYNOTE, [leaving.serial])
        deliver(russet, sim)
        assert set(_statuses(russet).values()) == {"assigned"} and asset(russet, PAGES)["assigned_count"] == 3

        # Nothing has left yet: the periodic work revokes nothing.
        assert "revoked" not in run(russet, russet.vpp.tick())["main"]

        checkout = {"MessageType": "CheckOut", "Topic": leaving.enrollment.topic, "UDID": leaving.udid}
        assert leaving.check_in(client, checkout).status_code == 200
        sent = russet.devices.send_command([erased.udid], {"RequestType": "EraseDevice"}, created_by="tests")
        command = SimDevice.command_of(erased.connect(client, erased.report_message("Idle")))
        assert command is not None and command["Command"]["RequestType"] == "EraseDevice"
        erased.connect(client, erased.report_message("Acknowledged", sent["commands"][0]["command_uuid"]))

        done = run(russet, russet.vpp.tick())["main"]
        reasons = {e["reason"]: e["serials"] for e in done["revoked"]}
        assert reasons == {
            "the device unenrolled (CheckOut)": [leaving.serial],
            "the device was erased (EraseDevice)": [erased.serial],
        }
        revoke_bodies = [r.body for r in sim.requests if r.path.endswith("assets/revoke")]
        assert len(revoke_bodies) == 2
        deliver(russet, sim)
        assert _statuses(russet) == {staying.serial: "assigned"}
        assert asset(russet, PAGES)["assigned_count"] == 1 and asset(russet, KEYNOTE)["assigned_count"] == 0
        assert {e["event_type"] for e in _events(russet) if e["status"] == "COMPLETE"} >= {"REVOKE"}
        # Once revoked, the periodic work leaves them alone.
        assert "revoked" not in run(russet, russet.vpp.tick())["main"]
