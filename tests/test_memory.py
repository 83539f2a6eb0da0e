"""Hostile requests leave the server's memory where it was.

The requests go through the ASGI app in this process, and the process's peak resident set size
(VmHWM, reset first through /proc/self/clear_refs) is compared with its size before: a binary
reference bomb in a command result, an XML entity bomb, deep nesting, and 300 MB bodies streamed
without a Content-Length to the API, the console sign-in and a device endpoint must together
cost less than 50 MB. Before the limits, the API alone held 300 MB twice over, and the bomb
expanded into 2**30 inventory items.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.runtime import Russet
from simulators.device import CHECKIN_TYPE, CONNECT_TYPE, SimDevice
from tests.conftest import PUBLIC_URL, command_in_flight
from tests.plist_fuzz import deep_binary, deep_xml, entity_bomb, reference_bomb

STATUS = Path("/proc/self/status")
MIB = 1024 * 1024
HUGE = 300 * MIB

pytestmark = pytest.mark.skipif(not STATUS.exists(), reason="needs Linux /proc to read the RSS")


def kib(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def reset_peak() -> bool:
    """Make VmHWM start again from the current RSS (Linux 4.0+); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def endless(total: int) -> AsyncIterator[bytes]:
    chunk = b"x" * MIB  # the same object every time: the client holds 1 MiB, not `total`
    for _ in range(total // MIB):
        yield chunk


def test_bombs_and_huge_bodies_leave_the_rss_within_50_mb(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    uuid = command_in_flight(client, russet, device, "InstalledApplicationList")
    around = {"UDID": device.udid, "Status": "Acknowledged", "CommandUUID": uuid}

    def signed(round: int) -> list[tuple[str, str, bytes, dict[str, str]]]:
        """The bombs, each signed by the enrolled device; `round` varies them, as check-ins may
        not be replayed."""
        bombs = [
            ("connect", reference_bomb(30 + round, around, key="InstalledApplicationList")),
            ("checkin", entity_bomb(12 + round)),
            ("connect", deep_xml(10_000 + round)),
            ("checkin", deep_binary(250 - round)),
        ]
        return [
            (
                "PUT",
                f"/mdm/{kind}",
                body,
                device.signed_headers(body, CHECKIN_TYPE if kind == "checkin" else CONNECT_TYPE),
            )
            for kind, body in bombs
        ]

    app = create_app(russet)

    async def send_all(requests: list[tuple[str, str, bytes, dict[str, str]]]) -> list[int]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
            statuses = []
            for method, path, body, headers in requests:
                statuses.append((await http.request(method, path, content=body, headers=headers)).status_code)
            for path in ("/api/v1/commands", "/console/login", "/mdm/connect"):
                method = "PUT" if path.startswith("/mdm/") else "POST"
                response = await http.request(method, path, content=endless(HUGE))
                statuses.append(response.status_code)
            return statuses

    asyncio.run(send_all(signed(1)))  # once to load whatever is loaded lazily
    requests = signed(0)
    gc.collect()
    before = kib("VmRSS")
    exact = reset_peak()
    statuses = asyncio.run(send_all(requests))
    after = kib("VmHWM") if exact else kib("VmRSS")
    print(f"peak RSS growth: {(after - before) / 1024:.1f} MB (exact peak: {exact})")
    assert after - before < 50 * 1024, f"RSS grew by {(after - before) // 1024} MB"
    assert statuses == [400, 400, 400, 400, 413, 413, 413]
    assert russet.devices.show_command(uuid)["status"] == "sent"
