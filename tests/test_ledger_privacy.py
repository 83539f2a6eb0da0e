"""The ledger for a privacy officer (issue #16 items 1, 2, 5): the table laid out as "Data Intune
sends to Apple" with live counts, a subject across services with its export and erasure, and
retention per service folding detail into counts. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from russet.app import create_app
from russet.apple.gateway import Call, Datum
from russet.apple.report import TABLE_COLUMNS
from russet.apple.tables import ledger, ledger_counts
from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import reading, utcnow
from simulators.device import Enrollment, SimDevice, SimUser
from tests.conftest import PUBLIC_URL, new_profile
from tests.test_console import csrf_of, log_in
from tests.vpp_support import PAGES, add, deliver, run, simulated

CUID = "5c1e4f5e-9d0a-4a43-8f4e-2b8b2f8e0c11"
MAID = "ada@school.example.org"


def push(russet: Russet, device: SimDevice, times: int = 3) -> None:
    """Pushes to one device, recorded as the pusher records them (token in hex)."""
    call = Call(
        "apns",
        "default",
        "POST /3/device/{token}",
        "wake the device for queued commands",
        [
            Datum("Token", device.push_token.hex(), subject=device.udid),
            Datum("PushMagic", device.push_magic, subject=device.udid),
            Datum("topic", device.enrollment.topic),
        ],
    )
    for _ in range(times):
        russet.gateway.record(call, 200, "apns-id-1", [Datum("apns-id", "apns-id-1", subject=device.udid)])


def script(russet: Russet, device: SimDevice) -> None:
    """APNs pushes, an ABM look-up of the serial and account answer, an Apps and Books user
    registration and a device licence, as the gateway records them."""
    push(russet, device)
    russet.gateway.record(
        Call(
            "abm",
            "main",
            "POST /devices",
            "look up a device",
            [Datum("devices", device.serial, device.serial)],
        ),
        200,
        None,
    )
    russet.gateway.record(
        Call("abm", "main", "GET /account", "read the account", []),
        200,
        None,
        [Datum("server_name", "Russet")],
    )
    russet.gateway.record(
        Call(
            "vpp",
            "main",
            "POST users/create",
            "register a person",
            [
                Datum("location token", "sToken"),
                Datum("client user id", CUID, CUID),
                Datum("Managed Apple ID", MAID, CUID),
            ],
        ),
        200,
        None,
    )
    russet.ledger.flush()


def ledger_rows(russet: Russet, **where: Any) -> int:
    russet.ledger.flush()
    query = select(func.count()).select_from(ledger)
    for column, value in where.items():
        query = query.where(ledger.c[column] == value)
    with reading(russet.storage.engine) as conn:
        return int(conn.execute(query).scalar_one())


def counted(russet: Russet) -> int:
    with reading(russet.storage.engine) as conn:
        return int(conn.execute(select(func.coalesce(func.sum(ledger_counts.c.times), 0))).scalar_one())


def row(report: dict[str, Any], service: str, data: str) -> dict[str, Any]:
    return next(r for r in report["rows"] if (r["service"], r["data"]) == (service, data))


def ok(invoke_cli: Callable[..., Result], *args: str) -> str:
    result = invoke_cli(*args)
    assert result.exit_code == 0, result.output
    return result.output


# -- the table ------------------------------------------------------------------------------------


def test_table_counts_match_the_ledger_and_say_where_russet_differs(  # type: ignore[no-untyped-def]
    russet: Russet, client: TestClient, device: SimDevice, invoke_cli, api_headers, tmp_path: Path
) -> None:
    device.enroll(client)
    script(russet, device)
    report = russet.ledger_privacy.table()

    token = row(report, "apns", "Token")
    assert token["sent"] == ledger_rows(russet, service="apns", field="Token", direction="sent") == 3
    assert token["differs"] == "same" and token["first"] and token["last"] and token["used_for"]
    assert row(report, "apns", "PushMagic")["sent"] == 3
    serial = row(report, "abm", "serial_number")  # the look-up sends it under "devices"
    assert serial["sent"] == 1 and serial["differs"] == "same"
    for data in ("Client user id GUID", "Location token", "Managed Apple ID"):
        assert row(report, "vpp", data) | {"sent": 1, "differs": "same"} == row(report, "vpp", data)
    assert row(report, "vpp", "Serial number")["differs"] == "sends less"  # declared, not sent
    server_name = row(report, "abm", "server_name")  # Intune lists it; Russet only receives it
    assert server_name["differs"] == "never sends" and server_name["received"] == 1
    assert server_name["note"] == "Russet only receives it from Apple"
    topic = row(report, "apns", "topic")  # beyond the reference table
    assert topic["differs"] == "sends more" and topic["sent"] == 3
    assert sum(report["summary"].values()) == len(report["rows"])
    assert report["summary"]["sends more"] == sum(r["differs"] == "sends more" for r in report["rows"])
    # Every row sent in the ledger is in the table exactly once.
    assert sum(r["sent"] for r in report["rows"]) == ledger_rows(russet, direction="sent")
    today = report["timeline"][-1]
    assert today["apns"] == ledger_rows(russet, service="apns") and today["abm"] == 2
    assert len(report["timeline"]) == 30

    as_json = json.loads(ok(invoke_cli, "ledger", "table", "--format", "json"))
    assert [(r["data"], r["sent"], r["differs"]) for r in as_json["rows"]] == [
        (r["data"], r["sent"], r["differs"]) for r in report["rows"]
    ]
    table = list(csv.reader(io.StringIO(ok(invoke_cli, "ledger", "table", "--format", "csv"))))
    assert table[0][: len(TABLE_COLUMNS)] == [title for _, title in TABLE_COLUMNS]
    assert ["APNs", "Token"] == table[1][:2] and table[1][3] == "3" and table[1][7] == "same"
    text = ok(invoke_cli, "ledger", "table", "--service", "apns")
    assert "PushMagic" in text and "Differs" in text and "Location token" not in text
    out = tmp_path / "table.pdf"
    ok(invoke_cli, "ledger", "table", "--format", "pdf", "--out", str(out))
    assert out.read_bytes().startswith(b"%PDF") and out.stat().st_mode & 0o077 == 0

    api = client.get("/api/v1/ledger/table", headers=api_headers).json()
    assert row(api, "apns", "Token")["sent"] == 3
    pdf = client.get("/api/v1/ledger/table", params={"format": "pdf"}, headers=api_headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    got = client.get("/api/v1/ledger/table", params={"format": "csv"}, headers=api_headers)
    assert got.text.splitlines()[0].startswith("Service,Data,Used for")
    for bad in ({"service": "fax"}, {"since": "yesterday-ish"}, {"days": "0"}, {"format": "doc"}):
        refused = client.get("/api/v1/ledger/table", params=bad, headers=api_headers)
        assert refused.status_code in (400, 422), (bad, refused.text)
    assert invoke_cli("ledger", "table", "--since", "soon").exit_code != 0


# -- retention ------------------------------------------------------------------------------------


def test_retention_folds_old_detail_into_counts_and_keeps_totals(  # type: ignore[no-untyped-def]
    russet: Russet, client: TestClient, device: SimDevice, invoke_cli, api_headers
) -> None:
    device.enroll(client)
    script(russet, device)
    old = utcnow() - timedelta(days=40)
    with russet.storage.engine.begin() as conn:  # the pushes happened 40 days ago
        conn.execute(update(ledger).where(ledger.c.service == "apns").values(at=old))
    apns_rows = ledger_rows(russet, service="apns")
    before = russet.ledger_privacy.table()
    report_before = russet.ledger_admin.ledger_report()

    shown = ok(invoke_cli, "ledger", "retention", "apns", "30")
    assert "apns" in shown and "30" in shown
    put = client.put("/api/v1/ledger/retention/vpp", json={"days": 365}, headers=api_headers)
    assert put.status_code == 200 and put.json()["detail_days"] == 365
    for bad in ({"days": -1}, {"days": "x"}, {}):
        assert client.put("/api/v1/ledger/retention/vpp", json=bad, headers=api_headers).status_code in (
            400,
            422,
        )
    assert (
        client.put("/api/v1/ledger/retention/fax", json={"days": 3}, headers=api_headers).status_code == 400
    )
    assert invoke_cli("ledger", "retention", "fax", "3").exit_code != 0

    removed = russet.housekeeping()  # the housekeeping task's work
    assert removed["ledger_rows_counted"] == apns_rows == 12  # 3 pushes: Token, PushMagic, topic, apns-id
    assert ledger_rows(russet, service="apns") == 0 and counted(russet) == apns_rows
    assert ledger_rows(russet, service="abm") == 2 and ledger_rows(russet, service="vpp") == 3  # recent
    after = russet.ledger_privacy.table()
    assert [(r["data"], r["sent"], r["received"], r["first"], r["last"]) for r in after["rows"]] == [
        (r["data"], r["sent"], r["received"], r["first"], r["last"]) for r in before["rows"]
    ]
    assert after["timeline"] == before["timeline"]
    # `russet ledger report` counts the folded rows too (times, first, last).
    assert [(r["field"], r["times"], r["first"], r["last"]) for r in russet.ledger_admin.ledger_report()] == [
        (r["field"], r["times"], r["first"], r["last"]) for r in report_before
    ]
    policy = next(p for p in after["retention"] if p["service"] == "apns")
    assert policy["detail_days"] == 30 and policy["counted_rows"] == 12 and policy["detail_rows"] == 0
    assert policy["last_folded"] == 12 and policy["applied_at"]
    # The detail is gone: the device's pushes are no longer in its subject export.
    fields = {e["field"] for e in russet.ledger_privacy.subject(device.udid)["exchanges"]}
    assert "Token" not in fields and "devices" in fields
    assert russet.housekeeping()["ledger_rows_counted"] == 0  # nothing left to fold
    assert counted(russet) == apns_rows
    listed = json.loads(ok(invoke_cli, "ledger", "retention", "--json"))
    assert {p["service"]: p["detail_days"] for p in listed} == {
        "apns": 30,
        "abm": None,
        "vpp": 365,
        "activationlock": None,
    }
    text = ok(invoke_cli, "ledger", "table")
    assert "retention apns: 30 days of detail; 0 detail rows, 12 counted" in text


def test_housekeeping_is_one_task_once_across_nodes(russet: Russet) -> None:
    [task] = [t for t in russet.tasks() if t.name == "housekeeping"]
    assert task.once_across_nodes and "retention" in task.description


# -- subjects -------------------------------------------------------------------------------------


def test_subject_is_found_across_services_exported_and_erased(  # type: ignore[no-untyped-def]
    tmp_path: Path, settings: Settings, invoke_cli
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        deliver(russet, sim)
        made = run(russet, russet.vpp.create_user("main", email="ada@example.org", managed_apple_id=MAID))
        cuid = made["client_user_id"]
        sim.process()
        deliver(russet, sim)
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
            other = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
            device.enroll(client)
            other.enroll(client)
            # Ada signs in on a Shared iPad with her Managed Apple Account: the MDM links her.
            reply = device.check_in(client, device.user_token_update_message(SimUser.shared_ipad_user(MAID)))
            assert reply.status_code == 200
        run(russet, russet.vpp.assign("main", PAGES, serials=[device.serial]))
        sim.process()
        deliver(russet, sim)
        push(russet, device, 2)
        push(russet, other, 2)
        russet.gateway.record(
            Call("abm", "main", "POST /devices", "look up", [Datum("devices", device.serial, device.serial)]),
            200,
            None,
        )
        russet.ledger.flush()

        export = russet.ledger_privacy.subject("ADA@example.org")  # by email, any case
        kinds = {(i["kind"], i["value"]) for i in export["identifiers"]}
        assert {("client_user_id", cuid), ("managed_apple_id", MAID), ("udid", device.udid)} <= kinds
        assert ("serial", device.serial) in kinds and ("vpp_location", "main") in kinds
        assert not any(other.udid == value for _, value in kinds)
        seen = {(e["service"], e["field"]) for e in export["exchanges"]}
        assert {("vpp", "email"), ("vpp", "client user id"), ("vpp", "Managed Apple ID")} <= seen
        assert {
            ("vpp", "serial number"),
            ("apns", "Token"),
            ("apns", "PushMagic"),
            ("abm", "devices"),
        } <= seen
        assert {s["service"] for s in export["services"]} == {"apns", "abm", "vpp"}
        tokens = [e for e in export["exchanges"] if e["field"] == "Token"]
        assert len(tokens) == 2  # the other device's pushes are not Ada's
        assert export["values_kept"].startswith("none")

        # A push token alone finds the device it was sent about (linked in the ledger).
        by_token = russet.ledger_privacy.subject(device.push_token.hex())
        assert {e["field"] for e in by_token["exchanges"]} >= {"Token", "PushMagic", "apns-id"}
        assert by_token["linked_in_ledger"] == 1
        by_cuid = russet.ledger_privacy.subject(cuid)
        assert ("email", "ada@example.org") in {(i["kind"], i["value"]) for i in by_cuid["identifiers"]}

        pdf = tmp_path / "ada.pdf"
        ok(invoke_cli, "ledger", "subject", MAID, "--format", "pdf", "--out", str(pdf))
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_mode & 0o077 == 0
        cli_json = json.loads(ok(invoke_cli, "ledger", "subject", MAID, "--format", "json"))
        assert len(cli_json["exchanges"]) == len(export["exchanges"])
        assert invoke_cli("ledger", "subject", "").exit_code != 0

        totals = russet.ledger_privacy.reports.totals()
        before = {k: v.times for k, v in totals.items()}
        erased = russet.ledger_privacy.erase("ada@example.org", by="dpo", reason="erasure request")
        assert erased["rows_folded_into_counts"] == len(export["exchanges"])
        assert sum(erased["per_service"].values()) == len(export["exchanges"])
        after = {k: v.times for k, v in russet.ledger_privacy.reports.totals().items()}
        assert after == before  # totals unchanged
        assert russet.ledger_privacy.subject("ada@example.org")["exchanges"] == []  # detail gone
        assert len(russet.ledger_privacy.subject(other.udid)["exchanges"]) == 2 * 3  # others untouched
        [record] = russet.ledger_privacy.erasures()
        assert record["requested_by"] == "dpo" and record["rows"] == len(export["exchanges"])
        assert "ada" not in json.dumps(record).lower() and cuid not in json.dumps(record)
        refused = invoke_cli("ledger", "erase", "ada@example.org", "--yes")
        assert refused.exit_code != 0 and "nothing about" in refused.output


def test_subject_api_and_console(  # type: ignore[no-untyped-def]
    russet: Russet, client: TestClient, device: SimDevice, api_headers
) -> None:
    device.enroll(client)
    script(russet, device)
    got = client.get(f"/api/v1/ledger/subjects/{device.serial}/export", headers=api_headers)
    assert got.status_code == 200
    assert {e["field"] for e in got.json()["exchanges"]} >= {"Token", "devices"}
    assert device.udid in got.json()["also_known_as"]
    pdf = client.get(
        f"/api/v1/ledger/subjects/{device.serial}/export", params={"format": "pdf"}, headers=api_headers
    )
    assert pdf.content.startswith(b"%PDF")

    key = russet.storage.api_keys.create("dpo")
    log_in(client, key)
    page = client.get("/console/ledger/table")
    assert page.status_code == 200 and "<svg" in page.text and "<rect" in page.text
    assert "sends more" in page.text and "Token" in page.text
    assert client.get("/console/ledger/table.pdf").content.startswith(b"%PDF")
    form = client.post(
        "/console/ledger/retention",
        data={"csrf": csrf_of(page.text), "service": "abm", "days": "90"},
        follow_redirects=False,
    )
    assert form.status_code == 303
    assert "90 days" in client.get("/console/ledger/table").text
    bad = client.post(
        "/console/ledger/retention", data={"csrf": csrf_of(page.text), "service": "abm", "days": "x"}
    )
    assert bad.status_code == 400 and "whole number" in bad.text

    subject = client.get("/console/ledger/subject", params={"q": device.udid})
    assert subject.status_code == 200 and device.serial in subject.text and "PushMagic" in subject.text
    assert client.get("/console/ledger/subject.pdf", params={"q": device.udid}).content.startswith(b"%PDF")
    unconfirmed = client.post(
        "/console/ledger/subject/erase", data={"csrf": csrf_of(subject.text), "q": device.udid}
    )
    assert unconfirmed.status_code == 400 and ledger_rows(russet, service="apns") == 12
    erased = client.post(
        "/console/ledger/subject/erase",
        data={"csrf": csrf_of(subject.text), "q": device.udid, "confirm": "yes"},
        follow_redirects=False,
    )
    assert erased.status_code == 303
    assert ledger_rows(russet, service="apns") == 3  # the topic rows are about the organisation
    assert [e["requested_by"] for e in russet.ledger_privacy.erasures()] == ["dpo"]
    api = client.post(
        f"/api/v1/ledger/subjects/{device.udid}/erase", json={"reason": "again"}, headers=api_headers
    )
    assert api.status_code == 404  # nothing left about it
