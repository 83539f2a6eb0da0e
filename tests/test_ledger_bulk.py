"""The ledger's bulk paths: columnar recording of a push batch, grouped buffering, chunked writes
that never lose or repeat a row, and the garbage-collector setting bulk jobs use."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from russet import bulkgc
from russet.apple import ledger as ledger_module
from russet.apple.gateway import Attempt, Call, Datum
from russet.apple.ledger import Ledger, LedgerCells
from russet.apple.tables import ledger
from russet.runtime import Russet

PUSH = ("apns", "default", "POST /3/device/{token}", "wake the device")
TOPIC = "com.apple.mgmt.External.bulk"


def stored(russet: Russet) -> list[dict[str, Any]]:
    russet.ledger.flush()
    with russet.storage.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(ledger).order_by(ledger.c.id))]
    for row in rows:
        del row["id"], row["at"]
    return rows


def test_a_push_batch_records_exactly_what_one_record_per_push_would(russet: Russet) -> None:
    pushes: list[Attempt] = [
        ("UDID-1", ("aa11", "MAGIC-1"), 200, "apns-id-1", [("apns-id", "apns-id-1")]),
        ("UDID-2", ("bb22", "MAGIC-2"), 410, "apns-id-2", [("reason", "Unregistered")]),
        ("UDID-3", ("cc33", "MAGIC-3"), None, None, []),  # no answer at all
        ("UDID-1", ("aa11", "MAGIC-1"), 200, "apns-id-4", [("apns-id", "apns-id-4")]),  # cached fps
    ]
    for subject, (token, magic), status, apns_id, received in pushes:
        call = Call(
            *PUSH, (Datum("Token", token, subject), Datum("PushMagic", magic, subject), Datum("topic", TOPIC))
        )
        answer = [Datum(name, value, subject) for name, value in received]
        russet.gateway.record(call, status, apns_id, answer)
    one_by_one = stored(russet)
    with russet.storage.engine.begin() as conn:
        conn.execute(ledger.delete())

    russet.gateway.record_alike(Call(*PUSH, (Datum("topic", TOPIC),)), ("Token", "PushMagic"), pushes)
    assert stored(russet) == one_by_one
    assert len(one_by_one) == 4 * 3 + 3  # three sent fields per push, and each answer's field
    report = {(r["field"], r["direction"]): r for r in russet.ledger.report(service="apns")}
    assert (report["Token", "sent"]["times"], report["Token", "sent"]["distinct_subjects"]) == (4, 3)
    assert (report["topic", "sent"]["times"], report["topic", "sent"]["distinct_subjects"]) == (4, 0)
    assert report["apns-id", "received"]["times"] == 2 and report["reason", "received"]["times"] == 1


def test_text_of_any_kind_survives_the_json_batches(russet: Russet) -> None:
    odd = 'quote " backslash \\ tab \t newline \n accents ÄÉÎ emoji 🍎 nul-free'
    call = Call("abm", "main", "POST /devices", odd, (Datum("devices", "C02", subject="C02"),))
    russet.gateway.record(call, 200, odd[:100])
    (row,) = stored(russet)
    assert row["purpose"] == odd and row["request_id"] == odd[:100] and row["status"] == 200


class FailingOnce:
    """An engine stand-in whose Nth transaction fails, as a full disk or a lost server would."""

    def __init__(self, engine: Engine, fail_at: int) -> None:
        self.dialect = engine.dialect
        self._engine = engine
        self._fail_at = fail_at
        self.begun = 0

    @contextmanager
    def begin(self) -> Iterator[Any]:
        self.begun += 1
        with self._engine.begin() as conn:
            yield conn
            if self.begun == self._fail_at:
                raise OSError("disk full")


def groups(count: int, size: int) -> list[tuple[tuple[datetime, str, str, str, str], list[LedgerCells]]]:
    at = datetime.now(UTC)
    return [
        (
            (at, "abm", "main", f"GET /page/{g}", "bulk test"),
            [("received", "serial", "device", f"s{g}-{i}", f"v{g}-{i}", 200, None) for i in range(size)],
        )
        for g in range(count)
    ]


def test_a_failed_write_keeps_exactly_the_rows_not_yet_committed(
    russet: Russet, monkeypatch: pytest.MonkeyPatch
) -> None:
    if russet.storage.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writes a flush in one COPY transaction: all or nothing")
    monkeypatch.setattr(ledger_module, "_SQLITE_CHUNK", 4)
    monkeypatch.setattr(ledger_module, "_SQLITE_PAUSE", 0)
    engine = FailingOnce(russet.storage.engine, fail_at=2)
    book = Ledger(engine, russet.ledger.fingerprint)  # type: ignore[arg-type]
    for head, cells in groups(3, 3):  # 9 rows: transactions of 4, 4 (fails), then 1
        book.add_group(head, cells)
    with pytest.raises(OSError):
        book.flush()
    assert book.pending() == 5
    assert book.flush() == 5
    with russet.storage.engine.connect() as conn:
        subjects = list(conn.execute(select(ledger.c.subject_fp).order_by(ledger.c.id)).scalars())
    assert subjects == [f"s{g}-{i}" for g in range(3) for i in range(3)]  # each once, in order


def test_whole_rows_and_groups_mix_in_one_flush(russet: Russet) -> None:
    (head, cells), (other_head, other_cells) = groups(2, 2)
    russet.ledger.add([(*head[:4], *c[:5], head[4], *c[5:]) for c in cells])  # type: ignore[misc]
    russet.ledger.add_group(other_head, other_cells)
    assert russet.ledger.pending() == 4
    rows = stored(russet)
    assert [r["endpoint"] for r in rows] == ["GET /page/0"] * 2 + ["GET /page/1"] * 2
    assert rows[0]["purpose"] == "bulk test" and rows[0]["direction"] == "received"


def test_bulk_jobs_relax_the_collector_and_give_its_setting_back() -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with bulkgc.relaxed():
            assert gc.get_threshold() == bulkgc.BULK_THRESHOLDS
            with bulkgc.relaxed():  # a sync while a backlog is pushed
                pass
            assert gc.get_threshold() == bulkgc.BULK_THRESHOLDS
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(0)  # switched off by the operator: stays off
        with bulkgc.relaxed():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
