"""Sign-in during Setup Assistant: an ADE profile whose `configuration_web_url` is Russet's
`/mdm/enroll/signin` has the device open that page in a web view, with the header
`x-apple-aspen-deviceinfo` (base64 of the same CMS-signed MachineInfo an ADE device POSTs to
/mdm/enroll). The person signs in (the console's OpenID Connect provider, or a Russet local
account); the answer is then the enrollment profile, recorded as `ade_signin` with the device and
the person, so the device that enrolls with it is known to be theirs.

Between the first page and the sign-in, nothing is stored: the verified MachineInfo, a CSRF token
for the password form and the OpenID Connect flow travel in a cookie sealed under the master key
(AES-GCM, its own purpose label), which expires after `PENDING_SECONDS`. A forged or missing
header, a tampered or expired cookie, a wrong password or a refused sign-on: no profile, and a
reason. Framework-free: russet/enrollment/signin_http.py is the HTTP side.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NoReturn

from russet.abm.profiles import ADE_SIGNIN_PATH
from russet.abm.profiles import signin_url as signin_url
from russet.enrollment.machineinfo import MachineInfoRejected
from russet.enrollment.ports import PeopleSignIn
from russet.enrollment.serving import EnrollmentRefused, ProfileServer, device_columns
from russet.enrollment.tokens import Person
from russet.kernel.errors import Invalid, NotFound, RussetError, TooLarge, UpstreamFailed
from russet.storage.secretbox import SecretBox, SecretError

log = logging.getLogger("russet.enrollment")

SIGNIN_PATH = ADE_SIGNIN_PATH
SSO_PATH = f"{SIGNIN_PATH}/sso"
CALLBACK_PATH = f"{SIGNIN_PATH}/callback"
DEVICE_INFO_HEADER = "x-apple-aspen-deviceinfo"
PENDING_SECONDS = 600  # a sign-in not finished in ten minutes starts again from Setup Assistant
PURPOSE = "enrollment-signin"
# The header is base64 of a MachineInfo with its certificates (a few KB); the same 64 KiB cap as
# the POST to /mdm/enroll, as base64.
MAX_DEVICE_INFO_CHARS = (64 * 1024 * 4) // 3 + 4
MAX_EMAIL_CHARS = 320
MAX_PASSWORD_CHARS = 1024
AGAIN = "start again from Setup Assistant"
_DEVICE_KEYS = ("udid", "serial_number", "product", "build_version", "os_version")


def _now() -> float:
    return time.time()


def callback_url(public_url: str) -> str:
    """Where the OpenID Connect provider sends the person back (register it with the provider)."""
    return f"{public_url.rstrip('/')}{CALLBACK_PATH}"


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in under way: the device (its verified MachineInfo), the password form's CSRF token,
    the expiry (epoch seconds) and, once single sign-on started, its flow."""

    device: dict[str, str | None]
    csrf: str
    expires: int
    flow: dict[str, str] = field(default_factory=dict)


def _status(exc: RussetError) -> int:
    """The HTTP status for an error kind (never 401: a device unenrolls on it)."""
    if isinstance(exc, Invalid):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, UpstreamFailed):
        return 502
    return 403


