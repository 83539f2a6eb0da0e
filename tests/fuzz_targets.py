"""What the fuzz tests feed and what they accept back, one function per parser of outside input.

Each ``*_target`` takes the fuzzed bytes and returns normally when the parser either gave a
result or raised its documented error type; any other exception escapes and fails the test.
They are shared by tests/test_fuzz_*.py (pytest, small) and bench/fuzz_parsers.py (long runs).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from russet.abm.client import AbmClient
from russet.abm.errors import AbmError
from russet.abm.token import ServerToken
from russet.apple.gateway import Call, Datum
from russet.vpp.client import VppClient
from russet.vpp.errors import VppError
from russet.vpp.token import ContentToken
from simulators.dep import DepSimulator

# -- a gateway that answers with the fuzzed bytes -------------------------------------------------


@dataclass
class FakeResponse:
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class FakeGateway:
    """Stands in for AppleGateway: every request gets ``answer``; nothing is recorded."""

    def __init__(self, answer: FakeResponse, session: FakeResponse | None = None) -> None:
        self.answer = answer
        self.session = session or FakeResponse(200, b'{"auth_session_token": "s1"}')
        self.received_data: list[Datum] = []

    async def request(self, call: Call, method: str, url: str, **_: Any) -> FakeResponse:
        return self.session if url.endswith("/session") else self.answer

    def received(self, call: Call, response: Any, data: Any) -> None:
        self.received_data.extend(data)


async def _no_sleep(_: float) -> None:
    return None


SERVER_TOKEN = ServerToken("ck", "cs", "at", "as", datetime.now(UTC) + timedelta(days=300))
CONTENT_TOKEN = ContentToken("bearer", datetime.now(UTC) + timedelta(days=300), "Org")
STATUSES = [200, 200, 200, 201, 204, 400, 401, 403, 404, 429, 500, 503]

# -- ABM --------------------------------------------------------------------------------------------

ABM_SEEDS: dict[str, Any] = {
    "account": {
        "server_name": "Russet",
        "server_uuid": "6f1c0a2e-0000-4000-8000-000000000001",
        "org_name": "Example",
        "urls": [
            {"uri": "/server/devices", "http_method": ["POST"], "limit": {"default": 100, "maximum": 1000}}
        ],
    },
    "devices": {
        "cursor": "c1",
        "more_to_follow": True,
        "fetched_until": "2026-01-01T00:00:00Z",
        "devices": [DepSimulator.record("SIM00000001", 0), DepSimulator.record("SIM00000002", 1)],
    },
    "sync": {
        "cursor": "c2",
        "more_to_follow": False,
        "devices": [
            DepSimulator.record("SIM00000001", 0, op_type="added", op_date="2026-01-01T00:00:00Z"),
            DepSimulator.record("SIM00000001", 0, op_type="deleted", op_date="2026-01-02T00:00:00Z"),
        ],
    },
    "profile": {"profile_uuid": "ABCDEF0123456789", "devices": {"SIM00000001": "SUCCESS"}},
    "assign": {
        "profile_uuid": "ABCDEF0123456789",
        "devices": {"SIM00000001": "SUCCESS"},
        "retry_after_seconds": 5,
    },
    "session": {"auth_session_token": "1413-1f0c"},
    "error": {"code": "INVALID_CURSOR", "message": "Cursor is invalid"},
}
ABM_OPERATIONS = ["account", "devices", "sync", "profile", "assign", "remove"]


def abm_target(operation: str, status: int, body: bytes, *, session_body: bytes | None = None) -> None:
    """One ABM call answered with ``status`` and ``body``: a result or an AbmError, nothing else."""
    session = FakeResponse(200, session_body) if session_body is not None else None
    gateway = FakeGateway(FakeResponse(status, body), session)
    client = AbmClient(gateway, "fuzz", SERVER_TOKEN, "https://abm.test", sleep=_no_sleep)  # type: ignore[arg-type]

    async def work() -> Any:
        if operation == "account":
            return await client.account()
        if operation in ("devices", "sync"):
            sync = operation == "sync"
            return client.device_page(await client.fetch_devices("c0", 100, sync=sync), sync=sync)
        if operation == "profile":
            return await client.define_profile({"profile_name": "p", "url": "https://x"})
        if operation == "assign":
            return await client.assign_profile("ABCDEF", ["SIM00000001"])
        return await client.remove_profile(["SIM00000001"])

    try:
        asyncio.run(work())
    except AbmError:
        pass


# -- Apps and Books ---------------------------------------------------------------------------------

VPP_SEEDS: dict[str, Any] = {
    "service_config": {"limits": {"maxRequestPerSecond": 15}, "notificationTypes": ["ASSET_MANAGEMENT"]},
    "client_config": {
        "locationName": "Main",
        "countryISO2ACode": "US",
        "uId": "2049025000431439",
        "mdmInfo": {"id": "russet-1", "name": "Russet", "metadata": "x"},
    },
    "assets": {
        "assets": [
            {
                "adamId": "361309726",
                "pricingParam": "STDQ",
                "assignedCount": 1,
                "availableCount": 4,
                "retiredCount": 0,
                "totalCount": 5,
                "deviceAssignable": True,
                "revocable": True,
                "productType": "App",
                "supportedPlatforms": ["iOS", "macOS"],
            }
        ],
        "nextPageIndex": 1,
        "versionId": "v1",
    },
    "event": {
        "eventId": "4f2d4c5e-0000-4000-8000-000000000001",
        "tokenExpirationDate": "2030-01-01T00:00:00Z",
    },
    "status": {
        "eventStatus": "FAILED",
        "eventType": "ASSOCIATE",
        "numRequested": 2,
        "numCompleted": 1,
        "failures": [
            {
                "errorNumber": 9709,
                "errorMessage": "not enough licences",
                "errorInfo": {
                    "assets": [{"adamId": "361309726", "pricingParam": "STDQ"}],
                    "serialNumbers": ["SIM00000001"],
                    "clientUserIds": ["u1"],
                },
            }
        ],
    },
    "users": {
        "users": [
            {"clientUserId": "u1", "status": "Registered", "inviteCode": "abc", "email": "a@example.org"},
            {"clientUserId": "u1", "status": "Retired"},
        ]
    },
    "error": {
        "errorNumber": 9602,
        "errorMessage": "Invalid argument",
        "errorInfo": {"serialNumbers": ["S1"]},
    },
}
VPP_OPERATIONS = ["service_config", "client_config", "assets", "associate", "status", "users"]


def vpp_target(operation: str, status: int, body: bytes) -> None:
    """One Apps and Books call and the check of its answer: a result or a VppError, nothing else."""
    from russet.vpp import records

    gateway = FakeGateway(FakeResponse(status, body))
    client = VppClient(
        gateway,  # type: ignore[arg-type]
        "fuzz",
        CONTENT_TOKEN,
        "https://vpp.test",
        owner_id="russet-1",
        per_second=1e9,
        sleep=_no_sleep,
        on_takeover=lambda owner: None,
    )

    async def work() -> Any:
        if operation == "service_config":
            return await client.service_config()
        if operation == "client_config":
            return await client.client_config()
        if operation == "assets":
            return records.asset_page((await client.assets_page(0)).body, 0)
        if operation == "associate":
            return await client.manage_assets("associate", [("361309726", "STDQ")], ["SIM00000001"], [])
        if operation == "status":
            return records.status_outcome((await client.status("e1")).body)
        return records.user_list((await client.users("u1")).body)

    try:
        asyncio.run(work())
    except VppError:
        pass


NOTIFICATION_SEEDS: list[dict[str, Any]] = [
    {
        "notificationId": "0a4e1c1e-0000-4000-8000-000000000001",
        "notificationType": "ASSET_MANAGEMENT",
        "uId": "2049025000431439",
        "notification": {
            "type": "ASSOCIATE",
            "result": "FAILURE",
            "eventId": "e1",
            "assignments": [
                {"adamId": "361309726", "pricingParam": "STDQ", "serialNumber": "SIM00000001"},
                {"adamId": 361285480, "pricingParam": "STDQ", "clientUserId": "u1"},
            ],
            "error": {"errorNumber": 9709, "errorMessage": "not enough licences"},
        },
    },
    {
        "notificationId": "0a4e1c1e-0000-4000-8000-000000000002",
        "notificationType": "USER_MANAGEMENT",
        "notification": {
            "type": "CREATE",
            "result": "SUCCESS",
            "eventId": "e2",
            "users": [{"clientUserId": "u1", "status": "Associated", "inviteCode": "x", "idHash": "h"}],
        },
    },
    {
        "notificationId": "0a4e1c1e-0000-4000-8000-000000000003",
        "notificationType": "USER_ASSOCIATED",
        "notification": {"associatedUsers": [{"clientUserId": "u1", "idHash": "h", "status": "Associated"}]},
    },
    {
        "notificationId": "0a4e1c1e-0000-4000-8000-000000000004",
        "notificationType": "ASSET_COUNT",
        "notification": {"adamId": "361309726", "pricingParam": "STDQ", "countDelta": -2},
    },
]


def notification_target(body: bytes) -> None:
    """What a notification goes through before touching storage: decode and check it."""
    from russet.vpp.records import parse_notification

    try:
        parse_notification(body)
    except VppError:
        pass


def vpp_token_target(data: bytes) -> None:
    from russet.vpp.errors import TokenError
    from russet.vpp.token import parse_token

    try:
        parse_token(data)
    except TokenError:
        pass


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


Target = Callable[[bytes], None]
