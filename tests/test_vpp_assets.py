"""Asset sync: paging, what Apple's answers must look like, expired tokens, rate limiting."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from russet.config import Settings
from russet.vpp.client import RateLimiter
from russet.vpp.errors import ProtocolError, Throttled, TokenRejected, VppError
from russet.web.errors import status_for
from simulators.vpp import Asset
from tests.vpp_support import KEYNOTE, PAGES, add, asset, ledger_count, run, simulated


def _pages_asked(sim) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path.split("pageIndex=")[1] for r in sim.requests if r.path.split("?")[0].endswith("/assets")]


def test_assets_are_read_page_by_page_and_applied_whole(tmp_path: Path, settings: Settings) -> None:
    many = [Asset(str(400000000 + i), 10 + i) for i in range(7)]
    with simulated(tmp_path, settings, assets=many, page_size=3) as (sim, russet, token):
        out = add(russet, token)
        assert out["sync"]["pages"] == 3 and out["sync"]["assets"] == 7
        assert _pages_asked(sim) == ["0", "1", "2"]
        listed = russet.vpp.assets("main")["assets"]
        assert [a["adam_id"] for a in listed] == [a.adam_id for a in many]
        first = listed[0]
        assert (first["total_count"], first["available_count"], first["assigned_count"]) == (10, 10, 0)
        assert first["device_assignable"] is True and first["supported_platforms"] == ["iOS", "macOS"]
        assert ledger_count(russet, service="vpp", field="pageIndex") == 3
        assert ledger_count(russet, service="vpp", field="assets", direction="received") == 7

        # Apple's list changed: one asset gone, one new, counts moved.
        location = sim.location(token)
        del location.assets[(many[0].adam_id, "STDQ")]
        location.assets[("499999999", "STDQ")] = Asset("499999999", 1, product_type="Book")
        location.assets[(many[1].adam_id, "STDQ")].assigned = 4
        report = run(russet, russet.vpp.sync_now("main"))
        assert (report["added"], report["removed"], report["assets"]) == (1, 1, 7)
        moved = asset(russet, many[1].adam_id)
        assert (moved["assigned_count"], moved["available_count"]) == (4, 7)

        # A page that breaks the protocol (a negative count) changes nothing at all.
        sim.inject("GET assets", 200, {"assets": [{"adamId": "1", "assignedCount": -3}], "nextPageIndex": 1})
        with pytest.raises(ProtocolError, match="assignedCount = -3"):
            run(russet, russet.vpp.sync_now("main"))
        assert len(russet.vpp.assets("main")["assets"]) == 7
        assert "assignedCount = -3" in russet.vpp.show("main")["last_error"]

        # Apple's quirk: an error inside an HTTP 200 is still an error.
        sim.inject("GET assets", 200, {"errorNumber": 9603, "errorMessage": "Internal error"})
        with pytest.raises(VppError, match="answered 200 9603"):
            run(russet, russet.vpp.sync_now("main"))
        assert len(russet.vpp.assets("main")["assets"]) == 7


def test_page_out_of_range_and_runaway_paging_are_errors(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        sim.inject("GET assets", 200, {"assets": [], "nextPageIndex": 0})
        with pytest.raises(ProtocolError, match="points back to page 0"):
            run(russet, russet.vpp.sync_now("main"))
        sim.inject("GET assets", 400, {"errorNumber": 9650, "errorMessage": "Page index is out of range"})
        with pytest.raises(VppError, match="9650: page index out of range"):
            run(russet, russet.vpp.sync_now("main"))
        assert len(russet.vpp.assets("main")["assets"]) == 3


def test_expired_token_at_apple_is_a_clear_401(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        sim.advance(timedelta(days=400))  # Apple's clock: the token's expDate has passed
        with pytest.raises(TokenRejected, match="answered 401 9621: the content token expired") as refused:
            run(russet, russet.vpp.sync_now("main"))
        assert status_for(refused.value) == 409 and "russet vpp add main" in str(refused.value)
        assert len(russet.vpp.assets("main")["assets"]) == 3  # nothing lost


def test_a_token_russet_knows_has_expired_is_not_sent(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        from sqlalchemy import update

        from russet.storage.db import utcnow
        from russet.vpp.tables import vpp_locations

        with russet.storage.engine.begin() as conn:
            conn.execute(update(vpp_locations).values(token_expires_at=utcnow() - timedelta(hours=1)))
        before = sum(sim.calls.values())
        with pytest.raises(VppError, match="expired on"):
            run(russet, russet.vpp.sync_now("main"))
        assert sum(sim.calls.values()) == before
        assert "expired" in (russet.vpp.list_locations()[0]["warning"] or "")


def test_throttling_is_backed_off_and_retried(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        calls = sim.calls["GET assets"]
        sim.inject("GET assets", 429, {"errorNumber": 9646, "errorMessage": "Too many requests"}, times=2)
        assert run(russet, russet.vpp.sync_now("main"))["assets"] == 3
        assert sim.calls["GET assets"] == calls + 3  # two 429s, then the page
        assert ledger_count(russet, service="vpp", field="pageIndex", status=429) == 2

        sim.inject("GET assets", 429, {"errorNumber": 9646, "errorMessage": "Too many requests"}, times=10)
        with pytest.raises(Throttled, match="9646"):
            run(russet, russet.vpp.sync_now("main"))
        sim.faults.clear()
        sim.inject("GET assets", 503, b"", headers={"Retry-After": "0"})
        assert run(russet, russet.vpp.sync_now("main"))["assets"] == 3


def test_requests_are_paced_under_apples_rate_limit(tmp_path: Path, settings: Settings) -> None:
    many = [Asset(str(500000000 + i), 1) for i in range(14)]
    with simulated(tmp_path, settings, assets=many, page_size=1) as (sim, russet, token):
        sim.limits["maxRequestPerSecond"] = 12
        add(russet, token)  # reads the limit from service config, then 14 pages and more
        assert sim.throttled == 0
        assert sim.calls["GET assets"] == 14 and len(russet.vpp.assets("main")["assets"]) == 14
        assert russet.vpp.show("main")["limits"]["maxRequestPerSecond"] == 12


def test_rate_limiter_spaces_requests() -> None:
    now = [100.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    waits = [limiter.reserve() for _ in range(4)]
    # Russet uses 80% of Apple's limit: one request per 1/8 s.
    assert waits == pytest.approx([0, 0.125, 0.25, 0.375])
    now[0] += 10
    assert limiter.reserve() == 0
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    asyncio.run(limiter.wait(fake_sleep))
    assert slept == [pytest.approx(0.125)]


def test_keynote_and_pages_listed_with_types(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        kinds = {
            a["adam_id"]: (a["product_type"], a["device_assignable"])
            for a in russet.vpp.assets("main")["assets"]
        }
        assert kinds[PAGES] == ("App", True) and kinds[KEYNOTE] == ("App", True)
        assert ("Book", False) in kinds.values()
