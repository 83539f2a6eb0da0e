"""Every check-in MessageType in Apple's schemas, on every kind of channel, with and without its
optional keys and with each key of the wrong type: answered as Apple defines, never with a 5xx."""

from __future__ import annotations

import json
import plistlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.declarative.service import EMPTY_SET_TOKEN
from russet.runtime import Russet
from simulators.device import SimDevice, SimUser
from tests.apple_schema import SCHEMAS, load_schema, schema_errors

IDENTITY_KEYS = ("UDID", "EnrollmentID", "EnrollmentUserID", "UserID", "UserShortName", "UserLongName")
SAMPLE: dict[str, Any] = {
    "<string>": "sample",
    "<integer>": 1,
    "<boolean>": True,
    "<real>": 1.5,
    "<data>": b"\x01\x02\x03",
    "<date>": datetime(2025, 1, 1, tzinfo=UTC).replace(tzinfo=None),
    "<array>": [],
    "<dictionary>": {},
}
WRONG: dict[str, Any] = {
    "<string>": 7,
    "<integer>": "seven",
    "<boolean>": "yes",
    "<data>": "not data",
    "<array>": "not an array",
    "<dictionary>": ["not", "a", "dict"],
}
# SynchronizationTokens, from the protocol reference (§a.4.7).
SYNC_TOKENS = [
    {"key": "DeclarationsToken", "type": "<string>", "presence": "required"},
    {"key": "Timestamp", "type": "<string>", "presence": "required"},
]
# Values that make a message meaningful rather than merely well-typed.
MEANINGFUL: dict[str, list[Any]] = {
    "Endpoint": ["tokens", "declaration-items", "status", "declaration/configuration/x", "nonsense"],
    "TokenServiceType": ["com.apple.maid", "com.apple.watch.pairing"],
    "Data": [b'{"StatusItems": {}, "Errors": []}', b"not json"],
}


def checkin_schemas() -> list[dict[str, Any]]:
    if not SCHEMAS.is_dir():
        return []
    return [
        load_schema(str(p.relative_to(SCHEMAS))) for p in sorted((SCHEMAS / "mdm/checkin").glob("*.yaml"))
    ]


def sample(spec: dict[str, Any]) -> Any:
    if spec["type"] == "<dictionary>" and spec.get("subkeys"):
        return {k["key"]: sample(k) for k in spec["subkeys"] if k["key"] != "ANY"}
    return SAMPLE[spec["type"]]


def variants(schema: dict[str, Any], device: SimDevice) -> list[tuple[str, dict[str, Any]]]:
    """(name, message) pairs: as Apple lists it, per channel kind, minimal, each key mistyped."""
    message_type = schema["payload"]["requesttype"]
    keys = [k for k in schema["payloadkeys"] if k["key"] != "MessageType"]
    body = {k["key"]: sample(k) for k in keys if k["key"] not in IDENTITY_KEYS}
    if "Topic" in body:
        body["Topic"] = device.enrollment.topic
    user = SimUser.mac_user()
    base = {"MessageType": message_type}
    out = [
        ("device channel", {**base, **body, "UDID": device.udid}),
        ("user channel", {**base, **body, "UDID": device.udid, **user.keys}),
        ("shared iPad user", {**base, **body, "UDID": device.udid, **SimUser.shared_ipad_user().keys}),
        ("user enrollment", {**base, **body, "EnrollmentID": device.udid}),
        ("as listed", {**base, **{k["key"]: sample(k) for k in keys}}),
        ("minimal", {**base, "UDID": device.udid}),
    ]
    for key, values in MEANINGFUL.items():
        if key in body:
            out += [(f"{key}={v!r}", {**base, **body, "UDID": device.udid, key: v}) for v in values]
    for spec in keys:
        if spec["type"] in WRONG:
            out.append(
                (
                    f"mistyped {spec['key']}",
                    {**base, **body, "UDID": device.udid, spec["key"]: WRONG[spec["type"]]},
                )
            )
    return out


