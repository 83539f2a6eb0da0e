"""ADE enrollment profiles: checked before anything is sent, assigned in batches (§e.7).

Apple's own checks (CONFIG_NAME_INVALID, FLAGS_INVALID, ...) are done here first so the admin
hears what is wrong, all of it at once, before a profile half-exists at Apple. Profiles are
immutable at Apple: changing one means defining a new one and assigning it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from russet.abm.client import AbmClient
from russet.abm.errors import AbmError, Throttled
from russet.abm.store import AbmStore

# Where ADE devices POST their signed MachineInfo for an enrollment profile (§c.3), under
# RUSSET_PUBLIC_URL. Served by the ADE enrollment endpoint.
ADE_ENROLLMENT_PATH = "/mdm/enroll"
# Sign-in during Setup Assistant (russet/enrollment/signin.py): a profile's configuration_web_url.
ADE_SIGNIN_PATH = "/mdm/enroll/signin"
MAX_SERIALS_PER_CALL = 1000

BOOL_FIELDS = (
    "is_supervised",
    "is_mandatory",
    "is_mdm_removable",
    "is_multi_user",
    "await_device_configured",
    "auto_advance_setup",
    "allow_pairing",
    "do_not_use_profile_from_backup",
    "is_return_to_service",
)
TEXT_LIMITS = {  # Apple's limits, in characters (§e.7 error table)
    "profile_name": 125,
    "url": 2000,
    "org_magic": 256,
    "department": 125,
    "support_phone_number": 50,
    "support_email_address": 250,
    "configuration_web_url": 2000,
}
CERT_LIST_FIELDS = ("anchor_certs", "supervising_host_certs")
SKIP_KEYS = frozenset(
    """Accessibility ActionButton Android Appearance AppleID AppStore Biometric CameraButton
    DeviceToDeviceMigration Diagnostics DisplayTone EnableLockdownMode FileVault
    HomeButtonSensitivity iCloudDiagnostics iCloudStorage iMessageAndFaceTime Intelligence Keyboard
    Location MessagingActivationUsingPhoneNumber OnBoarding Passcode Payment Privacy Restore
    RestoreCompleted ScreenSaver Safety ScreenTime SIMSetup Siri SoftwareUpdate SpokenLanguage
    TapToSetup TermsOfAddress TOS TVHomeScreenSync TVProviderSignIn TVRoom UpdateCompleted Wallpaper
    WatchMigration Welcome Zoom""".split()
)
KNOWN_FIELDS = frozenset(
    (*BOOL_FIELDS, *TEXT_LIMITS, *CERT_LIST_FIELDS, "skip_setup_items", "language", "region")
)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_REGION = re.compile(r"^[A-Z]{2}$")


def ade_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}{ADE_ENROLLMENT_PATH}"


def signin_url(public_url: str) -> str:
    """Russet's own sign-in page for Setup Assistant, as a profile's configuration_web_url."""
    return f"{public_url.rstrip('/')}{ADE_SIGNIN_PATH}"


def validate_profile(spec: Any, *, default_url: str, default_org_magic: str) -> dict[str, Any]:
    """The profile as it will be sent, or AbmError listing every problem."""
    if not isinstance(spec, dict):
        raise AbmError("a profile is a JSON object of Apple's profile fields (profile_name, url, ...)")
    errors: list[str] = []
    profile: dict[str, Any] = {}
    for key in spec:
        if key == "devices":
            errors.append("devices: define the profile first, then assign it (`russet abm profile assign`)")
        elif key == "profile_uuid":
            errors.append("profile_uuid: Apple assigns it; profiles cannot be changed, define a new one")
        elif key not in KNOWN_FIELDS:
            errors.append(f"{key}: not a profile field (known: {', '.join(sorted(KNOWN_FIELDS))})")
    values = {"url": default_url, "org_magic": default_org_magic, **spec}
    for name, limit in TEXT_LIMITS.items():
        value = values.get(name)
        if value is None:
            if name == "profile_name":
                errors.append("profile_name: required")
            continue
        if not isinstance(value, str):
            errors.append(f"{name}: should be text, got {type(value).__name__}")
        elif not value.strip() or len(value) > limit:
            errors.append(f"{name}: should be 1 to {limit} characters")
        else:
            profile[name] = value
    for name in ("url", "configuration_web_url"):
        if isinstance(profile.get(name), str):
            parts = urlsplit(profile[name])
            if parts.scheme != "https" or not parts.hostname:
                errors.append(
                    f"{name}: devices only use https URLs, got {profile[name]!r}"
                    + (" (set RUSSET_PUBLIC_URL to Russet's https address)" if name == "url" else "")
                )
    email = profile.get("support_email_address")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        errors.append(f"support_email_address: {email!r} is not an email address")
    for name in BOOL_FIELDS:
        if name in spec:
            if isinstance(spec[name], bool):
                profile[name] = spec[name]
            else:
                errors.append(f"{name}: should be true or false, got {type(spec[name]).__name__}")
    if profile.get("is_mdm_removable") is False and profile.get("is_supervised") is not True:
        errors.append(
            "is_mdm_removable: false is only allowed with is_supervised true (Apple's FLAGS_INVALID)"
        )
    for name, pattern, what in (
        ("language", _LANGUAGE, "an ISO 639 code such as en"),
        ("region", _REGION, "an ISO 3166-1 code such as US"),
    ):
        if name in spec:
            value = spec[name]
            if isinstance(value, str) and pattern.match(value):
                profile[name] = value
            else:
                errors.append(f"{name}: should be {what}, got {value!r}")
    if "skip_setup_items" in spec:
        items = spec["skip_setup_items"]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            errors.append("skip_setup_items: should be a list of Setup Assistant pane keys")
        else:
            unknown = sorted(set(items) - SKIP_KEYS)
            if unknown:
                errors.append(f"skip_setup_items: unknown pane keys {', '.join(unknown)}")
            else:
                profile["skip_setup_items"] = list(dict.fromkeys(items))
    for name in CERT_LIST_FIELDS:
        if name in spec:
            certs = _certificates(name, spec[name], errors)
            if certs is not None:
                profile[name] = certs
    if errors:
        raise AbmError("the profile is not valid: " + "; ".join(errors))
    return profile


def _certificates(name: str, value: Any, errors: list[str]) -> list[str] | None:
    """Base64 DER certificates (PEM is accepted and converted), each one parsed."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{name}: should be a list of base64 DER certificates")
        return None
    out = []
    for index, text in enumerate(value):
        body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
            x509.load_der_x509_certificate(der)
        except (binascii.Error, ValueError):
            errors.append(f"{name}[{index}]: not a base64 DER certificate")
            continue
        out.append(base64.b64encode(der).decode())
    return out


