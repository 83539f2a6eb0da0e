"""Fuzzing the profile library's upload: whatever arrives (damaged XML, binary or signed profiles,
random value trees), the answer is Invalid or TooLarge (a 400/413, one CLI line) or a stored
profile that fits Apple's schemas, never another exception."""

from __future__ import annotations

import plistlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from russet.kernel.errors import Invalid, TooLarge
from russet.library import upload
from russet.pki import sign_attached
from russet.schemas import profile_problems
from tests.fuzz_support import FUZZ, damaged
from tests.library_support import passcode, profile, restrictions, third_party_signer, wifi

DOCUMENT = profile(wifi(), passcode(), restrictions())
XML = plistlib.dumps(DOCUMENT)
BINARY = plistlib.dumps(DOCUMENT, fmt=plistlib.FMT_BINARY)
CERT, KEY = third_party_signer()
SIGNED = sign_attached(XML, CERT, KEY, [])


def _read(data: bytes) -> None:
    try:
        parsed = upload.read(data)
    except (Invalid, TooLarge):
        return
    assert profile_problems(parsed.profile) == []
    # The kept bytes are canonical: read back and written again, they are the same bytes.
    assert plistlib.dumps(plistlib.loads(parsed.content), sort_keys=True) == parsed.content


@FUZZ
@given(st.one_of(damaged(XML), damaged(BINARY), damaged(SIGNED)))
def test_fuzz_profile_upload(data: bytes) -> None:
    _read(data)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=8),
)
_KEYS = st.sampled_from(
    [
        "PayloadType",
        "PayloadContent",
        "PayloadUUID",
        "PayloadIdentifier",
        "PayloadVersion",
        "SSID_STR",
        "EncryptionType",
        "AutoJoin",
        "ConsentText",
        "x",
    ]
)
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(_TREES, st.sampled_from([wifi(), passcode(), restrictions()]))
def test_fuzz_profile_values(value: Any, good: dict[str, Any]) -> None:
    """Random values where a profile's keys go: the schema walk answers problems, never raises."""
    for document in (value, profile(good, PayloadContent=value), profile(good | {"SSID_STR": value})):
        assert isinstance(profile_problems(document), list)
        try:
            data = plistlib.dumps(document)
        except (TypeError, ValueError, OverflowError):  # None, huge ints: not a plist at all
            continue
        _read(data)
