"""Hostile property lists for tests and bench/fuzz_plists.py: hand-built bombs, and hypothesis
strategies for device messages, well-formed and mangled, XML and binary."""

from __future__ import annotations

import plistlib
import struct
from collections import Counter
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

# -- bombs -----------------------------------------------------------------------------------------


def binary_plist(objects: list[bytes], top: int = 0) -> bytes:
    """A binary plist of already encoded objects (one-byte references, two-byte offsets)."""
    body = bytearray(b"bplist00")
    offsets = []
    for obj in objects:
        offsets.append(len(body))
        body += obj
    table = len(body)
    for offset in offsets:
        body += struct.pack(">H", offset)
    body += struct.pack(">6xBBQQQ", 2, 1, len(objects), top, table)
    return bytes(body)


def _ascii(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) < 15:
        return bytes([0x50 | len(raw)]) + raw
    assert len(raw) < 256
    return bytes([0x5F, 0x10, len(raw)]) + raw


def reference_bomb(levels: int, around: dict[str, str] | None = None, key: str = "QueryResponses") -> bytes:
    """Each level an array holding the next level twice: a few hundred bytes, 2**levels leaves.

    With `around`, the bomb is the value of `key` in a dictionary that also holds `around`'s
    strings, so that it looks like a device message (a report, a check-in).
    """
    objects = [bytes([0xA2, i + 1, i + 1]) for i in range(levels)] + [b"\x51A"]  # the leaf: "A"
    if around is None:
        return binary_plist(objects)
    keys, vals = [], []
    for name, text in {**around, key: None}.items():
        keys.append(len(objects))
        objects.append(_ascii(name))
        if text is None:
            vals.append(0)
        else:
            vals.append(len(objects))
            objects.append(_ascii(text))
    assert len(keys) < 15 and len(objects) < 255
    objects.append(bytes([0xD0 | len(keys), *keys, *vals]))
    return binary_plist(objects, top=len(objects) - 1)


def cycle() -> bytes:
    """An array that holds itself."""
    return binary_plist([bytes([0xA1, 0])])


def deep_xml(levels: int) -> bytes:
    return b"<plist>" + b"<array>" * levels + b"<true/>" + b"</array>" * levels + b"</plist>"


def deep_binary(levels: int) -> bytes:
    return binary_plist([bytes([0xA1, i + 1]) for i in range(levels)] + [b"\x09"])


def entity_bomb(levels: int = 10, encoding: str = "utf-8") -> bytes:
    """The billion laughs: each entity ten of the previous one."""
    entities = ['<!ENTITY e0 "lol">'] + [
        f'<!ENTITY e{i} "{("&e" + str(i - 1) + ";") * 10}">' for i in range(1, levels)
    ]
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE plist [{"".join(entities)}]>'
        f"<plist><dict><key>MessageType</key><string>&e{levels - 1};</string></dict></plist>"
    )
    return text.encode(encoding)


# -- strategies ------------------------------------------------------------------------------------

MESSAGE_TYPES = [
    "Authenticate",
    "TokenUpdate",
    "CheckOut",
    "UserAuthenticate",
    "SetBootstrapToken",
    "GetBootstrapToken",
    "GetToken",
    "DeclarativeManagement",
    "ReturnToService",
]
STATUSES = ["Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow"]
KEYS = [
    "UDID",
    "EnrollmentID",
    "UserID",
    "UserShortName",
    "UserLongName",
    "EnrollmentUserID",
    "Topic",
    "Token",
    "PushMagic",
    "UnlockToken",
    "SerialNumber",
    "DeviceName",
    "OSVersion",
    "CommandUUID",
    "ErrorChain",
    "QueryResponses",
    "BootstrapToken",
    "Endpoint",
    "Data",
    "TokenServiceType",
    "AwaitingConfiguration",
]

scalars = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.binary(max_size=64),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=5),
    ),
    max_leaves=20,
)


def messages(udid: str, topic: str) -> st.SearchStrategy[dict[str, Any]]:
    """Check-in messages and reports near enough to real ones to get past the first checks."""
    base = st.fixed_dictionaries(
        {"UDID": st.one_of(st.just(udid), st.text(max_size=300))},
        optional={
            "MessageType": st.one_of(st.sampled_from(MESSAGE_TYPES), st.text(max_size=20)),
            "Status": st.one_of(st.sampled_from(STATUSES), st.text(max_size=10)),
            "Topic": st.one_of(st.just(topic), st.text(max_size=300)),
            "CommandUUID": st.text(max_size=80),
            "Token": st.binary(max_size=300),
            "PushMagic": st.text(max_size=300),
            "SerialNumber": st.text(max_size=100),
            "DeviceName": st.text(max_size=300),
            "UserID": st.text(max_size=300),
            "UserShortName": st.text(max_size=300),
            "QueryResponses": st.dictionaries(st.text(max_size=20), values, max_size=5),
            "ErrorChain": st.lists(st.dictionaries(st.text(max_size=20), values, max_size=4), max_size=3),
        },
    )
    return st.tuples(base, st.dictionaries(st.sampled_from(KEYS), values, max_size=4)).map(
        lambda parts: {**parts[1], **parts[0]}
    )


def encode(value: Any, binary: bool) -> bytes | None:
    """`value` as a plist, None if plistlib cannot write it (XML cannot hold control characters)."""
    try:
        return plistlib.dumps(value, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML)
    except (ValueError, TypeError, OverflowError):
        return None


@st.composite
def mangled(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few bytes flipped, cut, inserted or duplicated."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        if not out:
            break
        at = draw(st.integers(min_value=0, max_value=len(out) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "duplicate"]))
        if action == "flip":
            out[at] = draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del out[at : at + draw(st.integers(min_value=1, max_value=16))]
        elif action == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "truncate":
            del out[at:]
        else:
            out[at:at] = out[at : at + draw(st.integers(min_value=1, max_value=64))]
    return bytes(out)


@st.composite
def bodies(draw: st.DrawFn, udid: str, topic: str) -> bytes:
    """A device body: a message encoded as XML or binary, often mangled, sometimes plain garbage."""
    kind = draw(st.sampled_from(["xml", "binary", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(max_size=200))
    encoded = encode(draw(messages(udid, topic)), kind == "binary")
    if encoded is None:
        encoded = encode({"UDID": udid, "Status": "Idle"}, kind == "binary")
        assert encoded is not None
    return draw(st.one_of(st.just(encoded), mangled(encoded)))


# -- the device endpoints ----------------------------------------------------------------------------


def fuzz_device_endpoints(
    client: Any, device: Any, topic: str, examples: int, seed: int | None = None
) -> Counter[int]:
    """Send `examples` hostile bodies, signed by the enrolled `device`, to /mdm/checkin and
    /mdm/connect; every answer must be a 200 or a 4xx (a server exception fails too, as the
    test client raises it). Returns how often each status came back."""
    seen: Counter[int] = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies(device.udid, topic), kind=st.sampled_from(["checkin", "connect"]))
    def one(body: bytes, kind: str) -> None:
        response = device.send_raw(client, kind, body)
        seen[response.status_code] += 1
        assert response.status_code == 200 or 400 <= response.status_code < 500, (
            f"{kind} answered {response.status_code}: {response.text[:200]!r} for {body[:200]!r}"
        )

    (one if seed is None else hypothesis_seed(seed)(one))()
    return seen
