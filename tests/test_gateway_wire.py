"""The ledger equals the wire (issue #16 item 4): each simulator's traffic replayed field by field.

A tap on the gateway's HTTP client keeps every request and answer as they crossed the wire; this
module reads the fields off them with its own small parser (JSON leaves, form and query names,
credential headers) and the endpoint tables of `russet.apple.wire`, and compares them with the
ledger, value fingerprints included. APNs is checked against what the APNs simulator received.
A caller that smuggles a field is refused and nothing reaches the simulator.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from russet.apns.certificate import create_push_csr, push_identity
from russet.apple.gateway import Call, Datum
from russet.apple.tables import ledger
from russet.apple.wire import ENDPOINTS, PROTOCOL_ANSWER_KEYS, PROTOCOL_HEADERS, WHOLE, Refused
from russet.config import Settings
from russet.escrow.activation_lock import ActivationLockClient, Unlock
from russet.runtime import Russet
from simulators.activation_lock import ActivationLockSimulator
from simulators.apns import ApnsSimulator, FakeAppleCA
from simulators.dep import DepSimulator, parse_oauth_header
from simulators.tls import make_server_tls
from tests import abm_support, vpp_support
from tests.test_apns_push import apple, drain, enqueue, enroll, push_settings, server, sim  # noqa: F401  (fixtures)

TOPIC = "com.apple.mgmt.External.5d7ba1a6-4d9b-4a6c-8e1d-4a3f3ac3c0de"

Exchange = tuple[httpx.Request, httpx.Response]


@pytest.fixture
def tap(monkeypatch: pytest.MonkeyPatch) -> list[Exchange]:
    """Every request the gateway's HTTP client sends, with the answer it got."""
    seen: list[Exchange] = []
    send = httpx.AsyncClient.send

    async def tapped(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = await send(self, request, **kwargs)
        seen.append((request, response))
        return response

    monkeypatch.setattr(httpx.AsyncClient, "send", tapped)
    return seen


def ledger_rows(russet: Russet, service: str) -> list[dict[str, Any]]:
    russet.ledger.flush()
    with russet.storage.engine.connect() as conn:
        query = select(ledger).where(ledger.c.service == service).order_by(ledger.c.id)
        return [dict(r._mapping) for r in conn.execute(query)]


def _leaves(value: Any, path: str, whole: set[str]) -> Iterator[tuple[str, Any]]:
    if path in whole:
        yield WHOLE + path, json.dumps(value, sort_keys=True)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else key, whole)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, path + "[]", whole)
    else:
        yield path, value


def _lookup(path: str, table: dict[str, str]) -> str | None:
    if path in table:
        return table[path]
    head, _, _ = path.rpartition(".")
    return table.get(head + ".*") if head else None


def _endpoint(service: str, request: httpx.Request) -> str:
    """Which endpoint template a request is, from its method and path alone."""
    matches = [
        template
        for svc, template in ENDPOINTS
        if svc == service
        and template.partition(" ")[0] == request.method
        and request.url.path.endswith("/" + template.partition(" ")[2].lstrip("/"))
    ]
    assert matches, f"{request.method} {request.url.path} is no {service} endpoint"
    return max(matches, key=len)  # /profile/devices, not /devices


def wire_sent(service: str, exchange: Exchange) -> tuple[str, list[tuple[str, Any]]]:
    """(endpoint, every (field, value) the request carried); fails on anything unaccounted for."""
    request = exchange[0]
    template = _endpoint(service, request)
    spec = ENDPOINTS[(service, template)]
    out: list[tuple[str, Any]] = []
    for name, value in request.url.params.multi_items():
        out.append((spec.query[name], value))
    for name, value in request.headers.items():
        if name in PROTOCOL_HEADERS:
            continue
        field = spec.headers[name]  # a KeyError is data on the wire the ledger cannot know of
        if value.startswith("Bearer "):
            out.append((field, value[len("Bearer ") :]))
        elif value.startswith("OAuth "):
            oauth = parse_oauth_header(value)
            out += [(field, oauth["oauth_consumer_key"]), (field, oauth["oauth_token"])]
        else:
            out.append((field, value))
    if request.content:
        kind = request.headers["content-type"].split(";")[0]
        if kind == "application/json":
            whole = {p[len(WHOLE) :] for p in spec.body if p.startswith(WHOLE)}
            out += [(spec.body[p], v) for p, v in _leaves(json.loads(request.content), "", whole)]
        else:
            out += [(spec.body[k], v) for k, v in parse_qsl(request.content.decode())]
    return template, out


