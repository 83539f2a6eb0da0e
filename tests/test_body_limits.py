"""Request bodies are limited while they are read, on every endpoint; device bodies are
authenticated before they are parsed; plist bombs from an enrolled device are refused."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import plistlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.bodylimit import ADMIN_LIMITS, OTHER_LIMIT, BodyLimit
from russet.config import Settings
from russet.enrollment.profile import ProfileRequest, build_profile, signed_profile
from russet.mdm import http as mdm_http
from russet.runtime import Russet
from simulators.device import CHECKIN_TYPE, CONNECT_TYPE, Enrollment, SimDevice
from tests.conftest import PUBLIC_URL, TOPIC, command_in_flight
from tests.plist_fuzz import cycle, deep_binary, deep_xml, entity_bomb, reference_bomb

CHUNK = b"x" * 65536


class Upload:
    """An ASGI `receive` that hands out 64 KiB chunks (forever, or `count` of them) and counts them."""

    def __init__(self, count: int | None = None, chunk: bytes = CHUNK) -> None:
        self.count = count
        self.chunk = chunk
        self.pulled = 0

    async def __call__(self) -> dict[str, Any]:
        if self.count is not None and self.pulled >= self.count:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled += 1
        return {"type": "http.request", "body": self.chunk, "more_body": True}


def call(
    app: Any, method: str, path: str, upload: Upload, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request straight through the ASGI app; (status, body)."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"mdm.example.test")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("mdm.example.test", 443),
    }

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, upload, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


ENDPOINTS = [
    ("POST", "/api/v1/commands", 1024 * 1024),
    ("PUT", "/api/v1/abm/main/token", 1024 * 1024),
    ("POST", "/api/v1/vpp/main", 1024 * 1024),
    ("POST", "/api/v1/profiles", 1024 * 1024 + 64 * 1024),
    ("POST", "/api/v1/apps", 1024 * 1024),
    ("POST", "/console/login", 64 * 1024),
    ("POST", "/console/devices/X/commands", 64 * 1024),
    ("POST", "/elsewhere", 64 * 1024),
]


def test_the_limit_table_is_as_documented() -> None:
    limits = BodyLimit(lambda *_: None)  # type: ignore[arg-type, return-value]
    for _, path, limit in ENDPOINTS:
        assert limits.limit_for(path) == limit
    # Enterprise app packages (not sent whole here: the tests below would move half a gigabyte).
    assert limits.limit_for("/api/v1/apps/upload") == 512 * 1024 * 1024 + 64 * 1024
    assert dict(ADMIN_LIMITS) == {
        "/api/v1/profiles": 1024 * 1024 + 64 * 1024,
        "/api/v1/apps/upload": 512 * 1024 * 1024 + 64 * 1024,
        "/api/": 1024 * 1024,
        "/console/profiles": 1024 * 1024 + 64 * 1024,
        "/console/groups": 1024 * 1024 + 64 * 1024,
        "/console": 64 * 1024,
    }
    assert OTHER_LIMIT == 64 * 1024


@pytest.mark.parametrize(("method", "path", "limit"), ENDPOINTS)
def test_a_declared_oversized_body_is_refused_unread(
    russet: Russet, method: str, path: str, limit: int
) -> None:
    upload = Upload()
    status, body = call(create_app(russet), method, path, upload, {"content-length": str(300 * 1024 * 1024)})
    assert status == 413 and f"over the {limit}-byte limit" in json.loads(body)["detail"]
    assert upload.pulled == 0


@pytest.mark.parametrize(("method", "path", "limit"), ENDPOINTS)
def test_a_chunked_oversized_body_is_refused_as_soon_as_it_passes(
    russet: Russet, method: str, path: str, limit: int
) -> None:
    upload = Upload()  # endless, no Content-Length: as a chunked upload
    status, body = call(create_app(russet), method, path, upload)
    assert status == 413 and f"over the {limit}-byte limit" in json.loads(body)["detail"]
    assert upload.pulled == limit // len(CHUNK) + 1  # read up to the first chunk past the limit


def test_bodies_within_the_limit_reach_the_app(russet: Russet, api_headers: dict[str, str]) -> None:
    app = create_app(russet)
    body = json.dumps(
        {"devices": ["nobody"], "command": {"RequestType": "ProfileList", "Pad": "x" * 900_000}}
    )
    status, answer = call(
        app,
        "POST",
        "/api/v1/commands",
        Upload(1, body.encode()),
        {**api_headers, "content-type": "application/json"},
    )
    assert status == 400 and "'Pad'" in answer.decode()  # the route read it: the command builder's answer
    # Many small chunks add up under the limit as well.
    status, _ = call(
        app,
        "POST",
        "/console/login",
        Upload(15, b"a=" + b"b" * 4094),
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 403  # the form's CSRF check, not the size limit


def test_a_bad_content_length_is_refused(russet: Russet) -> None:
    status, body = call(create_app(russet), "POST", "/api/v1/commands", Upload(1), {"content-length": "12x"})
    assert status == 400 and "Content-Length is not a number" in json.loads(body)["detail"]


def test_a_chunked_oversized_device_body_is_refused_as_soon_as_it_passes(
    russet: Russet, settings: Settings
) -> None:
    upload = Upload()
    status, body = call(create_app(russet), "PUT", "/mdm/connect", upload)
    assert status == 413 and b"limit" in body
    assert upload.pulled == settings.max_body_bytes // len(CHUNK) + 1


# -- authentication comes before parsing ------------------------------------------------------------


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body the device endpoints hand to the plist parser."""
    seen: list[bytes] = []
    real = mdm_http.parse_plist

    def spy(body: bytes) -> dict[str, Any]:
        seen.append(body)
        return real(body)

    monkeypatch.setattr(mdm_http, "parse_plist", spy)
    return seen


