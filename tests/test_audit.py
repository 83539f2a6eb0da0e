"""The audit log (issue #19): every action that changes something, through the API, the console,
the CLI and scheduled jobs, recorded with who, what, target, when, from where and the outcome;
hash-chained so that an edited, removed or added row shows (`russet audit verify`); one chain
under concurrent writers; retention that keeps the chain verifiable."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, update

from russet.access.audit import GENESIS, AuditEntry, AuditLog, row_hash
from russet.access.roles import Role
from russet.access.tables import audit_head, audit_log
from russet.kernel.tasks import PeriodicTask
from russet.runtime import Russet, audited_task
from tests.test_console import csrf_of, log_in, seed


def rows(russet: Russet) -> list[dict[str, Any]]:
    return list(russet.access.audit_rows())


def entry(n: int) -> AuditEntry:
    return AuditEntry(actor=f"api:k{n}", surface="api", action="POST /api/v1/x", target=f"t{n}")


# -- what is recorded --------------------------------------------------------------------------------


def test_api_actions_are_recorded_reads_are_not(client: TestClient, russet: Russet) -> None:
    [device] = seed(russet, 1)
    admin = russet.access.create_key("alex")
    auditor = russet.access.create_key("watcher", Role.AUDITOR)
    headers = {"Authorization": f"Bearer {admin}"}
    command = {"devices": [device], "command": {"RequestType": "DeviceInformation"}}
    assert client.post("/api/v1/commands", headers=headers, json=command).status_code == 201
    assert client.get(f"/api/v1/devices/{device}", headers=headers).status_code == 200
    assert client.post("/api/v1/devices/NOPE/forget", headers=headers).status_code == 404
    denied = client.post("/api/v1/commands", headers={"Authorization": f"Bearer {auditor}"}, json=command)
    assert denied.status_code == 403
    assert (
        client.post("/api/v1/commands", headers={"Authorization": "Bearer rus_x"}, json=command).status_code
        == 401
    )
    found = rows(russet)
    assert [(r["actor"], r["action"], r["outcome"], r["status"]) for r in found] == [
        ("api:alex", "POST /api/v1/commands", "ok", 201),
        ("api:alex", "POST /api/v1/devices/{device_id}/forget", "refused", 404),
        ("api:watcher", "POST /api/v1/commands", "denied", 403),
    ]
    assert found[0]["target"] == f"DeviceInformation to {device}"
    assert found[1]["target"] == "device_id=NOPE"
    assert found[0]["surface"] == "api" and found[0]["source"] == "testclient"
    assert datetime.fromisoformat(found[0]["at"]).tzinfo is not None
    # The auditor reads it through the API, newest first.
    listed = client.get("/api/v1/audit?limit=2", headers={"Authorization": f"Bearer {auditor}"}).json()
    assert [r["seq"] for r in listed["rows"]] == [3, 2] and listed["next"] == 2
    verified = client.get("/api/v1/audit/verify", headers={"Authorization": f"Bearer {auditor}"}).json()
    assert verified == {"ok": True, "rows": 3, "broken_row": None, "reason": None}


def test_console_actions_and_sign_ins_are_recorded(client: TestClient, russet: Russet) -> None:
    [device] = seed(russet, 1)
    russet.access.add_user("ann@example.com", Role.OPERATOR, "correct horse battery")
    form = client.get("/console/login")
    wrong = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "email": "ann@example.com", "password": "not her password"},
    )
    assert wrong.status_code == 401
    client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "email": "ann@example.com", "password": "correct horse battery"},
        follow_redirects=False,
    )
    csrf = csrf_of(client.get("/console/devices").text)
    client.post(
        f"/console/devices/{device}/commands",
        data={"csrf": csrf, "request_type": "DeviceInformation", "params": ""},
        follow_redirects=False,
    )
    found = [(r["actor"], r["surface"], r["action"], r["target"], r["outcome"]) for r in rows(russet)]
    assert found == [
        ("user:ann@example.com", "console", "console sign-in with a password", "", "denied"),
        ("user:ann@example.com", "console", "console sign-in with a password", "", "ok"),
        ("user:ann@example.com", "console", "POST /console/devices/{device_id}/commands",
         f"device_id={device}", "ok"),
    ]  # fmt: skip


def test_cli_actions_are_recorded_reads_are_not(run: Any, russet: Russet) -> None:
    assert run("apikey", "create", "deploy", "--role", "operator")[0] == 0
    assert run("apikey", "list")[0] == 0
    assert run("apikey", "revoke", "nobody")[0] == 1
    found = [
        (r["actor"].startswith("cli:"), r["action"], r["target"], r["outcome"], r["status"])
        for r in rows(russet)
    ]
    assert found == [
        (True, "cli apikey create", "deploy", "ok", 0),
        (True, "cli apikey revoke", "nobody", "refused", 1),
    ]


def test_scheduled_jobs_that_did_something_or_failed_are_recorded(russet: Russet) -> None:
    results: list[Any] = [{"removed": 0}, {"removed": 3}]

    def work() -> Any:
        if not results:
            raise RuntimeError("Apple said no")
        return results.pop(0)

    task = audited_task(PeriodicTask("demo.sync", 60, work, once_across_nodes=True), russet.access)
    task.run()  # nothing done: not recorded
    task.run()
    with pytest.raises(RuntimeError):
        task.run()
    found = [(r["actor"], r["surface"], r["outcome"], json.loads(r["detail"])) for r in rows(russet)]
    assert found == [
        ("task:demo.sync", "task", "ok", {"result": {"removed": 3}}),
        ("task:demo.sync", "task", "failed", {"error": "Apple said no"}),
    ]
    # Every cluster-wide task of the server is wrapped so; per-process chores are not.
    tasks = {t.name: t for t in russet.tasks()}
    assert tasks["audit.retention"].once_across_nodes
    assert hasattr(tasks["housekeeping"].run, "__wrapped__")
    assert not hasattr(tasks["last_seen.flush"].run, "__wrapped__")


def test_secret_views_appear(client: TestClient, russet: Russet) -> None:
    [device] = seed(russet, 1)
    key = russet.access.create_key("boss")
    client.post(
        f"/api/v1/devices/{device}/secrets/recovery-lock/view",
        headers={"Authorization": f"Bearer {key}"},
        json={"reason": "locked out"},
    )
    [row] = rows(russet)
    assert row["action"] == "POST /api/v1/devices/{device_id}/secrets/{kind}/view"
    assert row["target"] == f"device_id={device} kind=recovery-lock" and row["actor"] == "api:boss"
    assert "locked out" not in json.dumps(row)  # bodies are never recorded


# -- the hash chain ------------------------------------------------------------------------------------


def test_audit_verify_detects_an_edited_row(run: Any, russet: Russet) -> None:
    for n in range(5):
        russet.access.record(entry(n))
    code, out = run("audit", "verify")
    assert code == 0 and "ok: 5 rows" in out
    with russet.storage.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="api:someone-else"))
    code, out = run("audit", "verify")
    assert code == 1
    assert "audit log broken at row 3: its contents do not match its hash (the row was edited)" in out


def test_verify_detects_removed_inserted_and_rehashed_rows(russet: Russet) -> None:
    log = russet.access.audit
    assert log is not None
    for n in range(6):
        log.record(entry(n))
    engine = russet.storage.engine
    with engine.begin() as conn:
        saved = dict(conn.execute(select(audit_log).where(audit_log.c.seq == 4)).one()._mapping)
        conn.execute(delete(audit_log).where(audit_log.c.seq == 4))
    verdict = log.verify()
    assert (verdict.ok, verdict.broken_seq, verdict.reason) == (False, 5, "rows 4 to 4 are missing")
    # Put back with a forged actor and a recomputed hash: the next row's link breaks.
    forged = {**saved, "actor": "api:nobody"}
    forged["hash"] = row_hash(forged, forged["prev_hash"])
    with engine.begin() as conn:
        conn.execute(insert(audit_log).values(**forged))
    verdict = log.verify()
    assert (verdict.ok, verdict.broken_seq) == (False, 5) and "previous hash" in (verdict.reason or "")
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 4))
        conn.execute(insert(audit_log).values(**saved))
    assert log.verify().ok
    # The tail removed: the head still names the last row.
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 6))
    verdict = log.verify()
    assert (verdict.ok, verdict.broken_seq) == (False, 6) and "head says row 6" in (verdict.reason or "")


def test_the_export_verifies_on_its_own(run: Any, russet: Russet, tmp_path: Path) -> None:
    for n in range(3):
        russet.access.record(entry(n))
    out = tmp_path / "audit.jsonl"
    code, text = run("audit", "export", "--out", str(out))
    assert code == 0 and "wrote 3 rows" in text
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    prev = GENESIS
    for row in exported:  # the chain recomputed from the file alone, as an outside auditor would
        material = [row[k] for k in ("seq", "at", "actor", "surface", "action", "target", "source",
                                     "outcome", "status", "detail")] + [prev]  # fmt: skip
        assert hashlib.sha256(json.dumps(material, separators=(",", ":")).encode()).hexdigest() == row["hash"]
        prev = row["hash"]
    code, text = run("audit", "export", "--format", "csv")
    assert code == 0 and text.splitlines()[0].startswith("seq,at,actor,surface,action")


def test_concurrent_writers_make_one_chain(russet: Russet) -> None:
    """Threads appending at once (each on its own pooled connection; on PostgreSQL really at once)
    never fork the chain: sequence numbers without gaps or repeats, and it verifies."""
    log = russet.access.audit
    assert log is not None
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for n in range(15):
                log.record(entry(w * 100 + n))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    found = rows(russet)
    assert [r["seq"] for r in found] == list(range(1, 91))
    assert len({r["prev_hash"] for r in found}) == 90  # no two rows follow the same row
    assert log.verify().ok


def test_retention_keeps_the_chain_verifiable(russet: Russet) -> None:
    engine = russet.storage.engine
    clock = {"now": datetime(2024, 1, 1, tzinfo=UTC)}
    log = AuditLog(engine, clock=lambda: clock["now"])
    for n in range(4):
        log.record(entry(n))
    clock["now"] = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(4, 6):
        log.record(entry(n))
    assert log.prune(datetime(2025, 1, 1, tzinfo=UTC)) == 4
    remaining = list(log.rows())
    assert [r["seq"] for r in remaining] == [5, 6, 7]
    anchor = remaining[-1]
    assert anchor["action"] == "audit.retention"
    assert json.loads(anchor["detail"])["through"] == 4
    assert log.verify().ok
    assert log.prune(datetime(2025, 1, 1, tzinfo=UTC)) == 0  # nothing more to remove
    # Removing older rows by hand, without an anchor, shows.
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 5))
    verdict = log.verify()
    assert not verdict.ok and verdict.broken_seq == 6


def test_retention_task_uses_the_policy(russet: Russet) -> None:
    old = AuditLog(russet.storage.engine, clock=lambda: datetime.now(UTC) - timedelta(days=800))
    old.record(entry(1))
    russet.access.record(entry(2))
    assert russet.access.prune_audit() == 1  # 730 days by default (RUSSET_AUDIT_RETENTION_DAYS)
    assert russet.access.audit_verify().ok
    with russet.storage.engine.connect() as conn:
        assert conn.execute(select(audit_head.c.seq)).scalar_one() == 3


def test_console_audit_page(client: TestClient, russet: Russet) -> None:
    key = russet.access.create_key("watcher", Role.AUDITOR)
    russet.access.record(entry(7))
    log_in(client, key)
    page = client.get("/console/audit")
    assert page.status_code == 200
    assert "The hash chain verifies" in page.text and "api:k7" in page.text