def clean_serials(serials: Any) -> list[str]:
    """Serial numbers from the admin: non-empty text, upper-cased, each once, order kept."""
    if not isinstance(serials, list) or not serials:
        raise AbmError("name at least one serial number")
    bad = [s for s in serials if not isinstance(s, str) or not s.strip() or len(s.strip()) > 64]
    if bad:
        raise AbmError(f"not serial numbers: {', '.join(repr(b) for b in bad[:5])}")
    return list(dict.fromkeys(s.strip().upper() for s in serials))


async def assign(
    client: AbmClient, store: AbmStore, name: str, profile_uuid: str, serials: list[str]
) -> dict[str, Any]:
    """Assign in batches of at most 1000; each batch's per-device results are stored as they come."""
    return await _batched(client, store, name, "assign", profile_uuid, serials)


async def remove(client: AbmClient, store: AbmStore, name: str, serials: list[str]) -> dict[str, Any]:
    return await _batched(client, store, name, "remove", None, serials)


async def _batched(
    client: AbmClient, store: AbmStore, name: str, action: str, profile_uuid: str | None, serials: list[str]
) -> dict[str, Any]:
    results: dict[str, str] = {}
    retry_after: int | None = None
    error = None
    for start in range(0, len(serials), MAX_SERIALS_PER_CALL):
        batch = serials[start : start + MAX_SERIALS_PER_CALL]
        try:
            if action == "assign":
                assert profile_uuid is not None
                answer = await client.assign_profile(profile_uuid, batch)
            else:
                answer = await client.remove_profile(batch)
        except Throttled as exc:
            # The rest is stored as THROTTLED, so the next sync (for the default profile) or the
            # admin can retry exactly those serials.
            rest = dict.fromkeys(serials[start:], "THROTTLED")
            store.save_results(name, action, profile_uuid, rest)
            results.update(rest)
            error = str(exc)
            break
        store.save_results(name, action, profile_uuid, answer.results)
        results.update(answer.results)
        if answer.retry_after_seconds is not None:
            retry_after = max(retry_after or 0, answer.retry_after_seconds)
    return {
        "connection": name,
        "action": action,
        "profile_uuid": profile_uuid,
        "counts": dict(Counter(results.values())),
        "results": results,
        "retry_after_seconds": retry_after,
        "error": error,
    }