BOMBS = {
    "reference": reference_bomb(30, {"MessageType": "Authenticate", "Topic": TOPIC}, key="UDID"),
    "entities": entity_bomb(10),
    "deep-xml": deep_xml(10_000),  # 150 KB: under the body limit, far past the recursion limit
    "deep-binary": deep_binary(250),
    "cycle": cycle(),
}


@pytest.mark.parametrize("bomb", BOMBS)
def test_an_unsigned_or_badly_signed_bomb_is_never_parsed(
    client: TestClient, device: SimDevice, parsed: list[bytes], bomb: str
) -> None:
    body = BOMBS[bomb]
    unsigned = client.put("/mdm/checkin", content=body, headers={"Content-Type": CHECKIN_TYPE})
    other = device.signed_headers(b"another body", CHECKIN_TYPE)
    mis_signed = client.put("/mdm/checkin", content=body, headers=other)
    assert 400 <= unsigned.status_code < 500 and unsigned.status_code != 413
    assert mis_signed.status_code == 403
    assert parsed == []
    # The spy does see what is signed: a device's own bomb reaches the parser, which refuses it.
    response = device.send_raw(client, "checkin", body)
    assert response.status_code == 400 and "not a valid property list" in response.text
    assert parsed == [body]


@pytest.fixture
def proxied(settings: Settings) -> Iterator[Russet]:
    server = Russet.open(dataclasses.replace(settings, client_cert_header="Client-Cert"))
    yield server
    server.close()


def test_behind_a_proxy_a_bomb_without_a_good_certificate_is_never_parsed(
    proxied: Russet, parsed: list[bytes]
) -> None:
    profile = signed_profile(
        build_profile(
            ProfileRequest(PUBLIC_URL, TOPIC, identity="pkcs12", sign_message=False),
            proxied.authority,
            proxied.storage.certificates,
        ),
        proxied.authority,
    )
    device = SimDevice(Enrollment.from_profile(profile), path_only=True, proxy_header="Client-Cert")
    body = BOMBS["reference"]
    with TestClient(create_app(proxied), base_url=PUBLIC_URL) as client:
        for headers in ({}, {"Client-Cert": ":bm90IGEgY2VydGlmaWNhdGU=:"}):
            response = client.put(
                "/mdm/connect", content=body, headers={"Content-Type": CONNECT_TYPE, **headers}
            )
            assert response.status_code == 403
        assert parsed == []
        assert device.send_raw(client, "connect", body).status_code == 400
        assert parsed == [body]


# -- bombs from an enrolled device ------------------------------------------------------------------


@pytest.mark.parametrize("bomb", BOMBS)
def test_bombs_from_an_enrolled_device_are_refused_and_it_goes_on(
    client: TestClient, russet: Russet, device: SimDevice, bomb: str
) -> None:
    device.enroll(client)
    for kind in ("checkin", "connect"):
        response = device.send_raw(client, kind, BOMBS[bomb])
        assert response.status_code == 400 and "not a valid property list" in response.text
    assert device.command_of(device.connect(client, device.report_message("Idle"))) is None


def test_a_reference_bomb_in_a_result_is_refused_and_the_command_stays_open(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    """Before the bounded parser this result was stored and expanded into the inventory (2**30 items)."""
    device.enroll(client)
    uuid = command_in_flight(client, russet, device, "InstalledApplicationList")
    around = {"UDID": device.udid, "Status": "Acknowledged", "CommandUUID": uuid}
    body = reference_bomb(30, around, key="InstalledApplicationList")
    assert len(body) < 600
    response = device.send_raw(client, "connect", body)
    assert response.status_code == 400 and "expands to over" in response.text
    assert russet.devices.show_command(uuid)["status"] == "sent"
    # The same shape, small, is an ordinary answer.
    small = reference_bomb(3, around, key="InstalledApplicationList")
    assert device.send_raw(client, "connect", small).status_code == 200
    row = russet.storage.enrollments.get(device.udid)
    assert (
        row is not None
        and row["inventory"]["InstalledApplicationList"] == plistlib.loads(small)["InstalledApplicationList"]
    )