@dataclass
class SignInServer:
    """The answers of /mdm/enroll/signin over the profile server, the sign-in port and the box
    that seals the pending sign-in."""

    profiles: ProfileServer
    people: PeopleSignIn | None
    box: SecretBox

    # -- the pending sign-in, sealed in the browser ---------------------------------------------

    def begin(self, header: str | None) -> PendingSignIn:
        """Verify the device's `x-apple-aspen-deviceinfo` and start a sign-in for it."""
        if self.people is None:
            raise EnrollmentRefused(404, "sign-in for enrollment is not set up on this server")
        if not header:
            raise EnrollmentRefused(
                400, f"the {DEVICE_INFO_HEADER} header is missing: open this page from Setup Assistant"
            )
        if len(header) > MAX_DEVICE_INFO_CHARS:
            raise EnrollmentRefused(413, f"the {DEVICE_INFO_HEADER} header is too long")
        try:
            body = base64.b64decode("".join(header.split()), validate=True)
        except (binascii.Error, ValueError):
            raise EnrollmentRefused(400, f"the {DEVICE_INFO_HEADER} header is not base64") from None
        try:
            info = self.profiles.device_ca.verify(body)
        except MachineInfoRejected as exc:
            raise EnrollmentRefused(exc.status, exc.reason) from None
        self.profiles.check_minimum_os(info)  # SoftwareUpdateRequired, or a 403 naming the minimum
        return PendingSignIn(device_columns(info), secrets.token_urlsafe(24), int(_now()) + PENDING_SECONDS)

    def seal(self, pending: PendingSignIn) -> str:
        data = {"d": pending.device, "c": pending.csrf, "e": pending.expires, "f": pending.flow}
        sealed = self.box.seal(json.dumps(data, separators=(",", ":")).encode(), PURPOSE)
        return base64.urlsafe_b64encode(sealed).decode()

    def open(self, raw: str | None) -> PendingSignIn:
        """The sign-in this browser started, or EnrollmentRefused saying why there is none."""
        if not raw:
            raise EnrollmentRefused(400, "no sign-in is under way in this browser: " + AGAIN)
        try:
            data = json.loads(self.box.open(base64.urlsafe_b64decode(raw.encode()), PURPOSE))
            device = {k: (None if data["d"].get(k) is None else str(data["d"][k])) for k in _DEVICE_KEYS}
            flow = {str(k): str(v) for k, v in data["f"].items()}
            pending = PendingSignIn(device, str(data["c"]), int(data["e"]), flow)
        except (SecretError, binascii.Error, ValueError, KeyError, TypeError, AttributeError):
            raise EnrollmentRefused(400, "the sign-in cookie is not valid: " + AGAIN) from None
        if pending.expires <= _now():
            raise EnrollmentRefused(
                400,
                f"the sign-in took longer than {PENDING_SECONDS // 60} minutes: " + AGAIN,
            )
        if not pending.device.get("udid") or not pending.device.get("serial_number"):
            raise EnrollmentRefused(400, "the sign-in cookie names no device: " + AGAIN)
        return pending

    # -- signing in -------------------------------------------------------------------------------

    def sso_enabled(self) -> bool:
        return self.people is not None and self.people.sso_enabled()

    def sso_start(self, pending: PendingSignIn) -> tuple[str, PendingSignIn]:
        """The provider's URL to send the web view to, and the pending sign-in with its flow."""
        try:
            url, flow = self._people().sso_start()
        except RussetError as exc:
            raise EnrollmentRefused(_status(exc), str(exc)) from None
        return url, replace(pending, flow=dict(flow))

    def sso_finish(self, pending: PendingSignIn, params: Mapping[str, str]) -> bytes:
        """The provider sent the person back: their device's profile, bound to them."""
        if not pending.flow:
            raise EnrollmentRefused(400, "no single sign-on was started in this browser: start again")
        try:
            person = self._people().sso_finish(pending.flow, params)
        except RussetError as exc:
            self._refused(pending, exc)
        return self._hand_out(pending, person, "single sign-on")

    def with_password(
        self, pending: PendingSignIn, csrf: str | None, email: str, password: str, client: str | None
    ) -> bytes:
        """A local account's email and password: the profile, bound to them."""
        if csrf is None or not hmac.compare_digest(csrf.encode(), pending.csrf.encode()):
            raise EnrollmentRefused(403, "the form does not belong to this sign-in (CSRF token differs)")
        email = email.strip()
        if not email or not password:
            raise EnrollmentRefused(400, "enter your email address and password")
        if len(email) > MAX_EMAIL_CHARS or len(password) > MAX_PASSWORD_CHARS or "\x00" in email + password:
            raise EnrollmentRefused(400, "the email address or password is too long or contains NUL")
        try:
            person = self._people().password(email, password, client)
        except RussetError as exc:
            self._refused(pending, exc)
        return self._hand_out(pending, person, "a local account")

    def _people(self) -> PeopleSignIn:
        if self.people is None:
            raise EnrollmentRefused(404, "sign-in for enrollment is not set up on this server")
        return self.people

    @staticmethod
    def _refused(pending: PendingSignIn, exc: RussetError) -> NoReturn:
        log.warning("ADE sign-in refused for serial %s: %s", pending.device.get("serial_number"), exc)
        raise EnrollmentRefused(_status(exc), str(exc)) from None

    def _hand_out(self, pending: PendingSignIn, person: Person, how: str) -> bytes:
        profile = self.profiles.for_person(pending.device, person)
        log.info(
            "ADE enrollment profile handed out to serial %s after sign-in with %s",
            pending.device.get("serial_number"),
            how,
        )
        return profile
