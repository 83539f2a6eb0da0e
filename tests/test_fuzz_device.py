"""Fuzzing the device endpoints: hostile bodies, XML and binary, well-formed and mangled, signed by
an enrolled device so they reach the parser and the protocol handlers, get a 200 or a 4xx, never
a 5xx or an exception. A longer run: python bench/fuzz_plists.py --seconds 300."""

from __future__ import annotations

from fastapi.testclient import TestClient

from simulators.device import SimDevice
from tests.conftest import TOPIC
from tests.plist_fuzz import fuzz_device_endpoints


def test_fuzz_checkin_and_connect_answer_200_or_4xx(client: TestClient, device: SimDevice) -> None:
    device.enroll(client)
    seen = fuzz_device_endpoints(client, device, TOPIC, examples=120)
    assert sum(seen.values()) >= 120 and 400 in seen
    # The device is still served afterwards (unless a fuzzed CheckOut or Authenticate unenrolled it:
    # then a 403, never a 401, which would make a real device drop its MDM profile).
    assert device.connect(client, device.report_message("Idle")).status_code in (200, 403)
