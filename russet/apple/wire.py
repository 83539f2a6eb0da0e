"""What each endpoint may carry on the wire, and the fields read off an actual request.

The catalogue (`russet.apple.catalogue`) names the fields; this module says where each one sits
in each endpoint's request (JSON key path, form or query name, data-carrying header), so the
gateway can read the fields off the request it is about to send instead of trusting the list a
caller declares. Anything on the wire that is not declared here for that endpoint is refused
before the request leaves: a field added to a body without a catalogue entry fails closed.

JSON key paths: `a.b` for an object's key, `a[]` for every item of a list, `a.*` for every key of
an object whose keys are data (ABM's per-serial results). A path listed as whole (`WHOLE`) is
recorded as one value, its JSON with sorted keys (an enrollment profile's lists, `mdmInfo`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from russet.apple.catalogue import UndeclaredField

# Headers that say how a request is framed, never anything about anyone.
PROTOCOL_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "host",
        "user-agent",
        "x-server-protocol-version",
    }
)
WHOLE = "="  # prefix of a body path recorded as one value

Derived = tuple[str, Any]  # (catalogue field, value as it went on the wire)


@dataclass(frozen=True)
class Endpoint:
    """Where each field of one endpoint sits: wire name or path -> catalogue field."""

    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case header -> field


_ABM_SESSION = {"x-adm-auth-session": "session"}
_ABM_PROFILE_LISTS = ("skip_setup_items", "anchor_certs", "supervising_host_certs")
_ABM_PROFILE = {
    name: name
    for name in (
        "profile_name",
        "url",
        "support_phone_number",
        "support_email_address",
        "department",
        "org_magic",
        "is_supervised",
        "is_mandatory",
        "is_mdm_removable",
        "is_multi_user",
        "await_device_configured",
        "auto_advance_setup",
        "allow_pairing",
        "language",
        "region",
        "configuration_web_url",
        "do_not_use_profile_from_backup",
        "is_return_to_service",
    )
} | {WHOLE + name: name for name in _ABM_PROFILE_LISTS}
_VPP_AUTH = {"authorization": "location token"}
_VPP_USERS = Endpoint(
    body={
        "users[].clientUserId": "client user id",
        "users[].email": "email",
        "users[].managedAppleId": "Managed Apple ID",
    },
    headers=_VPP_AUTH,
)
_VPP_ASSETS = Endpoint(
    body={
        "assets[].adamId": "adamId",
        "assets[].pricingParam": "pricingParam",
        "serialNumbers[]": "serial number",
        "clientUserIds[]": "client user id",
    },
    headers=_VPP_AUTH,
)

ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    # ABM/ASM device assignment; the OAuth header of GET /session carries the server token.
    ("abm", "GET /session"): Endpoint(headers={"authorization": "server token"}),
    ("abm", "GET /account"): Endpoint(headers=_ABM_SESSION),
    ("abm", "POST /server/devices"): Endpoint(
        body={"limit": "limit", "cursor": "cursor"}, headers=_ABM_SESSION
    ),
    ("abm", "POST /devices/sync"): Endpoint(
        body={"limit": "limit", "cursor": "cursor"}, headers=_ABM_SESSION
    ),
    ("abm", "POST /devices"): Endpoint(body={"devices[]": "devices"}, headers=_ABM_SESSION),
    ("abm", "POST /profile"): Endpoint(body=_ABM_PROFILE, headers=_ABM_SESSION),
    ("abm", "POST /profile/devices"): Endpoint(
        body={"profile_uuid": "profile_uuid", "devices[]": "devices"}, headers=_ABM_SESSION
    ),
    ("abm", "DELETE /profile/devices"): Endpoint(body={"devices[]": "devices"}, headers=_ABM_SESSION),
    # Apps and Books: the content token as a Bearer credential on all but service/config.
    ("vpp", "GET service/config"): Endpoint(),
    ("vpp", "GET client/config"): Endpoint(headers=_VPP_AUTH),
    ("vpp", "POST client/config"): Endpoint(
        body={
            WHOLE + "mdmInfo": "mdmInfo",
            "notificationUrl": "notification URL",
            "notificationAuthToken": "notification auth token",
            "notificationTypes[]": "notification types",
        },
        headers=_VPP_AUTH,
    ),
    ("vpp", "GET assets"): Endpoint(query={"pageIndex": "pageIndex"}, headers=_VPP_AUTH),
    ("vpp", "POST assets/associate"): _VPP_ASSETS,
    ("vpp", "POST assets/disassociate"): _VPP_ASSETS,
    ("vpp", "POST assets/revoke"): Endpoint(
        body={"serialNumbers[]": "serial number", "clientUserIds[]": "client user id"}, headers=_VPP_AUTH
    ),
    ("vpp", "POST users/create"): _VPP_USERS,
    ("vpp", "POST users/update"): _VPP_USERS,
    ("vpp", "POST users/retire"): _VPP_USERS,
    ("vpp", "GET status"): Endpoint(query={"eventId": "eventId"}, headers=_VPP_AUTH),
    ("vpp", "GET users"): Endpoint(query={"clientUserId": "client user id"}, headers=_VPP_AUTH),
    # Activation Lock: the device in the query, the bypass code in a form body (mutual TLS, no token).
    ("activationlock", "POST /deviceservicesworkers/escrowKeyUnlock"): Endpoint(
        query={"serial": "serial", "productType": "productType", "imei": "imei", "meid": "meid"},
        body={"orgName": "orgName", "guid": "guid", "escrowKey": "escrowKey"},
    ),
    # APNs: the token is the path's last segment; PushMagic the body's one key.
    ("apns", "POST /3/device/{token}"): Endpoint(body={"mdm": "PushMagic"}, headers={"apns-topic": "topic"}),
}
APNS_PROTOCOL_HEADERS = frozenset({"apns-push-type", "apns-priority", "apns-expiration", "content-type"})


class Refused(UndeclaredField):
    """The request carries something its endpoint does not declare; nothing was sent."""


def endpoint(service: str, template: str) -> Endpoint:
    found = ENDPOINTS.get((service, template))
    if found is None:
        raise Refused(f"{service}: endpoint {template!r} is not in the catalogue; refusing to send")
    return found


def json_paths(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON value as (key path, value); containers are walked, not returned."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from json_paths(item, path + "[]")
    else:
        yield path, value


def _body_fields(where: str, body: Any, declared: Mapping[str, str]) -> Iterator[Derived]:
    if isinstance(body, dict):
        for key, value in body.items():
            path = f"{where}.{key}" if where else str(key)
            whole = declared.get(WHOLE + path)
            if whole is not None:
                yield whole, json.dumps(value, sort_keys=True)
            else:
                yield from _body_fields(path, value, declared)
    elif isinstance(body, list):
        for item in body:
            yield from _body_fields(where + "[]", item, declared)
    else:
        name = declared.get(where)
        if name is None:
            raise Refused(f"body field {where or '(the body itself)'!r} is not declared for this endpoint")
        yield name, body


def authorization_values(value: str) -> list[str]:
    """The credentials an Authorization header carries: a Bearer token, or OAuth 1.0a's consumer
    key and token (the signature and nonce are proofs, not data about anyone)."""
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return [rest.strip()]
    if scheme.lower() == "oauth":
        params = {}
        for part in rest.split(","):
            key, _, raw = part.strip().partition("=")
            params[key] = raw.strip('"')
        return [unquote(params[k]) for k in ("oauth_consumer_key", "oauth_token") if k in params]
    raise Refused(f"an Authorization header of scheme {scheme!r} is not declared")


def derive_sent(
    service: str,
    template: str,
    *,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    content: bytes | None,
) -> list[Derived]:
    """The fields a request carries, read off its query, headers and body; `Refused` for
    anything its endpoint does not declare."""
    spec = endpoint(service, template)
    out: list[Derived] = []
    for name, value in query:
        field_name = spec.query.get(name)
        if field_name is None:
            raise Refused(f"{service} {template}: query field {name!r} is not declared")
        out.append((field_name, value))
    content_type = ""
    for raw_name, value in headers.items():
        name = raw_name.lower()
        if name == "content-type":
            content_type = value.split(";")[0].strip().lower()
        if name in PROTOCOL_HEADERS:
            continue
        field_name = spec.headers.get(name)
        if field_name is None:
            raise Refused(f"{service} {template}: header {raw_name!r} is not declared")
        if name == "authorization":
            out += [(field_name, v) for v in authorization_values(value)]
        else:
            out.append((field_name, value))
    if content:
        if content_type == "application/json":
            try:
                body = json.loads(content)
            except ValueError:
                raise Refused(f"{service} {template}: the JSON body does not parse") from None
            try:
                out += _body_fields("", body, spec.body)
            except Refused as exc:
                raise Refused(f"{service} {template}: {exc}") from None
        elif content_type == "application/x-www-form-urlencoded":
            for name, value in parse_qsl(content.decode("utf-8", "strict"), keep_blank_values=True):
                field_name = spec.body.get(name)
                if field_name is None:
                    raise Refused(f"{service} {template}: form field {name!r} is not declared")
                out.append((field_name, value))
        else:
            raise Refused(
                f"{service} {template}: a body of type {content_type or 'unknown'!r} is not declared"
            )
    return out


def norm(value: Any) -> Any:
    """A value as the ledger fingerprints it (text casefolded; True is "true" as in JSON)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        value = "true" if value else "false"
    return str(value).strip().casefold()