def wire_received(service: str, exchange: Exchange) -> tuple[str, set[str], set[str]]:
    """(endpoint, declared fields the answer carried, `?path` of what it carried undeclared)."""
    request, response = exchange
    template = _endpoint(service, request)
    table = dict(ENDPOINTS[(service, template)].received)
    fields = {table[f"header:{h}"] for h in response.headers if f"header:{h}" in table}
    unknown: set[str] = set()
    if not response.content or "json" not in response.headers.get("content-type", ""):
        return template, fields, unknown
    body = json.loads(response.content)
    whole = {p[len(WHOLE) :] for p in table if p.startswith(WHOLE)}
    for path, _ in _leaves(body, "", whole):
        if path in PROTOCOL_ANSWER_KEYS:
            continue
        name = _lookup(path, table)
        if name is None:
            unknown.add("?" + (path or "(body)"))
        else:
            fields.add(name)
    return template, fields, unknown


def assert_ledger_equals_wire(russet: Russet, service: str, tap: list[Exchange]) -> None:
    exchanges = list(tap)
    assert exchanges, "the scenario sent nothing"
    fp = russet.ledger.fingerprint
    rows = ledger_rows(russet, service)
    # Sent: the same (endpoint, field, value) as many times as the wire carried it.
    wire = Counter()
    for exchange in exchanges:
        template, carried = wire_sent(service, exchange)
        wire.update((template, name, fp(value)) for name, value in carried)
    recorded = Counter((r["endpoint"], r["field"], r["value_fp"]) for r in rows if r["direction"] == "sent")
    assert recorded == wire
    # Received: every field recorded is one an answer to that endpoint carried, every declared
    # field an answer carried is recorded, and every undeclared one is recorded as such.
    carried_fields: set[tuple[str, str]] = set()
    for exchange in exchanges:
        template, fields, unknown = wire_received(service, exchange)
        carried_fields |= {(template, f) for f in fields | unknown}
    received = {(r["endpoint"], r["field"]) for r in rows if r["direction"] == "received"}
    assert sorted(received - carried_fields) == [], "recorded, not on the wire"
    missing = sorted(carried_fields - received)
    assert missing == [], f"on the wire, not recorded: {missing}"


def test_abm_traffic_is_recorded_as_it_crossed_the_wire(
    tmp_path: Path, settings: Settings, tap: list[Exchange]
) -> None:
    with abm_support.simulated(tmp_path, settings, devices=3) as (dep_sim, russet):
        abm_support.connect(russet, dep_sim)
        abm_support.run(russet, russet.abm.sync_now("main", full=True))
        dep_sim.add_device("LATE00001", battery_health="good")  # a field Apple adds, undeclared
        abm_support.run(russet, russet.abm.sync_now("main"))
        spec = {"profile_name": "Staff", "is_supervised": True, "skip_setup_items": ["Siri", "Privacy"]}
        made = abm_support.run(russet, russet.abm.define_profile("main", spec))
        abm_support.run(russet, russet.abm.assign_profile("main", made["profile_uuid"], ["SIM00000001"]))
        abm_support.run(russet, russet.abm.remove_profile("main", ["SIM00000001"]))
        assert_ledger_equals_wire(russet, "abm", tap)
        assert ("POST /devices/sync", "?devices[].battery_health") in {
            (r["endpoint"], r["field"]) for r in ledger_rows(russet, "abm")
        }
        [extra] = [
            r for r in russet.ledger.report(service="abm") if r["field"] == "?devices[].battery_health"
        ]
        assert extra["used_for"] == "(sent by Apple, not in the catalogue)" and extra["times"] == 1


