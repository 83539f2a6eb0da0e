"""The outbound gateway and the ledger, against a scripted HTTPS peer on 127.0.0.1."""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from russet.apple.catalogue import CATALOGUE, UndeclaredField
from russet.apple.connections import ConnectionRegistry, Disconnected, ServiceHooks
from russet.apple.gateway import AppleGateway, AppleUnavailable, Call, Datum
from russet.apple.tables import ledger
from russet.runtime import Russet
from russet.storage.db import utcnow
from simulators.https_peer import Answer, HttpsPeer
from simulators.tls import TlsFiles, make_server_tls

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_server_tls(tmp_path / "tls")


@pytest.fixture
def peer(tls: TlsFiles) -> Iterator[HttpsPeer]:
    with HttpsPeer(tls) as p:
        yield p


@pytest.fixture
def gateway(russet: Russet, tls: TlsFiles) -> AppleGateway:
    with russet.storage.engine.begin() as conn:
        russet.connections.connect(conn, "abm", "main")
    return AppleGateway(russet.ledger, russet.connections, ca_file=str(tls.ca_file), backoff=0.01)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def rows(russet: Russet) -> list[dict]:  # type: ignore[type-arg]
    russet.ledger.flush()
    with russet.storage.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(ledger).order_by(ledger.c.id))]


SYNC = Call(
    "abm",
    "main",
    "POST /devices",
    "look up devices by serial number",
    [Datum("session", "SESSION-TOKEN-1"), Datum("devices", "C02XK0XXJGH5", subject="C02XK0XXJGH5")],
)


async def send(gateway: AppleGateway, url: str, call: Call = SYNC) -> int:
    """Send the request `call` declares: its serials in the body, its session as the header."""
    session = [str(d.value) for d in call.sent if d.field == "session"]
    try:
        response = await gateway.request(
            call,
            "POST",
            f"{url}/devices",
            json={"devices": [d.value for d in call.sent if d.field == "devices"]},
            headers={"X-ADM-Auth-Session": session[0]} if session else {},
        )
        return response.status_code
    finally:
        await gateway.aclose()


def test_ledger_rows_match_the_wire(russet: Russet, gateway: AppleGateway, peer: HttpsPeer) -> None:
    peer.default = Answer(200, b"{}", {"Content-Type": "application/json", "X-Request-ID": "req-42"})
    assert run(send(gateway, peer.url)) == 200
    [wire] = peer.received
    assert wire.headers["x-adm-auth-session"] == "SESSION-TOKEN-1"
    assert json.loads(wire.body) == {"devices": ["C02XK0XXJGH5"]}
    recorded = rows(russet)
    fp = russet.ledger.fingerprint
    assert {(r["field"], r["value_fp"]) for r in recorded} == {
        ("session", fp("SESSION-TOKEN-1")),
        ("devices", fp("C02XK0XXJGH5")),
    }
    for r in recorded:
        assert (r["service"], r["connection"], r["endpoint"], r["direction"]) == (
            "abm",
            "main",
            "POST /devices",
            "sent",
        )
        assert r["status"] == 200 and r["request_id"] == "req-42"
        assert r["purpose"] == "look up devices by serial number"
    devices_row = next(r for r in recorded if r["field"] == "devices")
    assert devices_row["subject_type"] == "device" and devices_row["subject_fp"] == fp("c02xk0xxjgh5")
    # No value is stored in clear anywhere in the ledger.
    assert not any(
        "C02XK0XXJGH5" in str(v) or "SESSION-TOKEN-1" in str(v) for r in recorded for v in r.values()
    )


def test_undeclared_field_is_refused_before_anything_is_sent(
    russet: Russet, gateway: AppleGateway, peer: HttpsPeer
) -> None:
    call = Call("abm", "main", "POST /devices", "test", [Datum("favourite_colour", "teal")])
    with pytest.raises(UndeclaredField, match="favourite_colour"):
        run(send(gateway, peer.url, call))
    assert peer.received == [] and rows(russet) == []


def test_disconnected_connection_is_refused(russet: Russet, gateway: AppleGateway, peer: HttpsPeer) -> None:
    other = Call("abm", "never-connected", "POST /devices", "test", [])
    with pytest.raises(Disconnected):
        run(send(gateway, peer.url, other))
    assert peer.received == []


def test_retries_follow_retry_after_and_are_all_recorded(
    russet: Russet, gateway: AppleGateway, peer: HttpsPeer
) -> None:
    peer.script.extend([Answer(503, b"", {"Retry-After": "0"}), Answer(429, b"", {"Retry-After": "0"})])
    assert run(send(gateway, peer.url)) == 200
    assert len(peer.received) == 3
    assert [r["status"] for r in rows(russet) if r["field"] == "devices"] == [503, 429, 200]


def test_gives_up_after_the_allowed_attempts(russet: Russet, gateway: AppleGateway, peer: HttpsPeer) -> None:
    peer.default = Answer(500, b"")
    assert run(send(gateway, peer.url)) == 500
    assert len(peer.received) == 4


def test_unreachable_apple_is_reported_and_recorded(russet: Russet, gateway: AppleGateway) -> None:
    with pytest.raises(AppleUnavailable):
        run(send(gateway, "https://127.0.0.1:9"))
    assert {r["status"] for r in rows(russet)} == {None}


