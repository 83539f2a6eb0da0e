"""The admin REST API: authentication, validation, pagination, OpenAPI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from russet.runtime import Russet
from simulators.device import SimDevice


def test_openapi_document_is_served(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert {
        "/api/v1/devices",
        "/api/v1/devices/{device_id}",
        "/api/v1/commands",
        "/api/v1/commands/{command_uuid}",
        "/api/v1/devices/{device_id}/commands",
    } <= set(doc["paths"])
    assert client.get("/api/v1/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer rus_nope"}, {"Authorization": "Basic abc"}]
)
def test_api_requires_a_valid_key(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/devices", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_revoked_key_is_refused_at_once(client: TestClient, russet: Russet) -> None:
    key = russet.storage.api_keys.create("temp")
    assert client.get("/api/v1/devices", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert russet.storage.api_keys.revoke("temp")
    assert client.get("/api/v1/devices", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_keys_are_stored_hashed(russet: Russet) -> None:
    from sqlalchemy import select

    from russet.storage.tables import api_keys

    key = russet.storage.api_keys.create("hashed")
    with russet.storage.engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.key_hash, api_keys.c.prefix)).one()
    assert key not in stored.key_hash and len(stored.key_hash) == 64
    assert key.startswith(stored.prefix)


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"devices": ["X"], "command": {"RequestType": "DeviceLock", "PIN": "12"}}, 400, "PIN"),
        ({"devices": ["X"], "command": {"Foo": 1}}, 400, "RequestType"),
        ({"devices": ["X"], "command": {"RequestType": "EraseDevice", "Bogus": True}}, 400, "Bogus"),
        ({"devices": [], "command": {"RequestType": "ProfileList"}}, 422, "devices"),
        ({"devices": "X", "command": {"RequestType": "ProfileList"}}, 422, "devices"),
        ({"command": {"RequestType": "ProfileList"}}, 422, "devices"),
    ],
)
def test_bad_commands_get_a_reason(  # type: ignore[no-untyped-def]
    client: TestClient, device: SimDevice, api_headers, body, status: int, reason: str
) -> None:
    device.enroll(client)
    body = {**body, "devices": [device.udid] if body.get("devices") == ["X"] else body.get("devices")}
    if body["devices"] is None:
        del body["devices"]
    response = client.post("/api/v1/commands", json=body, headers=api_headers)
    assert response.status_code == status
    assert reason in response.text


def test_unknown_device_is_404_and_nothing_is_queued(
    client: TestClient, russet: Russet, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    response = client.post(
        "/api/v1/commands",
        json={"devices": [device.udid, "NO-SUCH-DEVICE"], "command": {"RequestType": "ProfileList"}},
        headers=api_headers,
    )
    assert response.status_code == 404
    assert "NO-SUCH-DEVICE" in response.json()["detail"]
    assert russet.storage.queue.for_enrollment(device.udid) == []
    assert client.get("/api/v1/devices/NO-SUCH-DEVICE", headers=api_headers).status_code == 404
    assert client.get("/api/v1/commands/NO-SUCH-UUID", headers=api_headers).status_code == 404


def test_commands_come_from_apples_schemas(
    client: TestClient, russet: Russet, device: SimDevice, api_headers: dict[str, str]
) -> None:
    """Issue #15: every schema's command is delivered as built; what no schema defines is refused."""
    device.enroll(client)
    for refused, reason in [
        ({"RequestType": "Bogus"}, "unknown RequestType 'Bogus'"),
        ({"RequestType": "ContentCachingInformation", "Extra": [1]}, "unknown key 'Extra'"),
    ]:
        response = client.post(
            "/api/v1/commands", json={"devices": [device.udid], "command": refused}, headers=api_headers
        )
        assert response.status_code == 400
        assert reason in response.json()["detail"]
    assert russet.storage.queue.for_enrollment(device.udid) == []
    command = {"RequestType": "ManagedMediaList"}  # a builder generated from Apple's YAML alone
    response = client.post(
        "/api/v1/commands", json={"devices": [device.udid], "command": command}, headers=api_headers
    )
    assert response.status_code == 201
    delivered = device.command_of(device.connect(client, device.report_message("Idle")))
    assert delivered is not None and delivered["Command"] == command


def test_device_list_pages_by_id(client: TestClient, make_device, api_headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    ids = []
    for _ in range(5):
        d = make_device()
        d.enroll(client)
        ids.append(d.udid)
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = client.get("/api/v1/devices", params=params, headers=api_headers).json()
        seen += [d["id"] for d in page["devices"]]
        after = page["next"]
        if after is None:
            break
    assert seen == sorted(ids)
    found = client.get("/api/v1/devices", params={"search": ids[0][:8].lower()}, headers=api_headers).json()
    assert ids[0] in [d["id"] for d in found["devices"]]
    assert client.get("/api/v1/devices", params={"limit": 0}, headers=api_headers).status_code == 422


def test_a_search_naming_a_device_exactly_reads_the_indexes_only(
    client: TestClient, russet: Russet, make_device, api_headers: dict[str, str]  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import event

    devices = [make_device() for _ in range(3)]
    for d in devices:
        d.enroll(client)
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(russet.storage.engine, "before_cursor_execute", seen)
    try:
        for term in (devices[1].serial.lower(), devices[1].udid.lower(), devices[1].udid):
            found = client.get("/api/v1/devices", params={"search": term}, headers=api_headers).json()
            assert [d["id"] for d in found["devices"]] == [devices[1].udid], term
    finally:
        event.remove(russet.storage.engine, "before_cursor_execute", seen)
    assert statements and not [s for s in statements if "LIKE" in s.upper() and "enrollments" in s]
    # Part of a name or serial is still a substring search.
    part = devices[2].serial[2:8].lower()
    found = client.get("/api/v1/devices", params={"search": part}, headers=api_headers).json()
    assert devices[2].udid in [d["id"] for d in found["devices"]]


def test_a_device_named_in_any_case_is_found_through_the_indexes(
    client: TestClient, russet: Russet, make_device  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import event

    device = make_device()
    device.enroll(client)
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(russet.storage.engine, "before_cursor_execute", seen)
    try:
        for name in (device.serial.lower(), device.udid.lower(), device.serial):
            found = russet.devices.find_device(name)
            assert found is not None and found["id"] == device.udid, name
    finally:
        event.remove(russet.storage.engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "lower(" in s.lower()], "a table scan on lower(...)"
    # An identifier in mixed case (not how UDIDs are written) is still found, by a scan.
    mixed = device.udid[:4].lower() + device.udid[4:]
    assert russet.devices.find_device(mixed)["id"] == device.udid  # type: ignore[index]
    assert russet.devices.find_device("NOPE-NOT-A-DEVICE") is None
