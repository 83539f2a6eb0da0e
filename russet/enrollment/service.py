"""Enrollment as a service (`russet.enrollment`): tokens for enrollment URLs, the log of profiles
handed out, profiles written for the CLI, the /mdm/enroll server, and the expiry of unused SCEP
challenges.

Like every service, it takes typed input, raises error kinds with a message for people, and
returns JSON-ready dicts.
"""

from __future__ import annotations

import plistlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from russet.abm.profiles import ade_url  # /mdm/enroll: GET with a token (OTA), POST MachineInfo (ADE)
from russet.enrollment.machineinfo import DeviceCA
from russet.enrollment.minimum_os import Minimum, MinimumOsSettings
from russet.enrollment.ports import BlueprintNames, PeopleSignIn
from russet.enrollment.profile import ProfileIssuer
from russet.enrollment.serving import ProfileServer
from russet.enrollment.signin import SignInServer
from russet.enrollment.tokens import EnrollmentRequestLog, EnrollmentToken, EnrollmentTokenStore
from russet.kernel.durations import parse_duration
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.storage.db import MAX_DB_INT, utcnow
from russet.storage.secretbox import SecretBox

DEFAULT_LIFETIME = "7d"
MAX_LIFETIME = timedelta(days=365)
MAX_USES = 1_000_000
MAX_NOTE_CHARS = 200


def parse_lifetime(text: str) -> timedelta:
    """`90m`, `12h`, `7d`: how long a token stays valid (at most a year)."""
    return parse_duration(text, option="expires", what="a token lives", most=MAX_LIFETIME)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _describe(token: EnrollmentToken, now: datetime) -> dict[str, Any]:
    return {
        "id": token.id,
        "prefix": token.prefix,
        "note": token.note,
        "status": token.status(now),
        "uses": token.uses,
        "max_uses": token.max_uses,
        "created_at": _iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
    }


def _minimum(minimum: Minimum, names: Mapping[int, str]) -> dict[str, Any]:
    blueprint = None if minimum.blueprint_id is None else names.get(minimum.blueprint_id)
    if minimum.blueprint_id is not None and blueprint is None:
        blueprint = f"#{minimum.blueprint_id}"  # deleted; an ADE profile may still name its id
    return {"platform": minimum.platform, "version": minimum.version, "blueprint": blueprint}


