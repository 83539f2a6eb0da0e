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
# Keys of an answer that frame it (paging), never anything about anyone.
PROTOCOL_ANSWER_KEYS = frozenset({"currentPageIndex", "nextPageIndex", "size", "totalPages"})
WHOLE = "="  # prefix of a body path recorded as one value

Derived = tuple[str, Any]  # (catalogue field, value as it went on the wire)


@dataclass(frozen=True)
class Endpoint:
    """Where each field of one endpoint sits: wire name or path -> catalogue field."""

    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case header -> field
    received: Mapping[str, str] = field(default_factory=dict)  # answer's JSON path or header -> field


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
_ABM_DEVICE = (
    "serial_number", "model", "description", "color", "asset_tag", "os", "device_family",
    "profile_status", "profile_uuid", "device_assigned_by", "profile_assign_time",
    "profile_push_time", "device_assigned_date", "mdm_migration_deadline", "op_type", "op_date",
)  # fmt: skip
_ABM_ANSWER = {"header:x-adm-auth-session": "session"}
_ABM_PAGE = (
    _ABM_ANSWER
    | {
        "cursor": "cursor",
        "more_to_follow": "more_to_follow",
        "fetched_until": "fetched_until",
    }
    | {f"devices[].{name}": name for name in _ABM_DEVICE}
)
_ABM_ACCOUNT = _ABM_ANSWER | {
    name: name
    for name in (
        "server_name", "server_uuid", "admin_id", "facilitator_id", "org_name", "org_email",
        "org_phone", "org_address", "org_id", "org_id_hash", "org_type", "org_version",
    )
} | {WHOLE + "urls": "urls"}  # fmt: skip
_ABM_RESULTS = _ABM_ANSWER | {
    "profile_uuid": "profile_uuid",
    "devices.*": "response_status",
    "retry_after_seconds": "retry_after_seconds",
}
_VPP_AUTH = {"authorization": "location token"}
# Apps and Books answers: errors anywhere, and an asynchronous request's event.
_VPP_ERRORS = {
    "errorNumber": "error",
    "errorInfo.serialNumbers[]": "serial number",
    "errorInfo.clientUserIds[]": "client user id",
    "errorInfo.assets[].adamId": "assets",
    "errorInfo.assets[].pricingParam": "assets",
}
_VPP_ANSWER = _VPP_ERRORS | {"errorMessage": "error", "uId": "uId", WHOLE + "mdmInfo": "mdmInfo"}
_VPP_EVENT = _VPP_ANSWER | {"eventId": "eventId"}
_VPP_FAILURES = {f"failures[].{path}": name for path, name in _VPP_ERRORS.items()} | {
    "failures[].errorMessage": "error"
}
_VPP_CONFIG = _VPP_ANSWER | {
    "locationName": "location name",
    "countryISO2ACode": "countryISO2ACode",
    "defaultPlatform": "defaultPlatform",
    "websiteURL": "websiteURL",
}
_VPP_COUNTS = ("assignedCount", "availableCount", "retiredCount", "totalCount")
_VPP_USERS = Endpoint(
    body={
        "users[].clientUserId": "client user id",
        "users[].email": "email",
        "users[].managedAppleId": "Managed Apple ID",
    },
    headers=_VPP_AUTH,
    received=_VPP_EVENT,
)
_VPP_ASSETS = Endpoint(
    body={
        "assets[].adamId": "adamId",
        "assets[].pricingParam": "pricingParam",
        "serialNumbers[]": "serial number",
        "clientUserIds[]": "client user id",
    },
    headers=_VPP_AUTH,
    received=_VPP_EVENT,
)

ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    # ABM/ASM device assignment; the OAuth header of GET /session carries the server token.
    ("abm", "GET /session"): Endpoint(
        headers={"authorization": "server token"}, received={"auth_session_token": "session"}
    ),
    ("abm", "GET /account"): Endpoint(headers=_ABM_SESSION, received=_ABM_ACCOUNT),
    ("abm", "POST /server/devices"): Endpoint(
        body={"limit": "limit", "cursor": "cursor"}, headers=_ABM_SESSION, received=_ABM_PAGE
    ),
    ("abm", "POST /devices/sync"): Endpoint(
        body={"limit": "limit", "cursor": "cursor"}, headers=_ABM_SESSION, received=_ABM_PAGE
    ),
    ("abm", "POST /devices"): Endpoint(
        body={"devices[]": "devices"}, headers=_ABM_SESSION, received=_ABM_PAGE
    ),
    ("abm", "POST /profile"): Endpoint(body=_ABM_PROFILE, headers=_ABM_SESSION, received=_ABM_RESULTS),
    ("abm", "POST /profile/devices"): Endpoint(
        body={"profile_uuid": "profile_uuid", "devices[]": "devices"},
        headers=_ABM_SESSION,
        received=_ABM_RESULTS,
    ),
    ("abm", "DELETE /profile/devices"): Endpoint(
        body={"devices[]": "devices"}, headers=_ABM_SESSION, received=_ABM_RESULTS
    ),
    # Apps and Books: the content token as a Bearer credential on all but service/config.
    ("vpp", "GET service/config"): Endpoint(received=_VPP_ANSWER | {WHOLE + "limits": "limits"}),
    ("vpp", "GET client/config"): Endpoint(headers=_VPP_AUTH, received=_VPP_CONFIG),
    ("vpp", "POST client/config"): Endpoint(
        body={
            WHOLE + "mdmInfo": "mdmInfo",
            "notificationUrl": "notification URL",
            "notificationAuthToken": "notification auth token",
            "notificationTypes[]": "notification types",
        },
        headers=_VPP_AUTH,
        received=_VPP_CONFIG,
    ),
    ("vpp", "GET assets"): Endpoint(
        query={"pageIndex": "pageIndex"},
        headers=_VPP_AUTH,
        received=_VPP_ANSWER
        | {"versionId": "versionId"}
        | {f"assets[].{key}": "assets" for key in ("adamId", "pricingParam", *_VPP_COUNTS)},
    ),
    ("vpp", "POST assets/associate"): _VPP_ASSETS,
    ("vpp", "POST assets/disassociate"): _VPP_ASSETS,
    ("vpp", "POST assets/revoke"): Endpoint(
        body={"serialNumbers[]": "serial number", "clientUserIds[]": "client user id"},
        headers=_VPP_AUTH,
        received=_VPP_EVENT,
    ),
    ("vpp", "POST users/create"): _VPP_USERS,
    ("vpp", "POST users/update"): _VPP_USERS,
    ("vpp", "POST users/retire"): _VPP_USERS,
    ("vpp", "GET status"): Endpoint(
        query={"eventId": "eventId"},
        headers=_VPP_AUTH,
        received=_VPP_ANSWER | _VPP_FAILURES | {"eventStatus": "event status"},
    ),
    ("vpp", "GET users"): Endpoint(
        query={"clientUserId": "client user id"},
        headers=_VPP_AUTH,
        received=_VPP_ANSWER
        | {
            "users[].clientUserId": "client user id",
            "users[].email": "email",
            "users[].status": "user status",
            "users[].inviteCode": "invite code",
            "users[].idHash": "idHash",
            "versionId": "versionId",
        },
    ),
    # Activation Lock: the device in the query, the bypass code in a form body (mutual TLS, no token).
    ("activationlock", "POST /deviceservicesworkers/escrowKeyUnlock"): Endpoint(
        query={"serial": "serial", "productType": "productType", "imei": "imei", "meid": "meid"},
        body={"orgName": "orgName", "guid": "guid", "escrowKey": "escrowKey"},
    ),
    # APNs: the token is the path's last segment; PushMagic the body's one key.
    ("apns", "POST /3/device/{token}"): Endpoint(
        body={"mdm": "PushMagic"},
        headers={"apns-topic": "topic"},
        received={"header:apns-id": "apns-id", "reason": "reason"},
    ),
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