@pytest.mark.parametrize("schema", checkin_schemas(), ids=lambda s: s["payload"]["requesttype"])
def test_every_checkin_message_is_answered_without_a_server_error(
    client: TestClient, russet: Russet, make_device, schema: dict[str, Any]
) -> None:  # type: ignore[no-untyped-def]
    device: SimDevice = make_device()
    device.enroll(client)
    for name, msg in variants(schema, device):
        response = device.check_in(client, msg)
        assert response.status_code < 500, (name, response.status_code, response.text)
        assert response.status_code in (200, 400, 403, 404, 410), (name, response.status_code)
        if response.status_code != 200:
            assert response.text.strip(), f"{name}: a refusal must say why"
        if response.status_code == 200 and response.content:  # a body is a plist or DDM's JSON
            if response.headers["content-type"].startswith("application/json"):
                json.loads(response.content)
            else:
                assert isinstance(plistlib.loads(response.content), dict)
        if msg["MessageType"] in ("Authenticate", "CheckOut"):  # back to an enrolled device
            device.os_version = str(uuid.uuid4())  # a new Authenticate body (the replay guard)
            device.enroll(client)
    fresh = make_device()
    fresh.enroll(client)  # and the server goes on serving
    assert fresh.command_of(fresh.connect(client, fresh.report_message("Idle"))) is None


def test_the_schemas_cover_the_message_types_russet_answers() -> None:
    types = {s["payload"]["requesttype"] for s in checkin_schemas()}
    assert types == {
        "Authenticate",
        "TokenUpdate",
        "CheckOut",
        "UserAuthenticate",
        "SetBootstrapToken",
        "GetBootstrapToken",
        "GetToken",
        "DeclarativeManagement",
    }


@pytest.mark.parametrize(
    ("message", "user", "status", "answer"),
    [
        ({"MessageType": "SetBootstrapToken", "BootstrapToken": b"t"}, False, 200, None),
        ({"MessageType": "GetBootstrapToken"}, False, 200, {}),
        ({"MessageType": "UserAuthenticate"}, True, 410, "does not manage"),
        ({"MessageType": "GetToken", "TokenServiceType": "com.apple.maid"}, False, 400, "not served"),
        ({"MessageType": "GetToken", "TokenServiceType": "com.apple.maid"}, True, 400, "not served"),
        ({"MessageType": "DeclarativeManagement", "Endpoint": "status", "Data": b"{}"}, True, 200, None),
        ({"MessageType": "DeclarativeManagement", "Endpoint": "declaration/asset/a"}, False, 404, "no asset"),
        ({"MessageType": "DeclarativeManagement", "Endpoint": "tokens/../x"}, False, 400, "unknown"),
        ({"MessageType": "ReturnToService"}, False, 200, {"ReturnToService": {"Enabled": False}}),
        ({"MessageType": "ReturnToUser"}, False, 400, "unknown MessageType 'ReturnToUser'"),
        ({"MessageType": "Frobnicate"}, True, 400, "unknown MessageType"),
    ],
)
def test_each_message_gets_apples_answer(
    client: TestClient, device: SimDevice, message: dict[str, Any], user: bool, status: int, answer: Any
) -> None:
    device.enroll(client)
    keys = SimUser.mac_user().keys if user else {}
    response = device.check_in(client, {**message, "UDID": device.udid, **keys})
    assert response.status_code == status, response.text
    if isinstance(answer, str):
        assert answer in response.text
    elif answer is not None:
        assert plistlib.loads(response.content) == answer
    else:
        assert response.content == b""


def test_declarative_management_answers_an_empty_set_by_apples_schemas(
    client: TestClient, device: SimDevice
) -> None:
    device.enroll(client)
    answers = {}
    for endpoint, schema in (
        ("tokens", "declarative/protocol/tokensresponse.yaml"),
        ("declaration-items", "declarative/protocol/declarationitemsresponse.yaml"),
    ):
        msg = {"MessageType": "DeclarativeManagement", "UDID": device.udid, "Endpoint": endpoint}
        response = device.check_in(client, msg)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        answers[endpoint] = json.loads(response.content)
        keys = load_schema(schema)["payloadkeys"]
        if endpoint == "tokens":  # Apple's copy names SynchronizationTokens but does not define it
            keys[0]["subkeys"] = SYNC_TOKENS
        assert schema_errors(keys, answers[endpoint]) == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", answers["tokens"]["SyncTokens"]["Timestamp"])
    # A device given no declarations: the token of the empty set (russet.declarative).
    assert answers["tokens"]["SyncTokens"]["DeclarationsToken"] == EMPTY_SET_TOKEN
    assert answers["declaration-items"]["DeclarationsToken"] == EMPTY_SET_TOKEN
    assert all(v == [] for v in answers["declaration-items"]["Declarations"].values())