class EnrollmentService:
    """Enrollment tokens, handed-out profiles and the profiles themselves."""

    def __init__(
        self,
        tokens: EnrollmentTokenStore,
        requests: EnrollmentRequestLog,
        issuer: ProfileIssuer,
        topic: Callable[[], str | None],
        minimum_os: MinimumOsSettings,
        blueprints: BlueprintNames,
        people: PeopleSignIn | None = None,
    ) -> None:
        self._people = people  # sign-in during Setup Assistant (None: /mdm/enroll/signin answers 404)
        self._tokens = tokens
        self._requests = requests
        self._issuer = issuer
        self._topic = topic
        self._minimum_os = minimum_os
        self._blueprints = blueprints

    # -- enrollment URLs -------------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        """Russet's address, as the profiles and enrollment URLs name it (RUSSET_PUBLIC_URL)."""
        return self._issuer.public_url

    def public_url_warning(self) -> str | None:
        """What to tell the admin when RUSSET_PUBLIC_URL is not https: devices refuse such a server."""
        url = self._issuer.public_url
        if url.startswith("https://"):
            return None
        return f"RUSSET_PUBLIC_URL is {url}; devices only accept https"

    def enrollment_url(self, token: str) -> str:
        return f"{ade_url(self._issuer.public_url)}?token={token}"

    def create_token(
        self, *, expires: str | None = None, uses: int | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """A new token; the answer is the only place its clear value and URL ever appear."""
        lifetime = parse_lifetime(expires or DEFAULT_LIFETIME)
        if uses is not None and not 1 <= uses <= MAX_USES:
            raise Invalid(f"uses must be between 1 and {MAX_USES}, got {uses}")
        if note is not None:
            note = note.strip() or None
            if note is not None and len(note) > MAX_NOTE_CHARS:
                raise Invalid(f"a note is at most {MAX_NOTE_CHARS} characters")
        token, stored = self._tokens.create(lifetime, uses, note)
        return {**_describe(stored, utcnow()), "token": token, "url": self.enrollment_url(token)}

    def list_tokens(self) -> list[dict[str, Any]]:
        now = utcnow()
        return [_describe(t, now) for t in self._tokens.list()]

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        if not 1 <= token_id <= MAX_DB_INT or self._tokens.get(token_id) is None:  # no such id can exist
            raise NotFound(f"no enrollment token with id {token_id}")
        if not self._tokens.revoke(token_id):
            raise Conflict(f"enrollment token {token_id} was already revoked")
        found = self._tokens.get(token_id)
        assert found is not None  # revoked, not deleted
        return _describe(found, utcnow())

    def recent_requests(self, limit: int = 100) -> list[dict[str, Any]]:
        """Profiles handed out at /mdm/enroll, newest first."""
        if not 1 <= limit <= 1000:
            raise Invalid("limit must be between 1 and 1000")
        rows = self._requests.recent(limit)
        return [
            {
                **row,
                "at": _iso(row["at"]),
                "identity_issued_at": _iso(row["identity_issued_at"]),
            }
            for row in rows
        ]

    # -- minimum OS (ADE) ------------------------------------------------------------------------

    def minimum_os(self) -> list[dict[str, Any]]:
        """The minimum OS of each platform that has one (ios, macos, tvos, visionos, watchos), then
        each blueprint's (`blueprint` its name; `#ID` once deleted)."""
        found = self._minimum_os.all()
        names = self._blueprints.names({m.blueprint_id for m in found if m.blueprint_id is not None})
        return [_minimum(m, names) for m in found]

    def set_minimum_os(self, platform: str, version: str, *, blueprint: str | None = None) -> dict[str, Any]:
        """ADE devices of `platform` below `version` are asked to update before they enroll; with
        `blueprint`, those whose ADE profile names that blueprint (it wins over the platform's)."""
        blueprint_id, names = self._blueprint(blueprint)
        return _minimum(self._minimum_os.set(platform, version, blueprint_id), names)

    def clear_minimum_os(self, platform: str, *, blueprint: str | None = None) -> dict[str, Any]:
        """No minimum for `platform` (in `blueprint`) any more; NotFound when it had none."""
        blueprint_id, names = self._blueprint(blueprint, deleted=True)
        cleared = self._minimum_os.clear(platform, blueprint_id)
        return {"platform": cleared, "version": None, "blueprint": names.get(blueprint_id or 0)}

    def _blueprint(self, ref: str | None, *, deleted: bool = False) -> tuple[int | None, dict[int, str]]:
        """The blueprint's id and name; `#ID` (as listings show a deleted one) when `deleted`."""
        if ref is None:
            return None, {}
        ref = ref.strip()
        if deleted and ref.startswith("#") and ref[1:].isdigit() and len(ref) <= 20:
            return int(ref[1:]), {}
        blueprint_id, name = self._blueprints.resolve(ref)
        return blueprint_id, {blueprint_id: name}

    # -- profiles --------------------------------------------------------------------------------

    def profile(
        self,
        *,
        topic: str | None = None,
        organization: str = "Russet",
        identity: Literal["scep", "pkcs12"] = "scep",
        signed: bool = True,
    ) -> bytes:
        """An enrollment profile for `russet enrollment profile`: signed, or the plain plist.

        `topic` defaults to the current push topic (the installed certificate's, else
        RUSSET_PUSH_TOPIC).
        """
        topic = topic or self._topic()
        if not topic:
            raise Invalid(
                "no push topic: pass --topic com.apple.mgmt.… or set RUSSET_PUSH_TOPIC "
                "(the UID of your APNs MDM push certificate)"
            )
        profile = self._issuer.build(topic, organization=organization, identity=identity)
        return self._issuer.sign(profile) if signed else plistlib.dumps(profile)

    def profile_server(self, ade_ca_file: str | None = None) -> ProfileServer:
        """The /mdm/enroll answers; loading the device CA now makes a bad RUSSET_ADE_CA_FILE fail
        here (at start) rather than refuse every ADE device later."""
        return ProfileServer(
            self._tokens,
            self._requests,
            self._issuer,
            self._topic,
            DeviceCA.load(ade_ca_file),
            minimum_os=self._minimum_os,
        )

    def signin_server(self, profiles: ProfileServer, box: SecretBox) -> SignInServer:
        """The /mdm/enroll/signin answers (sign-in during Setup Assistant) over `profiles`, with
        `box` sealing the pending sign-in in the browser."""
        return SignInServer(profiles, self._people, box)

    # -- housekeeping ----------------------------------------------------------------------------

    def prune_challenges(self) -> int:
        """SCEP challenges that expired unused more than a week ago (redeemed ones stay)."""
        return self._issuer.challenges.prune_expired()  # the grace period is SCEP's
