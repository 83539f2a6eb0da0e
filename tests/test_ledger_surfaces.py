"""The ledger as admins and privacy officers see it: CLI report formats, subject lookups, API."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from click.testing import Result
from fastapi.testclient import TestClient

from russet.apple.gateway import Call, Datum
from russet.runtime import Russet
from simulators.device import SimDevice


def script_exchanges(russet: Russet, device: SimDevice) -> None:
    """Three pushes to one device and an ABM lookup of its serial, as the gateway records them."""
    push = Call(
        "apns",
        "default",
        "POST /3/device/{token}",
        "wake the device for queued commands",
        [
            Datum("Token", device.push_token, subject=device.udid),
            Datum("PushMagic", device.push_magic, subject=device.udid),
            Datum("topic", device.enrollment.topic),
        ],
    )
    for _ in range(3):
        russet.gateway.record(push, 200, "apns-id-1", [Datum("apns-id", "apns-id-1", subject=device.udid)])
    lookup = Call(
        "abm",
        "main",
        "POST /devices",
        "look up a device",
        [Datum("devices", device.serial, subject=device.serial)],
    )
    russet.gateway.record(lookup, 200, None)
    russet.ledger.flush()


@pytest.fixture
def run(invoke_cli: Callable[..., Result]) -> Callable[..., str]:
    """`russet ARGS…`, which must succeed: what it printed."""

    def run_(*args: str) -> str:
        result = invoke_cli(*args)
        assert result.exit_code == 0, result.output
        return result.output

    return run_


def test_report_in_every_format(run, russet: Russet, client: TestClient, device: SimDevice) -> None:  # type: ignore[no-untyped-def]
    device.enroll(client)
    script_exchanges(russet, device)
    rows = json.loads(run("ledger", "report", "--format", "json"))
    token = next(r for r in rows if (r["service"], r["field"]) == ("apns", "Token"))
    assert token["times"] == 3 and token["distinct_subjects"] == 1 and token["direction"] == "sent"
    assert token["used_for"] and token["first"] and token["last"]
    never = next(r for r in rows if (r["service"], r["field"]) == ("vpp", "Managed Apple ID"))
    assert never["times"] == 0

    table = list(csv.reader(io.StringIO(run("ledger", "report", "--format", "csv"))))
    assert table[0] == [
        "Service",
        "Data",
        "Direction",
        "Used for",
        "Times",
        "Distinct subjects",
        "First",
        "Last",
    ]
    assert ["Apple Push Notification service", "Token", "sent"] == table[1][:3] and table[1][4] == "3"

    text = run("ledger", "report", "--service", "apns")
    assert "PushMagic" in text and "never" in text and "Apps and Books" not in text


def test_subject_lookup_by_serial_finds_exchanges_keyed_by_udid(  # type: ignore[no-untyped-def]
    run, russet: Russet, client: TestClient, device: SimDevice
) -> None:
    device.enroll(client)
    script_exchanges(russet, device)
    data = json.loads(run("ledger", "subject", device.serial, "--json"))
    assert device.udid in data["also_known_as"]
    fields = [(e["service"], e["field"]) for e in data["exchanges"]]
    assert fields.count(("apns", "Token")) == 3 and ("abm", "devices") in fields
    assert "nothing about NOBODY" in run("ledger", "subject", "NOBODY")


def test_ledger_api(
    client: TestClient, russet: Russet, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    script_exchanges(russet, device)
    report = client.get("/api/v1/ledger/report", params={"service": "apns"}, headers=api_headers).json()
    assert {r["service"] for r in report} == {"apns"}
    about = client.get(f"/api/v1/ledger/subjects/{device.udid}", headers=api_headers).json()
    # Per push: Token, PushMagic and apns-id are about the device (the topic is about the
    # organisation); plus the ABM lookup of its serial number, which names the same device.
    assert len(about["exchanges"]) == 3 * 3 + 1
    bad = client.get("/api/v1/ledger/report", params={"since": "yesterday-ish"}, headers=api_headers)
    assert bad.status_code == 400 and "since" in bad.json()["detail"]
    assert (
        client.get("/api/v1/ledger/report", params={"service": "fax"}, headers=api_headers).status_code == 400
    )
