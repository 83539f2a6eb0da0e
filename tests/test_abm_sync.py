"""Device sync against the DEP simulator: sessions, cursors, throttling, bad answers, the ledger."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select, update

from russet.abm.errors import AbmError, ProtocolError, Throttled
from russet.abm.store import AbmStore
from russet.abm.tables import abm_devices, abm_sync_state
from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import reading
from simulators.dep import DepSimulator, parse_oauth_header
from tests.abm_support import bodies, connect, device_count, ledger_rows, run, simulated
from tests.purge_support import all_found, find_identifiers

DEVICES = 2500


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet]]:
    with simulated(tmp_path, settings, devices=DEVICES) as (sim, russet):
        connect(russet, sim)
        yield sim, russet


def sync(russet: Russet, full: bool = False) -> dict:  # type: ignore[type-arg]
    return run(russet, russet.abm.sync_now("main", full=full))


def state(russet: Russet) -> dict:  # type: ignore[type-arg]
    with reading(russet.storage.engine) as conn:
        return dict(conn.execute(select(abm_sync_state)).one()._mapping)


def stored(russet: Russet, serial: str) -> dict:  # type: ignore[type-arg]
    with reading(russet.storage.engine) as conn:
        return dict(
            conn.execute(select(abm_devices).where(abm_devices.c.serial_number == serial)).one()._mapping
        )


def test_full_fetch_pages_of_at_most_1000_and_stores_every_field(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    report = sync(russet)
    assert (report["mode"], report["pages"], report["added"]) == ("full", 3, DEVICES)
    assert device_count(russet) == DEVICES
    fetches = bodies(sim, "POST /server/devices")
    assert [b.get("limit") for b in fetches] == [1000, 1000, 1000]
    assert (
        "cursor" not in fetches[0] and fetches[1]["cursor"] and fetches[2]["cursor"] != fetches[1]["cursor"]
    )
    record = sim.devices["SIM00000005"]
    row = stored(russet, "SIM00000005")
    for field in ("model", "description", "color", "asset_tag", "os", "device_family", "profile_status"):
        assert row[field] == record[field]
    assert row["device_assigned_date"].isoformat().startswith("2025-09-01T10:00:00")
    assert state(russet)["phase"] == "sync" and state(russet)["cursor"]


def test_oauth_signed_session_and_headers_on_every_call(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sync(russet)
    [session_request] = [r for r in sim.requests if r.path == "/session"]
    oauth = parse_oauth_header(session_request.headers["authorization"])
    assert oauth["oauth_signature_method"] == "HMAC-SHA1" and oauth["realm"] == "ADM"
    assert oauth["oauth_consumer_key"] == sim.credentials.consumer_key
    assert oauth["oauth_token"] == sim.credentials.access_token
    for request in sim.requests:
        assert request.headers["x-server-protocol-version"] == "10"
        assert request.headers["user-agent"]
        if request.path != "/session":
            assert request.headers["x-adm-auth-session"].startswith("sess-")
        if request.method == "POST":
            assert request.headers["content-type"].startswith("application/json")


def test_a_wrong_secret_fails_the_signature_check(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sim.expire_sessions()
    sim.credentials = dataclasses.replace(sim.credentials, access_secret="AS_not_what_russet_holds")
    with pytest.raises(
        AbmError, match="GET /session answered 401 signature_invalid: Apple refused the server token"
    ):
        sync(russet)


@pytest.mark.parametrize("refusal", [401, 403])
def test_ended_session_is_renewed_and_the_call_retried_once(
    dep: tuple[DepSimulator, Russet], refusal: int
) -> None:
    sim, russet = dep
    sync(russet)
    sessions_before = sim.calls["GET /session"]
    sim.expire_sessions(refusal)  # the next call with the old session gets 401 / 403 FORBIDDEN
    sim.add_device("NEWSERIAL01")
    report = sync(russet)
    assert report["added"] == 1
    assert sim.calls["GET /session"] == sessions_before + 1
    # Refused again even with a new session: an error, not a loop.
    sim.inject("POST /devices/sync", refusal, '"FORBIDDEN"' if refusal == 403 else "UNAUTHORIZED", times=2)
    with pytest.raises(AbmError, match="even with a new session"):
        sync(russet)


def test_a_session_apple_replaces_is_used_from_then_on(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sim.rotate_session = True  # the next answer (the first page) carries a new session
    sync(russet)
    assert sim.calls["GET /session"] == 1  # no new GET /session: the handed-out one was used
    assert len(ledger_rows(russet, field="session", direction="received")) == 2


def test_an_expired_token_is_refused_before_calling_apple(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    store = russet.abm.store
    token = store.token("main")
    store.store_token(
        "main",
        dataclasses.replace(token, access_token_expiry=token.access_token_expiry.replace(year=2020)),
        russet.connections,
    )
    calls = sum(sim.calls.values())
    with pytest.raises(AbmError, match="expired on 2020"):
        sync(russet)
    assert sum(sim.calls.values()) == calls


def test_incremental_sync_applies_added_modified_deleted(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sync(russet)
    sim.add_device("NEWSERIAL01", asset_tag="NEW-1")
    sim.modify("SIM00000001", asset_tag="first")
    sim.modify("SIM00000001", asset_tag="second")  # twice in one page: the latest op_date wins
    sim.remove("SIM00000002")
    report = sync(russet)
    assert (report["mode"], report["added"], report["modified"], report["deleted"]) == (
        "incremental",
        1,
        1,
        1,
    )
    assert stored(russet, "NEWSERIAL01")["asset_tag"] == "NEW-1"
    assert stored(russet, "SIM00000001")["asset_tag"] == "second"
    assert stored(russet, "SIM00000001")["op_type"] == "modified"
    assert device_count(russet) == DEVICES
    with pytest.raises(AbmError, match="no device"):
        russet.abm.device("main", "SIM00000002")
    [request] = bodies(sim, "POST /devices/sync")
    assert request["cursor"] and request["limit"] == 1000


@pytest.mark.parametrize("code", ["EXPIRED_CURSOR", "INVALID_CURSOR"])
def test_refused_cursor_starts_a_fresh_full_fetch_that_drops_stale_devices(
    dep: tuple[DepSimulator, Russet], code: str
) -> None:
    sim, russet = dep
    sync(russet)
    # A device leaves while Russet's cursor ages past Apple's 7 days: its deletion is never seen.
    with sim._lock:
        del sim.devices["SIM00000003"]
        sim._serials.remove("SIM00000003")
    if code == "EXPIRED_CURSOR":
        sim.advance(timedelta(days=8))
    else:
        with russet.storage.engine.begin() as conn:
            conn.execute(update(abm_sync_state).values(cursor="tampered.0000"))
    report = sync(russet)
    assert report["restarted_because"] == code and report["mode"] == "full"
    assert device_count(russet) == DEVICES - 1
    with pytest.raises(AbmError, match="no device"):
        russet.abm.device("main", "SIM00000003")
    assert state(russet)["generation"] == 2


def test_429_with_retry_after_and_5xx_are_waited_out(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sim.inject("POST /server/devices", 429, b"", {"Retry-After": "0"}, after=1)
    sim.inject("POST /server/devices", 503, b"", after=0)
    sim.inject("POST /server/devices", 400, '"THROTTLED"', {"Retry-After": "0"})
    report = sync(russet)
    assert report["devices"] == DEVICES and device_count(russet) == DEVICES
    statuses = [r["status"] for r in ledger_rows(russet, endpoint="POST /server/devices", field="limit")]
    assert statuses.count(429) == 1 and statuses.count(503) == 1 and statuses.count(400) == 1


def test_long_throttling_stops_and_resumes_from_the_saved_cursor(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sim.inject("POST /server/devices", 400, '"THROTTLED"', {"Retry-After": "3600"}, after=1)
    with pytest.raises(Throttled, match="retried after 3600 s"):
        sync(russet)
    saved = state(russet)
    assert saved["phase"] == "fetch" and saved["cursor"] and saved["retry_at"] is not None
    assert device_count(russet) == 1000
    report = sync(russet)
    assert report["mode"] == "full (resumed)" and report["pages"] == 2
    requests = bodies(sim, "POST /server/devices")
    assert requests[-2]["cursor"] == saved["cursor"]  # resumed, not restarted from zero
    assert device_count(russet) == DEVICES and state(russet)["retry_at"] is None


def test_a_crash_mid_fetch_resumes_from_the_last_page_applied(
    dep: tuple[DepSimulator, Russet], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, russet = dep
    real = AbmStore.apply_page
    calls = {"n": 0}

    def crash_on_third(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemError("the process died here")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AbmStore, "apply_page", crash_on_third)
    with pytest.raises(SystemError):
        sync(russet)
    assert device_count(russet) == 2000
    fetches_before = sim.calls["POST /server/devices"]
    report = sync(russet)
    assert report["mode"] == "full (resumed)" and report["pages"] == 1
    assert sim.calls["POST /server/devices"] == fetches_before + 1
    assert device_count(russet) == DEVICES


GOOD = {"serial_number": "OK000001", "model": "iPad", "os": "iPadOS"}


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (b'{"devices": [', "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (
            {"devices": [GOOD, {"model": "no serial"}], "cursor": "c", "more_to_follow": False},
            "no serial_number",
        ),
        (
            {
                "devices": [GOOD, {**GOOD, "serial_number": "X2", "model": 5}],
                "cursor": "c",
                "more_to_follow": False,
            },
            "model should be text, got int",
        ),  # fmt: skip
        (
            {
                "devices": [{**GOOD, "profile_assign_time": "yesterday"}],
                "cursor": "c",
                "more_to_follow": False,
            },
            "not an ISO 8601 time",
        ),  # fmt: skip
        ({"devices": [GOOD], "more_to_follow": False}, "has no cursor"),
        ({"devices": [GOOD], "cursor": "c"}, "more_to_follow is missing"),
        ({"devices": {"OK000001": GOOD}, "cursor": "c", "more_to_follow": False}, "devices is not a list"),
    ],
)
def test_bad_answers_to_the_full_fetch_apply_nothing(
    dep: tuple[DepSimulator, Russet], page: object, message: str
) -> None:
    sim, russet = dep
    body = page if isinstance(page, bytes) else json.dumps(page).encode()
    sim.inject("POST /server/devices", 200, body, after=1)  # the second page is bad
    with pytest.raises(ProtocolError, match=message):
        sync(russet)
    assert device_count(russet) == 1000  # the first page only; nothing of the bad one
    first_cursor = state(russet)["cursor"]
    assert message.split(" ")[0] in (russet.abm.show("main")["sync"]["last_error"] or "")
    report = sync(russet)  # Apple behaves again: resumes after the first page
    assert (
        report["mode"] == "full (resumed)"
        and bodies(sim, "POST /server/devices")[-2]["cursor"] == first_cursor
    )
    assert device_count(russet) == DEVICES


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op_type": "renamed"}, "op_type should be one of added, modified, deleted; got 'renamed'"),
        ({}, "op_type should be one of added, modified, deleted; got none"),
        ({"op_type": ["added"]}, r"op_type should be one of added, modified, deleted; got \['added'\]"),
    ],  # fmt: skip
)
def test_unknown_op_type_in_a_sync_page_applies_nothing(
    dep: tuple[DepSimulator, Russet],
    op: dict,
    message: str,  # type: ignore[type-arg]
) -> None:
    sim, russet = dep
    sync(russet)
    cursor = state(russet)["cursor"]
    page = {
        "devices": [{**GOOD, "op_type": "added"}, {**GOOD, "serial_number": "SIM00000001", **op}],
        "cursor": "next",
        "more_to_follow": False,
    }
    sim.inject("POST /devices/sync", 200, json.dumps(page))
    with pytest.raises(ProtocolError, match=message):
        sync(russet)
    assert device_count(russet) == DEVICES and state(russet)["cursor"] == cursor


def test_fields_apple_adds_are_reported_not_stored(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sync(russet)
    sim.add_device("NEWSERIAL01", battery_health="good")
    report = sync(russet)
    assert report["ignored_fields"] == ["battery_health"]


def test_ledger_records_every_field_with_the_serial_as_subject(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sync(russet)
    fp = russet.ledger.fingerprint
    received = ledger_rows(russet, endpoint="POST /server/devices", direction="received")
    about_one = {r["field"] for r in received if r["subject_fp"] == fp("SIM00000042")}
    assert about_one == {
        "serial_number", "model", "description", "color", "asset_tag", "os", "device_family",
        "profile_status", "profile_uuid", "profile_assign_time", "device_assigned_by", "device_assigned_date",
    }  # fmt: skip
    assert all(
        r["subject_type"] == "device" and r["status"] == 200 for r in received if r["field"] == "model"
    )
    token_rows = ledger_rows(russet, endpoint="GET /session", field="server token")
    assert {r["value_fp"] for r in token_rows} == {
        fp(sim.credentials.consumer_key),
        fp(sim.credentials.access_token),
    }
    session_rows = ledger_rows(russet, endpoint="POST /server/devices", field="session", direction="sent")
    assert len(session_rows) == 3
    # Sent fields are recorded once per attempt, never again with what came back.
    assert len(ledger_rows(russet, endpoint="POST /server/devices", field="limit")) == 3
    for row in ledger_rows(russet):
        assert "SIM00000042" not in json.dumps(row, default=str)
    assert {r["field"] for r in russet.ledger.about(["SIM00000042"])} >= {"serial_number", "model"}


def test_ledger_report_counts_for_a_full_listing(dep: tuple[DepSimulator, Russet]) -> None:
    """Every device field Apple sent is one row about that device: 12 per device in three pages."""
    _, russet = dep
    sync(russet)
    report = {(r["field"], r["direction"]): r for r in russet.ledger.report(service="abm")}
    device_fields = [
        "serial_number", "model", "description", "color", "asset_tag", "os", "device_family",
        "profile_status", "profile_uuid", "profile_assign_time", "device_assigned_by", "device_assigned_date",
    ]  # fmt: skip
    for field in device_fields:
        got = report[field, "received"]
        assert (got["times"], got["distinct_subjects"], got["about"]) == (DEVICES, DEVICES, "device"), field
    for field in ("cursor", "more_to_follow", "fetched_until"):  # once per page, about no device
        assert (report[field, "received"]["times"], report[field, "received"]["distinct_subjects"]) == (3, 0)
    assert report["limit", "sent"]["times"] == 3
    received = ledger_rows(russet, endpoint="POST /server/devices", direction="received")
    assert len(received) == DEVICES * len(device_fields) + 3 * 3


def test_sync_holds_the_lease_and_purge_removes_everything(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sync(russet)
    store = russet.abm.store
    with russet.connections.lease("abm", "main", "sync"):
        with pytest.raises(AbmError, match="busy with sync"):
            sync(russet)
        with pytest.raises(Exception, match="busy with sync"):
            russet.connections.disconnect("abm", "main", purge=True)
    with reading(russet.storage.engine) as conn:
        serials = set(conn.execute(select(abm_devices.c.serial_number).limit(20)).scalars())
    russet.ledger.flush()
    assert all_found(find_identifiers(russet.storage.engine, serials)) == serials
    receipt = russet.connections.disconnect("abm", "main", purge=True)
    # Issue #16: no table holds the serial numbers Apple gave (fingerprints in the ledger included).
    assert find_identifiers(russet.storage.engine, serials) == {}
    assert receipt["tables"]["ledger"]["before"] > 0
    assert all(counts["after"] == 0 for counts in receipt["tables"].values())
    assert receipt["credentials_destroyed"] == {"abm_private_key": 1, "abm_server_token": 1}
    assert receipt["data_deleted"]["abm_devices"] == DEVICES
    assert {"abm_sync_state", "abm_accounts", "abm_servers"} <= set(receipt["data_deleted"])
    assert device_count(russet) == 0 and store.account("main") is None and store.names() == []
    with pytest.raises(AbmError):
        sync(russet)
    russet.abm.create("main")  # the name can be used again


def test_disconnect_without_purge_destroys_the_key_and_token(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sync(russet)
    old_certificate = x509.load_pem_x509_certificate(russet.abm.show("main")["certificate_pem"].encode())
    russet.connections.disconnect("abm", "main", purge=False)
    with pytest.raises(AbmError, match="no server token"):
        sync(russet)
    assert device_count(russet) == DEVICES  # data kept without purge
    with pytest.raises(AbmError, match="key of ABM connection 'main' was destroyed"):
        run(russet, russet.abm.load_token("main", sim.token_for(old_certificate)))
    connect(russet, sim, "main")  # a new key pair, a new token: connected again
    assert sync(russet)["mode"] == "incremental"


def test_scheduled_sync_runs_when_due_and_only_then(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    first = run(russet, russet.abm.sync_scheduled())
    assert first["main"]["mode"] == "full"
    assert run(russet, russet.abm.sync_scheduled()) == {}  # RUSSET_ABM_SYNC_MINUTES have not passed
    an_hour_earlier = state(russet)["last_attempt_at"] - timedelta(hours=1)
    with russet.storage.engine.begin() as conn:
        conn.execute(update(abm_sync_state).values(last_attempt_at=an_hour_earlier))
    sim.add_device("NEWSERIAL01")
    assert run(russet, russet.abm.sync_scheduled())["main"]["added"] == 1


def test_a_token_for_another_abm_server_starts_a_fresh_listing(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sync(russet)
    sim.account = {**sim.account, "server_uuid": "ANOTHER-SERVER", "server_name": "Other"}
    cert = x509.load_pem_x509_certificate(russet.abm.show("main")["certificate_pem"].encode())
    loaded = run(russet, russet.abm.load_token("main", sim.token_for(cert)))
    assert "another MDM server ('Other')" in loaded["warning"]
    assert sync(russet)["mode"] == "full"


def test_scheduled_sync_resumes_when_apples_wait_is_over(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    sim.inject("POST /server/devices", 400, '"THROTTLED"', {"Retry-After": "3600"}, after=1)
    assert run(russet, russet.abm.sync_scheduled())["main"].startswith("failed: Apple is throttling")
    assert run(russet, russet.abm.sync_scheduled()) == {}  # Apple's hour has not passed
    two_hours_earlier = state(russet)["retry_at"] - timedelta(hours=2)
    with russet.storage.engine.begin() as conn:
        conn.execute(update(abm_sync_state).values(retry_at=two_hours_earlier))
    assert run(russet, russet.abm.sync_scheduled())["main"]["mode"] == "full (resumed)"
