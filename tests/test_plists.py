"""The bounded plist parser: real plists read as plistlib reads them; bombs, cycles, deep nesting,
entities and malformed tables refused with PlistRejected (never another exception)."""

from __future__ import annotations

import plistlib
import struct
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from russet import plists
from russet.plists import Limits, PlistRejected
from tests.apple_schema import CAPTURES
from tests.plist_fuzz import (
    binary_plist,
    cycle,
    deep_binary,
    deep_xml,
    encode,
    entity_bomb,
    mangled,
    reference_bomb,
    values,
)

SAMPLE: dict[str, Any] = {
    "Status": "Acknowledged",
    "QueryResponses": {"DeviceName": "Robin's iPhone ü", "Capacity": 12.5, "Battery": 80, "Supervised": True},
    "ProfileList": [{"PayloadUUID": "X", "Data": b"\x00\x01", "When": datetime(2024, 5, 1, 12, 0)}],
    "Big": 2**63 + 5,
}


@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY])
def test_reads_what_plistlib_writes(fmt: plistlib.PlistFormat) -> None:
    data = plistlib.dumps(SAMPLE, fmt=fmt)
    assert plists.loads(data) == plistlib.loads(data) == SAMPLE


def test_reads_real_device_captures() -> None:
    captures = sorted(CAPTURES.glob("*.plist"))
    if not captures:
        pytest.skip(f"no device captures in {CAPTURES}")
    for path in captures:
        assert plists.loads(path.read_bytes()) == plistlib.loads(path.read_bytes())


def test_shared_objects_within_the_limits_are_read() -> None:
    data = reference_bomb(10)  # 1024 leaves: small
    assert plists.loads(data) == plistlib.loads(data)


@pytest.mark.parametrize("levels", [20, 30, 60])
def test_reference_bombs_are_refused_before_expansion(levels: int) -> None:
    data = reference_bomb(levels)
    assert len(data) < 500
    with pytest.raises(PlistRejected, match="expands to over"):
        plists.loads(data)


def test_expanded_size_counts_each_use_of_a_shared_object() -> None:
    big = b"\x4f\x12" + struct.pack(">I", 100_000) + b"x" * 100_000  # one 100 KB data object
    data = binary_plist([bytes([0xAF, 0x10, 50]) + bytes([1] * 50), big])  # an array using it 50 times
    assert plists.loads(data, Limits(max_expanded_bytes=6_000_000)) == [b"x" * 100_000] * 50
    with pytest.raises(PlistRejected, match="expands to over 4000000 bytes"):
        plists.loads(data, Limits(max_expanded_bytes=4_000_000))


def test_cycles_are_refused() -> None:
    with pytest.raises(PlistRejected, match="cycle"):
        plists.loads(cycle())
    # Two dictionaries holding each other.
    a_b = binary_plist([bytes([0xD1, 2, 1]), bytes([0xD1, 2, 0]), b"\x51k"])
    with pytest.raises(PlistRejected, match="cycle"):
        plists.loads(a_b)


@pytest.mark.parametrize("make", [deep_xml, deep_binary], ids=["xml", "binary"])
def test_nesting_is_limited(make: Any) -> None:
    assert plists.loads(make(63)) is not None
    with pytest.raises(PlistRejected, match="nested deeper than 64 levels"):
        plists.loads(make(65))
    with pytest.raises(PlistRejected, match="nested deeper"):
        plists.loads(make(100_000 if make is deep_xml else 250))


def test_object_count_is_limited() -> None:
    data = plistlib.dumps(list(range(1000)), fmt=plistlib.FMT_BINARY)
    assert len(plists.loads(data, Limits(max_objects=1001))) == 1000
    with pytest.raises(PlistRejected, match="1001 objects, over the limit of 1000"):
        plists.loads(data, Limits(max_objects=1000))
    with pytest.raises(PlistRejected, match="over 1000 objects"):
        plists.loads(plistlib.dumps(list(range(1000))), Limits(max_objects=1000))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_entity_declarations_are_refused_before_expansion(encoding: str) -> None:
    with pytest.raises(PlistRejected, match="DOCTYPE with an internal subset"):
        plists.loads(entity_bomb(10, encoding))


def test_an_empty_internal_subset_and_external_entities_are_refused() -> None:
    with pytest.raises(PlistRejected, match="internal subset"):
        plists.loads(b"<?xml version='1.0'?><!DOCTYPE plist []><plist><true/></plist>")
    external = b'<!DOCTYPE plist SYSTEM "file:///etc/passwd"><plist><string>&ext;</string></plist>'
    with pytest.raises(PlistRejected, match="XML entities other than the predefined"):
        plists.loads(external)
    assert plists.loads(b"<plist><string>&lt;&amp;&#233;</string></plist>") == "<&\u00e9"


def test_the_standard_doctype_is_accepted() -> None:
    data = plistlib.dumps({"a": 1})
    assert b"<!DOCTYPE plist PUBLIC" in data
    assert plists.loads(data) == {"a": 1}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"bplist00", "shorter than its header and trailer"),
        (b"bplist00" + b"\x09" + struct.pack(">6xBBQQQ", 9, 1, 1, 0, 9), "impossible offset"),
        (b"bplist00" + b"\x09" + struct.pack(">6xBBQQQ", 1, 1, 1, 1, 9), "top object is not in"),
        (b"bplist00" + b"\x09" + struct.pack(">6xBBQQQ", 1, 1, 2**40, 0, 9), "over the limit"),
        (b"bplist00" + b"\x09" + struct.pack(">6xBBQQQ", 1, 1, 1, 0, 2**60), "offset table lies outside"),
        (b"bplist00\x09\x40" + struct.pack(">6xBBQQQ", 1, 1, 1, 0, 9), "offset lies outside"),
        (binary_plist([bytes([0xA1, 7])]), "refers to an object it does not have"),
        (binary_plist([b"\x5f\x13" + struct.pack(">Q", 2**62)]), "runs past the object area"),
        (binary_plist([b"\x5f\x20"]), "malformed object length"),
        (binary_plist([b"\x77"]), "unknown object marker"),
        (b"<plist><dict><key>a</key></plist>", "malformed"),
        (b"\xff\xfe garbage", "malformed"),
    ],
)
def test_malformed_documents_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(PlistRejected, match=reason):
        plists.loads(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, binary=st.booleans(), data=st.data())
def test_fuzz_parser_reads_or_refuses(value: Any, binary: bool, data: st.DataObject) -> None:
    """Any bytes: a value equal to plistlib's, or PlistRejected; no other exception."""
    encoded = encode(value, binary)
    if encoded is None:
        return
    assert plists.loads(encoded) == plistlib.loads(encoded)
    body = data.draw(mangled(encoded))
    try:
        plists.loads(body)
    except PlistRejected:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300).map(lambda b: b"bplist00" + b))
def test_fuzz_random_binary_bytes(body: bytes) -> None:
    try:
        plists.loads(body)
    except PlistRejected:
        pass