def test_apps_and_books_traffic_is_recorded_as_it_crossed_the_wire(
    tmp_path: Path, settings: Settings, tap: list[Exchange]
) -> None:
    with vpp_support.simulated(tmp_path, settings) as (_, russet, token):
        vpp_support.add(russet, token)
        vpp_support.run(russet, russet.vpp.sync_now("main"))
        vpp_support.run(russet, russet.vpp.create_user("main", email="ada@example.org"))
        vpp_support.run(russet, russet.vpp.poll_now("main"))
        vpp_support.run(russet, russet.vpp.assign("main", vpp_support.KEYNOTE, serials=["C02SERIAL1"]))
        vpp_support.run(russet, russet.vpp.poll_now("main"))
        assert_ledger_equals_wire(russet, "vpp", tap)


@pytest.fixture
def activation_lock(tmp_path: Path) -> Iterator[tuple[ActivationLockSimulator, FakeAppleCA]]:
    ca = FakeAppleCA()
    with ActivationLockSimulator(make_server_tls(tmp_path / "al-tls"), ca.pem) as al:
        yield al, ca


def test_activation_lock_traffic_is_recorded_as_it_crossed_the_wire(
    tmp_path: Path,
    settings: Settings,
    tap: list[Exchange],
    activation_lock: tuple[ActivationLockSimulator, FakeAppleCA],
) -> None:
    al, ca = activation_lock
    configured = dataclasses.replace(settings, activation_lock_url=al.url, apple_ca_file=str(al.tls.ca_file))
    russet = Russet.open(configured, apple_backoff=0.01)
    try:
        csr = create_push_csr(russet.storage, tmp_path / "push.csr", force=True)
        cert = ca.issue_push_certificate(csr.public_key(), TOPIC)
        russet.push.import_certificate(cert.public_bytes(serialization.Encoding.PEM))
        russet.escrow.connect_activation_lock("default", "Example School")
        identity = push_identity(russet.storage)
        al.lock("F2LXK0AAJCL6", "iPhone15,2", "BYPASS-1", imei="356938035643809")
        client = ActivationLockClient(russet.gateway, al.url)
        unlock = Unlock(
            "F2LXK0AAJCL6", "iPhone15,2", "BYPASS-1", "Example School", "guid-1", imei="356938035643809"
        )
        answer = russet.run(client.unlock("default", unlock, (identity.certificate, identity.key)))
        assert answer.status == 200 and len(al.requests) == 1
        assert_ledger_equals_wire(russet, "activationlock", tap)
    finally:
        russet.close()


def test_apns_pushes_are_recorded_as_they_crossed_the_wire(
    server: Russet,  # noqa: F811
    sim: ApnsSimulator,  # noqa: F811
) -> None:
    russet = server
    devices = [enroll(russet) for _ in range(3)]
    sim.inject(devices[2]["token"], 410, "Unregistered")  # an answer with a reason
    enqueue(russet, *(d["udid"] for d in devices))
    russet.run(drain(russet))
    fp = russet.ledger.fingerprint
    wire_sent_rows: Counter[tuple[str, str | None]] = Counter()
    wire_received_rows: Counter[tuple[str, str | None]] = Counter()
    for r in sim.received:
        assert set(json.loads(r.body)) == {"mdm"}
        wire_sent_rows.update(
            [
                ("Token", fp(r.token)),
                ("PushMagic", fp(json.loads(r.body)["mdm"])),
                ("topic", fp(r.headers["apns-topic"])),
            ]
        )
        if r.status == 200:
            wire_received_rows[("apns-id", fp(r.apns_id))] += 1
        elif r.reason:
            wire_received_rows[("reason", fp(r.reason))] += 1
    rows = ledger_rows(russet, "apns")
    assert Counter((r["field"], r["value_fp"]) for r in rows if r["direction"] == "sent") == wire_sent_rows
    assert (
        Counter((r["field"], r["value_fp"]) for r in rows if r["direction"] == "received")
        == wire_received_rows
    )
    assert len(sim.received) == 3


# -- smuggling -------------------------------------------------------------------------------------


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet]]:
    with abm_support.simulated(tmp_path, settings) as (dep_sim, russet):
        with russet.storage.engine.begin() as conn:
            russet.connections.connect(conn, "abm", "main")
        yield dep_sim, russet


ASSIGN = Call(
    "abm",
    "main",
    "POST /profile/devices",
    "assign an enrollment profile to devices",
    [Datum("session", "S-1"), Datum("profile_uuid", "P-1"), Datum("devices", "SERIAL1", "SERIAL1")],
)


