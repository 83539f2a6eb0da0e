"""Account-driven enrollment (Apple's "simple authentication" flow): a person signs in with their
work account, and their device is enrolled as a User Enrollment (personal device, `mdm-byod`) or a
Device Enrollment (organisation's device, `mdm-adde`).

1. Discovery: the device asks `https://<domain>/.well-known/com.apple.remotemanagement
   ?user-identifier=alice@example.com&model-family=iPhone`; Russet answers only for a domain the
   admin configured (`russet enrollment domain add`), with the one server its mode names.
2. The device POSTs to that BaseURL without credentials and is answered 401 with
   `WWW-Authenticate: Bearer method="apple-as-web", url="<sign-in page>"`. This is the one place
   Russet answers a device 401: Apple's protocol requires it here, before the device has any
   enrollment (the MDM check-in and connect endpoints never answer 401: a device unenrolls).
3. The device shows the sign-in page (ASWebAuthenticationSession); Russet sends the person to the
   organisation's OpenID Connect provider and, once they are back with a verified email in a
   configured domain, redirects to `apple-remotemanagement-user-login://authentication-results
   ?access-token=<token>`: a one-use bearer token, good for 15 minutes, bound to the person and
   the enrollment mode, stored as a hash.
4. The device POSTs again with `Authorization: Bearer <token>`; the token is spent and the answer
   is the enrollment profile, whose MDM payload names the person's Managed Apple Account
   (`AssignedManagedAppleID`, the provider's email) and `EnrollmentMode` (BYOD or ADDE). A
   replayed, expired, unknown or other-mode token is answered with the 401 challenge again (and
   the reason in the body), and nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine

from russet.enrollment.account_store import AccountTokenStore, Domain, DomainStore, SpentToken
from russet.enrollment.ports import PersonSignIn
from russet.enrollment.profile import ProfileIssuer
from russet.enrollment.serving import EnrollmentRefused
from russet.enrollment.tokens import EnrollmentRequestLog, Person
from russet.kernel.errors import Conflict, Invalid, NotFound, RussetError, UpstreamFailed
from russet.storage.secretbox import SecretBox, SecretError

log = logging.getLogger("russet.enrollment")

WELL_KNOWN_PATH = "/.well-known/com.apple.remotemanagement"
ACCOUNT_PREFIX = "/mdm/account"
SIGN_IN_PATH = f"{ACCOUNT_PREFIX}/sign-in"
CALLBACK_PATH = f"{ACCOUNT_PREFIX}/callback"
RESULTS_URL = "apple-remotemanagement-user-login://authentication-results"
TOKEN_LIFETIME = timedelta(minutes=15)
TOKEN_GRACE = timedelta(days=1)  # used or expired tokens (and the person in them) kept this long
FLOW_SECONDS = 600  # a sign-in not finished by then starts again
FLOW_PURPOSE = "account-enrollment-sign-in"
MAX_IDENTIFIER_CHARS = 320
MAX_FLOW_CHARS = 4096
# Apple's model-family values in the discovery request.
MODEL_FAMILIES = ("AppleTV", "iPad", "iPhone", "Mac", "RealityDevice", "Watch")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Mode:
    """One kind of account-driven enrollment: what discovery names it, what the profile says."""

    name: str  # user | device
    version: str  # discovery's Servers[].Version
    enrollment_mode: str  # the MDM payload's EnrollmentMode
    what: str

    @property
    def path(self) -> str:
        return f"{ACCOUNT_PREFIX}/{self.name}"


MODES = {
    "user": Mode("user", "mdm-byod", "BYOD", "User Enrollment (personal devices)"),
    "device": Mode("device", "mdm-adde", "ADDE", "Device Enrollment (organisation's devices)"),
}


class NeedsSignIn(EnrollmentRefused):
    """Answered 401 with the Bearer challenge: the device signs its person in, then asks again."""

    def __init__(self, reason: str, challenge: str) -> None:
        super().__init__(401, reason)
        self.challenge = challenge


def parse_domain(text: str) -> str:
    """A fully qualified domain name, lower case, as people type it after the @."""
    domain = text.strip().lower().rstrip(".")
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise Invalid(f"{text!r} is not a domain name like example.com")
    return domain


def parse_mode(text: str) -> Mode:
    mode = MODES.get(text)
    if mode is None:
        raise Invalid(f"mode must be one of {', '.join(MODES)}, got {text!r}")
    return mode


def _domain_dict(domain: Domain) -> dict[str, Any]:
    mode = MODES[domain.mode]
    return {
        "domain": domain.domain,
        "mode": domain.mode,
        "version": mode.version,
        "what": mode.what,
        "created_at": domain.created_at.isoformat(),
    }


class AccountEnrollment:
    """Domains (admin), discovery, the Bearer challenge, the sign-in, and the profile (devices)."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        issuer: ProfileIssuer,
        requests: EnrollmentRequestLog,
        topic: Callable[[], str | None],
        sign_in: PersonSignIn | None,
    ) -> None:
        self._domains = DomainStore(engine)
        self._tokens = AccountTokenStore(engine)
        self._box = box
        self._issuer = issuer
        self._requests = requests
        self._topic = topic
        self._sign_in = sign_in

    @property
    def public_url(self) -> str:
        return self._issuer.public_url

    # -- domains (admin) ---------------------------------------------------------------------------

    def add_domain(self, domain: str, mode: str = "user") -> dict[str, Any]:
        name, kind = parse_domain(domain), parse_mode(mode)
        added = self._domains.add(name, kind.name)
        if added is None:
            raise Conflict(f"the domain {name} is already configured for account-driven enrollment")
        return _domain_dict(added)

    def list_domains(self) -> list[dict[str, Any]]:
        return [_domain_dict(d) for d in self._domains.list()]

    def remove_domain(self, domain: str) -> dict[str, Any]:
        name = parse_domain(domain)
        if not self._domains.remove(name):
            raise NotFound(f"the domain {name} is not configured for account-driven enrollment")
        return {"domain": name, "removed": True}

    def prune_tokens(self) -> int:
        """Bearer tokens used or expired a day ago: the person in them is not kept longer."""
        return self._tokens.prune(TOKEN_GRACE)

    # -- discovery (device) ------------------------------------------------------------------------

    def discover(self, user_identifier: str | None, model_family: str | None) -> dict[str, Any]:
        """The well-known answer for the person's domain, or EnrollmentRefused saying why not."""
        if not user_identifier:
            raise EnrollmentRefused(400, "user-identifier is required: ?user-identifier=user@domain")
        if len(user_identifier) > MAX_IDENTIFIER_CHARS or "@" not in user_identifier:
            raise EnrollmentRefused(400, "user-identifier must be user@domain (at most 320 characters)")
        if model_family is not None and model_family not in MODEL_FAMILIES:
            raise EnrollmentRefused(400, f"model-family must be one of {', '.join(MODEL_FAMILIES)}")
        user, _, domain_text = user_identifier.rpartition("@")
        try:
            domain = parse_domain(domain_text)
        except Invalid:
            raise EnrollmentRefused(400, "user-identifier's domain is not a domain name") from None
        if not user:
            raise EnrollmentRefused(400, "user-identifier has no user before the @")
        found = self._domains.get(domain)
        if found is None:
            raise EnrollmentRefused(404, f"no account-driven enrollment is configured for {domain}")
        mode = MODES[found.mode]
        return {"Servers": [{"Version": mode.version, "BaseURL": f"{self.public_url}{mode.path}"}]}

    # -- the Bearer challenge and the profile (device) ---------------------------------------------

    def challenge(self, mode: Mode) -> str:
        """The WWW-Authenticate value: Apple's simple (apple-as-web) method and the sign-in page."""
        url = f"{self.public_url}{SIGN_IN_PATH}?{urlencode({'mode': mode.name})}"
        return f'Bearer method="apple-as-web", url="{url}"'

    def enroll(self, mode_name: str, authorization: str | None) -> bytes:
        """The signed profile for a device whose person signed in (a fresh bearer token), else
        NeedsSignIn (401 with the challenge) or EnrollmentRefused."""
        mode = MODES.get(mode_name)
        if mode is None:
            raise EnrollmentRefused(404, f"no account-driven enrollment mode {mode_name!r}")
        self._require_sign_in()
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NeedsSignIn("sign in first: this enrollment needs a bearer token", self.challenge(mode))
        if len(token) > 256:
            raise NeedsSignIn("the bearer token is not one this server issues", self.challenge(mode))
        topic = self._topic_or_refuse()  # before the token is spent: a misconfigured server costs none
        try:
            person = self._tokens.spend(token, mode.name)
        except SpentToken as exc:
            raise NeedsSignIn(f"{exc}: sign in again", self.challenge(mode)) from None
        profile = self._issuer.build(topic)
        mdm = next(p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.mdm")
        mdm["AssignedManagedAppleID"] = person.email
        mdm["EnrollmentMode"] = mode.enrollment_mode
        challenge = next(
            (
                str(p["PayloadContent"]["Challenge"])
                for p in profile["PayloadContent"]
                if p["PayloadType"] == "com.apple.security.scep"
            ),
            None,
        )
        signed = self._issuer.sign(profile)
        self._requests.record("account", challenge=challenge, person=person)
        log.info("account-driven %s profile handed out to %s", mode.what, person.email)
        return signed

    # -- the sign-in page (the device's web view) --------------------------------------------------

    def start_sign_in(self, mode_name: str | None) -> tuple[str, str]:
        """The provider's URL to send the browser to, and the sealed flow for its cookie."""
        mode = MODES.get(mode_name or "")
        if mode is None:
            raise EnrollmentRefused(400, f"mode must be one of {', '.join(MODES)}")
        sign_in = self._require_sign_in()
        try:
            url, flow = sign_in.start()
        except RussetError as exc:
            raise EnrollmentRefused(502, str(exc)) from None
        data = {**flow, "mode": mode.name, "e": str(int(time.time()) + FLOW_SECONDS)}
        sealed = self._box.seal(json.dumps(data, separators=(",", ":")).encode(), FLOW_PURPOSE)
        return url, base64.urlsafe_b64encode(sealed).decode()

    def finish_sign_in(self, sealed_flow: str | None, params: Mapping[str, str]) -> str:
        """Where the web view goes once the person signed in: Apple's callback with a new token."""
        sign_in = self._require_sign_in()
        flow = self._open_flow(sealed_flow)
        if flow is None:
            raise EnrollmentRefused(
                400, "this sign-in was not started here, or took over 10 minutes: start the enrollment again"
            )
        mode = MODES[flow.pop("mode")]
        try:
            person = sign_in.finish(flow, params)
        except UpstreamFailed as exc:
            raise EnrollmentRefused(502, str(exc)) from None
        except RussetError as exc:
            raise EnrollmentRefused(403, str(exc)) from None
        self._check_person(person, mode)
        token = self._tokens.issue(mode.name, person, TOKEN_LIFETIME)
        log.info("%s signed in for account-driven %s", person.email, mode.what)
        return f"{RESULTS_URL}?{urlencode({'access-token': token})}"

    def _check_person(self, person: Person, mode: Mode) -> None:
        """The Managed Apple Account is the provider's email: it must be in a configured domain of
        this mode, so a person of another organisation (or mode) gets no enrollment."""
        email = person.email or ""
        domain = email.rpartition("@")[2]
        found = self._domains.get(domain) if domain else None
        if found is None:
            raise EnrollmentRefused(
                403, f"{email or 'this account'} is not in a domain configured for account-driven enrollment"
            )
        if found.mode != mode.name:
            raise EnrollmentRefused(
                403, f"{domain} is configured for {MODES[found.mode].what}, not {mode.what}"
            )

    def _open_flow(self, sealed_flow: str | None) -> dict[str, str] | None:
        if not sealed_flow or len(sealed_flow) > MAX_FLOW_CHARS:
            return None
        try:
            data = json.loads(self._box.open(base64.urlsafe_b64decode(sealed_flow.encode()), FLOW_PURPOSE))
            flow = {str(k): str(v) for k, v in data.items()}
            if int(flow.pop("e")) <= time.time() or flow.get("mode") not in MODES:
                return None
        except (SecretError, binascii.Error, ValueError, KeyError, TypeError, AttributeError):
            return None
        return flow

    def _require_sign_in(self) -> PersonSignIn:
        if self._sign_in is None:
            raise EnrollmentRefused(
                503,
                "account-driven enrollment needs single sign-on: set RUSSET_OIDC_DISCOVERY_URL, "
                "RUSSET_OIDC_CLIENT_ID and RUSSET_OIDC_CLIENT_SECRET",
            )
        return self._sign_in

    def _topic_or_refuse(self) -> str:
        topic = self._topic()
        if not topic:
            raise EnrollmentRefused(
                503, "Russet has no APNs push topic yet (install a push certificate or set RUSSET_PUSH_TOPIC)"
            )
        return topic