def test_apple_ca_file_replaces_the_trust_store(russet: Russet, peer: HttpsPeer, tmp_path: Path) -> None:
    other = make_server_tls(tmp_path / "other")
    with russet.storage.engine.begin() as conn:
        russet.connections.connect(conn, "abm", "main")
    gateway = AppleGateway(russet.ledger, russet.connections, ca_file=str(other.ca_file), max_attempts=1)
    with pytest.raises(AppleUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        run(send(gateway, peer.url))


def test_report_counts_exchanges_and_lists_fields_never_exchanged(
    russet: Russet, gateway: AppleGateway, peer: HttpsPeer
) -> None:
    for serial in ("S1", "S2", "S1"):
        call = Call("abm", "main", "POST /devices", "lookup", [Datum("devices", serial, subject=serial)])
        run(send(gateway, peer.url, call))
    report = russet.ledger.report()
    assert len(report) == len(CATALOGUE)
    devices = next(
        r for r in report if (r["service"], r["field"], r["direction"]) == ("abm", "devices", "sent")
    )
    assert devices["times"] == 3 and devices["distinct_subjects"] == 2
    assert devices["first"] <= devices["last"]
    token = next(r for r in report if (r["service"], r["field"]) == ("apns", "Token"))
    assert token["times"] == 0 and token["first"] is None
    assert {r["service"] for r in russet.ledger.report(service="vpp")} == {"vpp"}
    assert russet.ledger.report(since=utcnow() + timedelta(days=1))[0]["times"] == 0


def test_subject_query_answers_what_apple_was_told(
    russet: Russet, gateway: AppleGateway, peer: HttpsPeer
) -> None:
    run(send(gateway, peer.url))
    about = russet.ledger.about(["c02xk0xxjgh5"])
    assert [(r["field"], r["matched"]) for r in about] == [("devices", "subject")]
    assert russet.ledger.about(["NEVER-SENT"]) == []


def test_retention_prunes_old_rows(russet: Russet, gateway: AppleGateway, peer: HttpsPeer) -> None:
    run(send(gateway, peer.url))
    assert russet.ledger.prune(utcnow() - timedelta(days=1)) == 0
    assert russet.ledger.prune(utcnow() + timedelta(seconds=1)) == 2
    assert rows(russet) == []


def test_disconnect_blocks_traffic_at_once(russet: Russet, peer: HttpsPeer, tls: TlsFiles) -> None:
    registry = ConnectionRegistry(russet.storage.engine, [])
    with russet.storage.engine.begin() as conn:
        registry.connect(conn, "abm", "main")
    gateway = AppleGateway(russet.ledger, registry, ca_file=str(tls.ca_file))
    assert run(send(gateway, peer.url)) == 200
    # Another process disconnects it: this one notices within REFRESH_SECONDS, here forced.
    with russet.storage.engine.begin() as conn:
        from sqlalchemy import update

        from russet.apple.tables import apple_connections

        conn.execute(update(apple_connections).values(status="disconnected"))
    registry._loaded_at = 0  # the refresh interval elapsed
    with pytest.raises(Disconnected):
        run(send(gateway, peer.url))
    assert len(peer.received) == 1


def test_a_refresh_that_read_before_connect_committed_does_not_undo_it(russet: Russet) -> None:
    """Another thread's refresh may read the connections while this one's connect is uncommitted
    (a background job, as the flaky Apps and Books test saw): it must not drop the connection."""
    registry = ConnectionRegistry(russet.storage.engine, [])
    with russet.storage.engine.begin() as conn:
        registry.connect(conn, "abm", "main")
        registry._refresh()  # reads without the uncommitted row
        assert registry.is_active("abm", "main")
    registry._refresh()  # after the commit the row is read as it is
    assert registry.is_active("abm", "main")


def test_a_connect_rolled_back_is_read_again(russet: Russet) -> None:
    registry = ConnectionRegistry(russet.storage.engine, [])
    with pytest.raises(KeyError), russet.storage.engine.begin() as conn:
        registry.connect(conn, "abm", "main")
        raise KeyError("set-up failed")
    assert not registry.is_active("abm", "main")


def test_a_refresh_during_disconnect_does_not_let_traffic_through(russet: Russet) -> None:
    seen: list[bool] = []
    registry: ConnectionRegistry

    def purge(conn: object, name: str) -> dict[str, list[str]]:
        registry._refresh()  # another thread's refresh while the purge runs, before it commits
        seen.append(registry.is_active("abm", name))
        return {}

    hooks = ServiceHooks(
        "abm",
        destroy_credentials=lambda conn, name: {},
        purge=purge,
        apple_side=lambda name: [],
        traces=lambda conn, name: {},
    )
    registry = ConnectionRegistry(russet.storage.engine, [hooks])
    with russet.storage.engine.begin() as conn:
        registry.connect(conn, "abm", "main")
    registry.disconnect("abm", "main", purge=True)
    assert seen == [False]
    assert not registry.is_active("abm", "main")


# Modules allowed to talk to the network: the gateway (Apple), and the console's OpenID Connect
# client, which talks to the organisation's own identity provider and never to Apple, and the
# webhook sender, which posts events to the organisation's own receivers (Apple's hosts are refused
# as receivers) and never to Apple.
NETWORK_MODULES = {
    "httpx",
    "h2",
    "http.client",
    "urllib.request",
    "socket",
    "aiohttp",
    "requests",
    "urllib3",
    "ssl",
}
# russet/cli/listen.py binds the server's listening socket, and russet/cli/supervisor.py takes it
# over by descriptor (`russet serve --workers N`): they accept, they never connect.
ALLOWED = {
    "russet/apple",
    "russet/access/sso.py",
    "russet/webhooks/sender.py",
    "russet/cli/listen.py",
    "russet/cli/supervisor.py",
}


def test_only_the_gateway_opens_connections() -> None:
    offenders = []
    for path in sorted((ROOT / "russet").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if any(relative.startswith(prefix) for prefix in ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{relative}: {n}"
                for n in names
                if n.split(".")[0] in NETWORK_MODULES or n in NETWORK_MODULES
            ]
    assert offenders == []
