"""Reading an uploaded `.mobileconfig`: bounded, unwrapped if signed, parsed, checked against
Apple's schemas, and reduced to what the library keeps.

Every refusal is an `Invalid` (or `TooLarge`) naming the problem in the schema's words, raised
before anything is stored. A signed upload (CMS SignedData, DER or PEM) must verify, so the file
is what its signer sent; who signed it is recorded, but not trusted for anything: Russet signs
what it delivers with its own identity.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import plistlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes

from russet import plists
from russet.kernel.errors import Invalid, TooLarge
from russet.library import variables
from russet.pki import SignatureError, verify_attached
from russet.schemas import profile_problems

MAX_PROFILE_BYTES = 1024 * 1024
MAX_IDENTIFIER_CHARS = 255
MAX_SHOWN_PROBLEMS = 5
# Nothing in a configuration profile nests deeply or holds many objects; these are far above a
# large real one (a few thousand objects) and far below what costs the server.
LIMITS = plists.Limits(max_objects=100_000, max_depth=32, max_expanded_bytes=8 * 1024 * 1024)

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
# Installed only by enrollment: a second MDM payload through InstallProfile is refused by devices.
_ENROLLMENT_ONLY = frozenset({"com.apple.mdm"})


@dataclass(frozen=True)
class Signer:
    subject: str
    fingerprint: str  # SHA-256 of the certificate, hex


@dataclass(frozen=True)
class ParsedProfile:
    """An uploaded profile as the library keeps it."""

    profile: dict[str, Any]
    content: bytes  # canonical XML plist: sorted keys, unsigned, variables not substituted
    sha256: str
    identifier: str
    payload_uuid: str
    display_name: str | None
    payloads: list[dict[str, Any]]  # [{type, identifier, uuid, display_name}]
    variables: list[str]
    unknown_variables: list[str]
    signer: Signer | None


def _unwrap(data: bytes) -> tuple[bytes, Signer | None]:
    """The plist bytes of an upload, and who signed it if it was signed."""
    head = data.lstrip()[:16]
    if head.startswith(b"-----BEGIN"):
        match = _PEM.search(data)
        if match is None:
            raise Invalid("the file starts like PEM but has no matching -----END----- line")
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except binascii.Error:
            raise Invalid(f"the PEM block ({match.group(1).decode()}) is not valid base64") from None
    elif head.startswith(b"\x30"):
        der = data
    else:
        return data, None
    try:
        signed = verify_attached(der)
    except SignatureError as exc:
        raise Invalid(f"the profile's signature: {exc}") from None
    certificate = signed.certificate
    signer = Signer(
        certificate.subject.rfc4514_string()[:1000], certificate.fingerprint(hashes.SHA256()).hex()
    )
    return signed.content, signer


def _text(value: Any, key: str, limit: int) -> str:
    """A string the library stores in a column: no NUL (PostgreSQL refuses one), bounded."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{key} must be a non-empty string")
    if "\x00" in value:
        raise Invalid(f"{key} holds a NUL character")
    if len(value) > limit:
        raise Invalid(f"{key} is longer than {limit} characters")
    return value


def _display(value: Any) -> str | None:
    return value.replace("\x00", "")[:255] if isinstance(value, str) else None


def _canonical(profile: dict[str, Any]) -> bytes:
    try:
        return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)
    except (TypeError, ValueError, OverflowError) as exc:  # UIDs, control characters, huge ints
        raise Invalid(f"the profile holds a value an XML plist cannot: {exc}") from None


def read(data: bytes) -> ParsedProfile:
    """Check an uploaded profile and return what the library keeps of it."""
    if len(data) > MAX_PROFILE_BYTES:
        raise TooLarge(f"the profile is {len(data)} bytes; the library takes up to {MAX_PROFILE_BYTES}")
    if not data.strip():
        raise Invalid("the file is empty")
    content, signer = _unwrap(data)
    try:
        profile = plists.loads(content, LIMITS)
    except plists.PlistRejected as exc:
        raise Invalid(f"not a property list Russet accepts: {exc}") from None
    if profile is None:  # XML without a <plist> element: plistlib finds nothing in it
        raise Invalid("not a property list: the XML has no <plist> element")
    if not isinstance(profile, dict):
        raise Invalid(f"a profile is a dictionary at its top level, not a {type(profile).__name__}")
    if profile.get("IsEncrypted") is True or "EncryptedPayloadContent" in profile:
        raise Invalid(
            "encrypted profiles are not supported: Russet validates the content, substitutes "
            "variables and signs it, so upload the profile unencrypted"
        )
    problems = profile_problems(profile, limit=MAX_SHOWN_PROBLEMS + 1)
    if problems:
        shown = "; ".join(str(p) for p in problems[:MAX_SHOWN_PROBLEMS])
        more = " (and more)" if len(problems) > MAX_SHOWN_PROBLEMS else ""
        raise Invalid(f"the profile does not match Apple's schemas: {shown}{more}")
    payloads = []
    for index, payload in enumerate(profile["PayloadContent"]):
        if payload["PayloadType"] in _ENROLLMENT_ONLY:
            raise Invalid(
                f"PayloadContent[{index}]: {payload['PayloadType']} payloads come only with "
                "enrollment (russet enrollment profile); devices refuse them through InstallProfile"
            )
        payloads.append(
            {
                "type": payload["PayloadType"],
                "identifier": _text(
                    payload["PayloadIdentifier"],
                    f"PayloadContent[{index}].PayloadIdentifier",
                    MAX_IDENTIFIER_CHARS,
                ),
                "uuid": _text(payload["PayloadUUID"], f"PayloadContent[{index}].PayloadUUID", 255),
                "display_name": _display(payload.get("PayloadDisplayName")),
            }
        )
    canonical = _canonical(profile)
    # What devices get is this XML, read back: a binary plist's carriage returns come back as line
    # feeds (XML normalises them), so the kept profile is the one read from the kept bytes.
    try:
        profile = load_content(canonical)
    except plists.PlistRejected as exc:  # within the limits as binary, past them as XML
        raise Invalid(f"the profile is too large once written as XML: {exc}") from None
    known, unknown = variables.used(profile)
    return ParsedProfile(
        profile=profile,
        content=canonical,
        sha256=hashlib.sha256(canonical).hexdigest(),
        identifier=_text(profile["PayloadIdentifier"], "PayloadIdentifier", MAX_IDENTIFIER_CHARS),
        payload_uuid=_text(profile["PayloadUUID"], "PayloadUUID", 255),
        display_name=_display(profile.get("PayloadDisplayName")),
        payloads=payloads,
        variables=known,
        unknown_variables=unknown,
        signer=signer,
    )


def load_content(content: bytes) -> dict[str, Any]:
    """A stored version's profile, read back (Russet wrote it, but it is read within limits too)."""
    profile: dict[str, Any] = plists.loads(content, LIMITS)
    return profile
