"""Handing out enrollment profiles at /mdm/enroll: to a holder of an enrollment token (OTA), or to
a device that proves with Apple's signature who it is (ADE).

Both get exactly the profile `russet enrollment profile` writes: a SCEP identity with a fresh
one-time challenge, signed by Russet. Every profile handed out is recorded (EnrollmentRequestLog).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from russet.enrollment.machineinfo import DeviceCA, MachineInfo, MachineInfoRejected
from russet.enrollment.minimum_os import MinimumOsSettings, shortfall
from russet.enrollment.profile import ProfileIssuer
from russet.enrollment.tokens import EnrollmentRequestLog, EnrollmentTokenStore, Person, TokenRejected

log = logging.getLogger("russet.enrollment")


class EnrollmentRefused(Exception):
    """No profile for this request; ``status`` and ``reason`` are what the requester is told."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SoftwareUpdateRequired(EnrollmentRefused):
    """An ADE device below the minimum OS that can update in Setup Assistant: a 403 with Apple's
    JSON error body (``body``) naming the version to install."""

    def __init__(self, reason: str, body: dict[str, Any]) -> None:
        super().__init__(403, reason)
        self.body = body


@dataclass
class ProfileServer:
    """The answers of /mdm/enroll, over explicit parts: the token store and the request log, the
    profile issuer, the current push topic (a callable: a new certificate needs no restart) and
    the CA that signs ADE devices' MachineInfo."""

    tokens: EnrollmentTokenStore
    requests: EnrollmentRequestLog
    issuer: ProfileIssuer
    topic: Callable[[], str | None]
    device_ca: DeviceCA
    minimum_os: MinimumOsSettings | None = None

    def for_token(self, token: str | None) -> bytes:
        """The signed profile for an OTA enrollment URL; one use of the token is counted."""
        if not token:
            raise EnrollmentRefused(403, "an enrollment token is required: /mdm/enroll?token=...")
        topic = self._topic()  # before the use is counted: a misconfigured server costs no uses
        try:
            token_id = self.tokens.consume(token)
        except TokenRejected as exc:
            raise EnrollmentRefused(403, str(exc)) from None
        profile, challenge = self._profile(topic)
        self.requests.record("ota", token_id=token_id, challenge=challenge)
        log.info("enrollment profile handed out for enrollment token %d", token_id)
        return profile

    def for_machine_info(self, body: bytes) -> bytes:
        """The signed profile for an ADE device whose MachineInfo carries Apple's signature."""
        try:
            info = self.device_ca.verify(body)
        except MachineInfoRejected as exc:
            raise EnrollmentRefused(exc.status, exc.reason) from None
        self._check_minimum_os(info)
        topic = self._topic()
        profile, challenge = self._profile(topic)
        self.requests.record("ade", challenge=challenge, device=device_columns(info))
        accounts = self.requests.abm_connections(info.serial)
        log.info(
            "ADE enrollment profile handed out to serial %s (%s, OS %s), %s",
            info.serial,
            info.product,
            info.os_version or info.version,
            f"assigned in ABM/ASM {', '.join(accounts)}" if accounts else "not in any synced ABM/ASM account",
        )
        return profile

    def check_minimum_os(self, info: MachineInfo) -> None:
        """The minimum OS check, for sign-in during Setup Assistant (russet/enrollment/signin.py)
        before the person signs in: a device that must update first is told so at once."""
        self._check_minimum_os(info)

    def _check_minimum_os(self, info: MachineInfo) -> None:
        """Refuse a device below its platform's minimum OS: Apple's software update answer when it
        can act on it, else a plain 403 naming the minimum (russet.enrollment.minimum_os)."""
        if self.minimum_os is None:
            return
        below = shortfall(
            self.minimum_os.for_device(info.product, info.serial),
            info.os_version,
            info.can_request_software_update,
        )
        if below is None:
            return
        what = f"serial {info.serial} ({info.product}, OS {info.os_version or info.version})"
        if below.can_update:
            log.warning(
                "ADE enrollment of %s: asked to update to %s first (the minimum for %s)",
                what,
                below.minimum.label,
                below.minimum.source,
            )
            raise SoftwareUpdateRequired(
                f"software update to {below.minimum.label} required", below.apple_error()
            )
        log.warning(
            "ADE enrollment of %s refused: below the minimum %s (%s's)",
            what,
            below.minimum.label,
            below.minimum.source,
        )
        raise EnrollmentRefused(403, below.reason())

    def _topic(self) -> str:
        topic = self.topic()  # the installed certificate's, looked up (cached) each time
        if not topic:
            raise EnrollmentRefused(
                503, "Russet has no APNs push topic yet (install a push certificate or set RUSSET_PUSH_TOPIC)"
            )
        return topic

    def _profile(self, topic: str) -> tuple[bytes, str | None]:
        """The signed profile and the SCEP challenge it carries (the same profile as
        `russet enrollment profile`: SignMessage off behind a proxy that forwards certificates)."""
        profile = self.issuer.build(topic)
        return self.issuer.sign(profile), _challenge(profile)

    def for_person(self, device: dict[str, str | None], person: Person) -> bytes:
        """The signed profile for an ADE device whose person signed in first (russet/enrollment/
        signin.py verified its MachineInfo): recorded as `ade_signin`, with the device and the person."""
        profile, challenge = self._profile(self._topic())
        self.requests.record("ade_signin", challenge=challenge, device=device, person=person)
        return profile


def _challenge(profile: dict[str, Any]) -> str | None:
    for payload in profile["PayloadContent"]:
        if payload["PayloadType"] == "com.apple.security.scep":
            return str(payload["PayloadContent"]["Challenge"])
    return None


def device_columns(info: MachineInfo) -> dict[str, str | None]:
    """The enrollment_requests columns of a verified MachineInfo (IMEI, MEID, language are not kept)."""
    return {
        "udid": info.udid,
        "serial_number": info.serial,
        "product": info.product,
        "build_version": info.version,
        "os_version": info.os_version,
    }