@pytest.mark.parametrize(
    ("smuggled", "why"),
    [
        ({"json": {"profile_uuid": "P-1", "devices": ["SERIAL1"], "imei": "356938035643809"}}, "imei"),
        ({"json": {"profile_uuid": "P-1", "devices": ["SERIAL1", "SERIAL2"]}}, "did not declare"),
        ({"json": {"profile_uuid": "P-1", "devices": [{"serial": "SERIAL1"}]}}, "devices"),
        ({"json": {"profile_uuid": "P-1", "devices": ["SERIAL1"]}, "params": {"udid": "X"}}, "udid"),
        ({"json": {"profile_uuid": "P-1", "devices": ["SERIAL1"]}, "headers": {"X-Device": "X"}}, "x-device"),
        ({"content": b"profile_uuid=P-1&devices=SERIAL1"}, "type"),
    ],
)
def test_a_smuggled_field_is_refused_and_nothing_leaves(
    dep: tuple[DepSimulator, Russet], tap: list[Exchange], smuggled: dict[str, Any], why: str
) -> None:
    dep_sim, russet = dep
    smuggled = dict(smuggled)
    headers = {"X-ADM-Auth-Session": "S-1", "X-Server-Protocol-Version": "10", **smuggled.pop("headers", {})}
    with pytest.raises(Refused, match=why):
        russet.run(
            russet.gateway.request(
                ASSIGN, "POST", f"{dep_sim.url}/profile/devices", headers=headers, **smuggled
            )
        )
    assert dep_sim.requests == [] and tap == []
    assert ledger_rows(russet, "abm") == []


def test_the_honest_request_goes_and_is_recorded(
    dep: tuple[DepSimulator, Russet], tap: list[Exchange]
) -> None:
    """The same call as above without the smuggled field: it leaves (the refusals are not blanket)."""
    dep_sim, russet = dep
    headers = {"X-ADM-Auth-Session": "S-1", "X-Server-Protocol-Version": "10"}
    body = {"profile_uuid": "P-1", "devices": ["SERIAL1"]}
    russet.run(
        russet.gateway.request(ASSIGN, "POST", f"{dep_sim.url}/profile/devices", headers=headers, json=body)
    )
    assert len(dep_sim.requests) == 1
    rows = ledger_rows(russet, "abm")
    assert {r["field"] for r in rows if r["direction"] == "sent"} == {"session", "profile_uuid", "devices"}
    # The simulator refuses the made-up session with a bare JSON string: undeclared, recorded as such.
    assert {r["field"] for r in rows if r["direction"] == "received"} == {"?(body)"}


def test_a_declared_field_not_sent_is_refused(dep: tuple[DepSimulator, Russet], tap: list[Exchange]) -> None:
    dep_sim, russet = dep
    headers = {"X-ADM-Auth-Session": "S-1", "X-Server-Protocol-Version": "10"}
    with pytest.raises(Refused, match="declared but not in"):
        russet.run(
            russet.gateway.request(
                ASSIGN,
                "POST",
                f"{dep_sim.url}/profile/devices",
                headers=headers,
                json={"profile_uuid": "P-1"},
            )
        )
    assert dep_sim.requests == []


class _Templates:
    def template(self, headers: Any) -> Any:
        return list(headers)


def test_a_push_shape_with_an_undeclared_header_or_key_is_refused(russet: Russet) -> None:
    call = Call("apns", "default", "POST /3/device/{token}", "wake", (Datum("topic", TOPIC),))
    good = [("apns-push-type", "mdm"), ("apns-topic", TOPIC), ("content-type", "application/json")]
    client: Any = _Templates()
    assert russet.gateway.push_template(call, client, good, b'{"mdm":""}') == good
    with pytest.raises(Refused, match="x-serial"):
        russet.gateway.push_template(call, client, [*good, ("x-serial", "F2LX")], b'{"mdm":""}')
    with pytest.raises(Refused, match="udid"):
        russet.gateway.push_template(call, client, good, b'{"mdm":"","udid":""}')
    with pytest.raises(Refused, match="topic"):
        russet.gateway.push_template(
            call, client, [good[0], ("apns-topic", "com.other"), good[2]], b'{"mdm":""}'
        )