def _declared_path(path: str, declared: Mapping[str, str]) -> str | None:
    """`path` as the answer's map names it: itself, or with data as object keys made `*`."""
    if path in declared:
        return path
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        candidate = ".".join([*parts[:i], "*", *parts[i + 1 :]])
        if candidate in declared:
            return candidate
    return None


def derive_received(
    service: str, template: str, headers: Mapping[str, str], content: bytes
) -> tuple[list[Derived], list[str]]:
    """What an answer carries: (declared field, value) pairs, and the paths of anything Apple
    sent that this endpoint's answer does not declare (recorded as such, never refused: Apple
    adds fields, and refusing an answer already received protects no one)."""
    spec = ENDPOINTS.get((service, template))
    declared = spec.received if spec is not None else {}
    known: list[Derived] = []
    unknown: list[str] = []
    for name, value in headers.items():
        field_name = declared.get("header:" + name.lower())
        if field_name is not None:
            known.append((field_name, value))
    body: Any = None
    if content:
        try:
            body = json.loads(content)
        except ValueError:
            return known, unknown  # text (an error page, Activation Lock's answer): no fields
    whole = {path[len(WHOLE) :] for path in declared if path.startswith(WHOLE)}
    _walk_answer(body, "", declared, whole, known, unknown)
    return known, unknown


def _walk_answer(
    value: Any,
    path: str,
    declared: Mapping[str, str],
    whole: set[str],
    known: list[Derived],
    unknown: list[str],
) -> None:
    if path in whole:
        known.append((declared[WHOLE + path], json.dumps(value, sort_keys=True)))
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk_answer(item, f"{path}.{key}" if path else str(key), declared, whole, known, unknown)
    elif isinstance(value, list):
        for item in value:
            _walk_answer(item, path + "[]", declared, whole, known, unknown)
    elif path in PROTOCOL_ANSWER_KEYS:
        return
    elif value is not None or path:
        name = _declared_path(path, declared)
        if name is None:
            unknown.append(path)
        else:
            known.append((declared[name], value))
