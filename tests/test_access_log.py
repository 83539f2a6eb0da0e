"""The access log (issue #18 item 7): one line per request, device routes included, naming the
device or API key, never a query string or an Authorization value; configurable destination and
format; off means not installed."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.accesslog import LOGGER, AccessLog, clean, configure
from russet.app import DeviceFront, create_app
from russet.config import ConfigError, Settings
from russet.runtime import Russet
from simulators.device import Enrollment, SimDevice
from tests.conftest import PUBLIC_URL, new_profile

TEXT_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<method>\S+) (?P<path>\S+) (?P<status>\d+) "
    r"(?P<bytes>\d+) (?P<ms>\d+\.\d)ms (?P<who>\S+)$"
)


@pytest.fixture(autouse=True)
def _reset_logger() -> Iterator[None]:
    yield
    configure("off")  # close the file handlers tests installed


def serve(russet: Russet, log: Path, fmt: str = "text") -> TestClient:
    russet.settings = replace(russet.settings, access_log=str(log), access_log_format=fmt)
    return TestClient(create_app(russet), base_url=PUBLIC_URL)


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def text_fields(line: str) -> dict[str, str]:
    found = TEXT_LINE.match(line)
    assert found, line
    return found.groupdict()


def test_one_text_line_per_request_naming_the_device_or_the_key(russet: Russet, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    key = russet.storage.api_keys.create("ops-team")
    headers = {"Authorization": f"Bearer {key}"}
    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
    with serve(russet, log) as client:
        device.enroll(client)  # Authenticate, TokenUpdate
        idle = device.connect(client, device.report_message("Idle"))
        listed = client.get("/api/v1/devices", headers=headers)
        refused = client.get("/api/v1/devices", headers={"Authorization": "Bearer rus_not-a-key"})
        unsigned = client.put("/mdm/connect", content=b"<plist/>")
    got = [text_fields(line) for line in lines(log)]
    assert [(g["method"], g["path"], int(g["status"])) for g in got] == [
        ("PUT", "/mdm/checkin", 200),
        ("PUT", "/mdm/checkin", 200),
        ("PUT", "/mdm/connect", 200),
        ("GET", "/api/v1/devices", 200),
        ("GET", "/api/v1/devices", 401),
        ("PUT", "/mdm/connect", unsigned.status_code),
    ]
    assert [g["who"] for g in got] == [f"device={device.udid}"] * 3 + ["key=ops-team", "-", "-"]
    assert [int(g["bytes"]) for g in got][2:4] == [len(idle.content), len(listed.content)]
    assert int(got[4]["bytes"]) == len(refused.content) > 0
    assert unsigned.status_code == 400 and all(float(g["ms"]) >= 0 for g in got)
    text = log.read_text()
    assert key not in text and "rus_not-a-key" not in text and "Bearer" not in text


def test_query_strings_never_reach_the_log(
    russet: Russet, tmp_path: Path, api_headers: dict[str, str]
) -> None:
    log = tmp_path / "access.log"
    with serve(russet, log) as client:
        created = client.post("/api/v1/enrollment/tokens", json={"uses": 1}, headers=api_headers)
        assert created.status_code == 201
        token = created.json()["token"]
        assert client.get("/mdm/enroll", params={"token": token}).status_code == 200
        assert client.get("/mdm/enroll", params={"token": token}).status_code == 403  # used up
        client.get("/api/v1/devices", params={"search": "secret-search"}, headers=api_headers)
    text = log.read_text()
    assert token not in text and "token=" not in text and "secret-search" not in text and "?" not in text
    assert [text_fields(line)["path"] for line in lines(log)] == [
        "/api/v1/enrollment/tokens",
        "/mdm/enroll",
        "/mdm/enroll",
        "/api/v1/devices",
    ]


def test_json_lines(russet: Russet, tmp_path: Path, api_headers: dict[str, str]) -> None:
    log = tmp_path / "access.jsonl"
    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
    with serve(russet, log, "json") as client:
        device.enroll(client)
        answer = client.get("/api/v1/devices", headers=api_headers)
        missing = client.get("/nowhere")
    records = [json.loads(line) for line in lines(log)]
    assert len(records) == 4
    assert records[0]["device"] == records[1]["device"] == device.udid
    api = records[2]
    assert api["key"] == "tests" and "device" not in api
    assert (api["method"], api["path"], api["status"], api["bytes"]) == (
        "GET",
        "/api/v1/devices",
        200,
        len(answer.content),
    )
    assert isinstance(api["ms"], float) and re.fullmatch(r"\d{4}-.*\.\d{3}Z", api["time"])
    assert (records[3]["status"], records[3]["path"]) == (missing.status_code, "/nowhere")
    assert "key" not in records[3] and "device" not in records[3]


def test_a_path_cannot_forge_lines(russet: Russet, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with serve(russet, log) as client:
        client.get("/x%0A2026-01-01T00:00:00.000Z GET /forged 200 0 0.0ms key=admin")
        client.get("/" + "a" * 2000)
        client.get("/caf%C3%A9 2")
    got = lines(log)
    assert len(got) == 3
    paths = [text_fields(line)["path"] for line in got]
    assert paths[0].startswith("/x%0A2026-01-01T00:00:00.000Z%20GET%20/forged")
    assert paths[1] == "/" + "a" * 511 + "..."
    assert paths[2] == "/caf%C3%A9%202"


def test_stderr_is_the_default_and_off_installs_nothing(
    russet: Russet, settings: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert (Settings.from_env({}).access_log, Settings.from_env({}).access_log_format) == ("stderr", "text")
    assert russet.settings.access_log == "stderr"
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        client.get("/api/v1/health")
    err = capfd.readouterr().err.splitlines()
    assert [text_fields(line)["path"] for line in err if " /api/v1/health " in line] == ["/api/v1/health"]

    russet.settings = replace(russet.settings, access_log="off")
    app = create_app(russet)
    assert isinstance(app, DeviceFront)  # not wrapped: nothing to pay for
    with TestClient(app, base_url=PUBLIC_URL) as client:
        client.get("/api/v1/health")
    assert "/api/v1/health" not in capfd.readouterr().err
    assert not [h for h in logging.getLogger(LOGGER).handlers if getattr(h, "_russet_access_handler", False)]


def test_settings_are_checked(tmp_path: Path) -> None:
    env = {"RUSSET_DATA_DIR": str(tmp_path)}
    file = tmp_path / "logs" / "access.log"
    file.parent.mkdir()
    parsed = Settings.from_env({**env, "RUSSET_ACCESS_LOG": str(file), "RUSSET_ACCESS_LOG_FORMAT": "JSON"})
    assert (parsed.access_log, parsed.access_log_format) == (str(file), "json")
    assert Settings.from_env({**env, "RUSSET_ACCESS_LOG": "OFF"}).access_log == "off"
    for value in (str(tmp_path / "missing" / "access.log"), str(tmp_path)):
        with pytest.raises(ConfigError, match="RUSSET_ACCESS_LOG must be off, stderr or a file"):
            Settings.from_env({**env, "RUSSET_ACCESS_LOG": value})
    with pytest.raises(ConfigError, match="RUSSET_ACCESS_LOG_FORMAT must be one of text, json"):
        Settings.from_env({**env, "RUSSET_ACCESS_LOG_FORMAT": "xml"})


def test_an_application_failure_is_logged_as_500(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    logger = configure(str(log))
    assert logger is not None

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def call() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            pass

        await AccessLog(failing, logger)({"type": "http", "method": "GET", "path": "/x"}, receive, send)

    with pytest.raises(RuntimeError):
        asyncio.run(call())
    [line] = lines(log)
    assert text_fields(line)["status"] == "500"


def test_clean_leaves_ordinary_text_alone() -> None:
    path = "/api/v1/devices/0000-ABC:alex"
    assert clean(path) is path
    assert clean("a b\tc\n") == "a%20b%09c%0A"


def test_a_rotated_file_is_reopened(tmp_path: Path) -> None:
    """logrotate moves the file away: the next lines (within a second) go to a new file."""
    log = tmp_path / "access.log"
    logger = configure(str(log))
    assert logger is not None
    logger.info("first")
    log.rename(tmp_path / "access.log.1")
    time.sleep(1.05)  # the file is looked at once a second
    logger.info("second")
    assert lines(tmp_path / "access.log.1") == ["first"] and lines(log) == ["second"]


def test_capability_tokens_in_paths_are_redacted(russet: Russet, tmp_path: Path) -> None:
    """A hosted app's download token and a declaration data URL's token are bearer capabilities,
    valid for days: the access log writes neither, whether or not the request reached its route."""
    log = tmp_path / "access.log"
    app_token = "AppTok" + "x" * 40
    data_token = "DataTok" + "y" * 40
    with serve(russet, log) as client:
        client.get(f"/apps/download/{app_token}/manifest.plist")
        client.get(f"/apps/download/{app_token}/package.ipa")
        client.get(f"/mdm/ddm/data/SOME-UDID/com.example.asset/{data_token}")
        client.get(f"/apps/download/{app_token}")  # no route: still redacted
    text = log.read_text()
    assert app_token not in text and data_token not in text
    paths = [text_fields(line)["path"] for line in lines(log)]
    assert paths == [
        "/apps/download/[redacted]/manifest.plist",
        "/apps/download/[redacted]/package.ipa",
        "/mdm/ddm/data/SOME-UDID/com.example.asset/[redacted]",
        "/apps/download/[redacted]",
    ]
