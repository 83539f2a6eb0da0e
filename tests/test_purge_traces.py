"""Purge leaves nothing (issue #16 item 3): after disconnect --purge of an Apps and Books location,
no table holds its adamIds, client user ids, licensed serial numbers, people's emails, Apple's
library id or event ids (the install command's body included); the receipt counts each table's
rows before and after, is signed by Russet's CA, verifies, and a tampered or foreign one does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from russet.app import create_app
from russet.apple.admin import RECEIPT_MAX_BYTES
from russet.apple.connections import ConnectionRefused, ConnectionRegistry, ServiceHooks
from russet.apple.receipts import ReceiptSeal
from russet.apple.tables import ledger
from russet.config import Settings
from russet.kernel.errors import Invalid
from russet.pki.authority import Authority
from russet.pki.ca import create_ca, issue_server_signing
from russet.runtime import Russet
from russet.storage.db import reading
from russet.vpp.tables import vpp_events, vpp_locations
from simulators.device import Enrollment, SimDevice
from simulators.vpp import VppSimulator
from tests.cli_support import cli_invoker
from tests.conftest import PUBLIC_URL, new_profile
from tests.purge_support import all_found, find_identifiers
from tests.vpp_support import BOOK, KEYNOTE, PAGES, add, deliver, run, simulated

LICENSED = "C02TRACE001"  # a device licensed through the location, never enrolled here
EMAIL = "ada.trace@example.org"


@pytest.fixture
def location(tmp_path: Path, settings: Settings) -> Iterator[tuple[VppSimulator, Russet, TestClient]]:
    with (
        simulated(tmp_path, settings) as (sim, russet, token),
        TestClient(create_app(russet), base_url=PUBLIC_URL) as client,
    ):
        add(russet, token)
        deliver(russet, sim)
        yield sim, russet, client


def _use(sim: VppSimulator, russet: Russet, client: TestClient) -> set[str]:
    """People, licences and an installed app through the location; its identifiers."""
    cuid = run(russet, russet.vpp.create_user("main", email=EMAIL))["client_user_id"]
    sim.process()
    deliver(russet, sim)
    run(russet, russet.vpp.assign("main", PAGES, serials=[LICENSED], users=[cuid]))
    sim.process()
    deliver(russet, sim)
    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True, serial="C02TRACE009")
    device.enroll(client)
    run(russet, russet.vpp.installs.install(device.serial, KEYNOTE, created_by="tests"))
    sim.process()
    deliver(russet, sim)
    command = SimDevice.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None and command["Command"]["iTunesStoreID"] == int(KEYNOTE)
    ack = device.report_message("Acknowledged", command["CommandUUID"], State="Installing")
    device.connect(client, ack)
    with reading(russet.storage.engine) as conn:
        uid, token_hash = conn.execute(select(vpp_locations.c.uid, vpp_locations.c.token_sha256)).one()
        events = set(conn.execute(select(vpp_events.c.event_id)).scalars())
    assert uid and token_hash and events  # the token itself is sealed: its hash finds the row
    return {PAGES, KEYNOTE, BOOK, cuid, LICENSED, EMAIL, uid, token_hash, *events}


def test_purge_leaves_no_identifier_in_any_table(location: tuple[VppSimulator, Russet, TestClient]) -> None:
    sim, russet, client = location
    identifiers = _use(sim, russet, client)
    russet.ledger.flush()
    before = find_identifiers(russet.storage.engine, identifiers)
    assert all_found(before) == identifiers  # the scan sees every one of them while connected
    assert any(column.startswith("commands.") for column in before)  # the install's body names it

    receipt = russet.ledger_admin.disconnect("vpp", "main", purge=True)

    assert find_identifiers(russet.storage.engine, identifiers) == {}
    tables = receipt["tables"]
    assert {"vpp_assets", "vpp_users", "vpp_licences", "ledger", "ledger_counts", "commands"} <= set(tables)
    assert all(counts["after"] == 0 for counts in tables.values()), tables
    assert tables["vpp_assets"]["before"] == 3 and tables["commands"]["before"] == 1
    assert tables["ledger"]["before"] > 0  # the fingerprints of what was exchanged go too
    assert receipt["data_deleted"]["commands"] == 1
    assert russet.ledger_admin.receipts() == [receipt]  # stored as returned, signature included
    assert russet.ledger_admin.verify_receipt(json.dumps(receipt)) == receipt


def test_receipt_signature_verifies_and_tampering_is_refused(
    location: tuple[VppSimulator, Russet, TestClient],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, russet, client = location
    headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
    answer = client.post("/api/v1/connections/vpp/main/disconnect", headers=headers, json={"purge": True})
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert receipt["signature"] and russet.ledger_admin.receipts() == [receipt]
    verify = russet.ledger_admin.verify_receipt
    assert verify(json.dumps(receipt, indent=2).encode()) == receipt  # spelling does not matter

    def tampered(**change: Any) -> str:
        return json.dumps({**receipt, **change})

    changed = {**receipt["tables"], "vpp_assets": {"before": 0, "after": 0}}
    assert changed != receipt["tables"]
    with pytest.raises(Invalid, match="^the receipt was changed after it was signed$"):
        verify(tampered(tables=changed))
    with pytest.raises(Invalid, match="^the receipt has no signature$"):
        verify(tampered(signature=""))
    with pytest.raises(Invalid, match="does not verify"):
        verify(tampered(signature=receipt["signature"][:-40] + "A" * 40))
    with pytest.raises(Invalid, match="not JSON"):
        verify("{not json")
    # Consistent, but signed by another CA's signer: refused.
    ca, ca_key = create_ca("Elsewhere CA", "Elsewhere")
    signer, signer_key = issue_server_signing(ca, ca_key, "Elsewhere signer")
    foreign = ReceiptSeal(Authority(ca, ca_key, signer, signer_key)).sign(receipt)
    with pytest.raises(Invalid, match="not signed under this Russet's CA"):
        verify(json.dumps(foreign))

    checked = client.post("/api/v1/connections/receipts/verify", headers=headers, json={"receipt": receipt})
    assert checked.status_code == 200 and checked.json()["intact"] is True
    refused = client.post(
        "/api/v1/connections/receipts/verify", headers=headers, json={"receipt": json.loads(tampered(at="x"))}
    )
    assert refused.status_code == 400
    assert refused.json()["detail"] == "the receipt was changed after it was signed"

    invoke = cli_invoker(settings, monkeypatch)
    good, bad = tmp_path / "receipt.json", tmp_path / "tampered.json"
    good.write_text(json.dumps(receipt))
    bad.write_text(tampered(connection="other"))
    ok = invoke("ledger", "verify-receipt", str(good))
    assert ok.exit_code == 0 and ok.output.startswith("receipt intact: vpp 'main'"), ok.output
    cli_refused = invoke("ledger", "verify-receipt", str(bad))
    assert cli_refused.exit_code == 1
    assert cli_refused.output.strip().splitlines() == ["Error: the receipt was changed after it was signed"]

    # Outside input, bounded: too deep or too large is one clear refusal, never a traceback.
    deep, huge = tmp_path / "deep.json", tmp_path / "huge.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    huge.write_bytes(b'{"pad": "' + b"x" * RECEIPT_MAX_BYTES + b'"}')
    with pytest.raises(Invalid, match="^not a receipt: JSON nested more than 32 levels deep$"):
        verify(deep.read_text())
    with pytest.raises(Invalid, match="^not a receipt: .* bytes of JSON, more than the 1048576 accepted$"):
        verify(huge.read_bytes())
    for path in (deep, huge):
        too_much = invoke("ledger", "verify-receipt", str(path))
        assert too_much.exit_code == 1
        assert too_much.output.strip().splitlines()[0].startswith("Error: not a receipt: "), too_much.output
        assert len(too_much.output.strip().splitlines()) == 1


def _late_row(russet: Russet, connection: str, at: datetime) -> None:
    """A ledger row as another process writes it when it flushes its buffer."""
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(ledger).values(
                at=at,
                service="vpp",
                connection=connection,
                endpoint="GET /assets",
                direction="received",
                field="adamId",
                subject_type="asset",
                purpose="tests",
            )
        )


def _ledger_rows(russet: Russet, connection: str) -> int:
    query = select(func.count()).select_from(ledger).where(ledger.c.connection == connection)
    with reading(russet.storage.engine) as conn:
        return int(conn.execute(query).scalar_one())


def test_ledger_rows_written_after_the_purge_by_another_process_are_swept(
    location: tuple[VppSimulator, Russet, TestClient],
) -> None:
    _, russet, _ = location
    receipt = russet.ledger_admin.disconnect("vpp", "main", purge=True)
    purged_at = datetime.fromisoformat(receipt["at"])
    _late_row(russet, "main", purged_at - timedelta(seconds=1))  # buffered elsewhere, flushed late
    _late_row(russet, "main", purged_at + timedelta(seconds=5))  # an exchange that was in flight
    _late_row(russet, "other", purged_at)  # another location's: kept
    assert _ledger_rows(russet, "main") == 2
    [task] = [t for t in russet.tasks() if t.name == "apple.purge_sweep"]
    assert task.run() == 2
    assert _ledger_rows(russet, "main") == 0 and _ledger_rows(russet, "other") == 1
    # Set up again under the same name: its rows are its own, never swept.
    with russet.storage.engine.begin() as conn:
        russet.connections.connect(conn, "vpp", "main")
    _late_row(russet, "main", purged_at)
    assert task.run() == 0 and _ledger_rows(russet, "main") == 1


def test_a_purge_that_would_leave_rows_is_refused_and_rolled_back(russet: Russet) -> None:
    """A service whose purge misses a row: nothing is deleted, the connection stays, no receipt."""
    left = {"rows": 1}
    hooks = ServiceHooks(
        service="vpp",
        destroy_credentials=lambda conn, name: {},
        purge=lambda conn, name: {},
        apple_side=lambda name: [],
        traces=lambda conn, name: {"vpp_assets": left["rows"]},
    )
    registry = ConnectionRegistry(russet.storage.engine, [hooks])
    with russet.storage.engine.begin() as conn:
        registry.connect(conn, "vpp", "north")
    with pytest.raises(ConnectionRefused, match=r"would leave rows in vpp_assets \(1\); nothing was deleted"):
        registry.disconnect("vpp", "north", purge=True)
    assert [(c["name"], c["status"]) for c in registry.all()] == [("north", "active")]
    assert registry.is_active("vpp", "north")  # the gateway lets its traffic through again
    assert registry.receipts() == []
    left["rows"] = 0
    assert registry.disconnect("vpp", "north", purge=True)["tables"]["vpp_assets"] == {
        "before": 0,
        "after": 0,
    }
    assert registry.all() == []
