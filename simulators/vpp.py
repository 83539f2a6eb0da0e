"""A stand-in for Apple's Apps and Books for Organizations API v2 (§f of apple-protocols.md) on 127.0.0.1.

What it checks, as Apple does: `Authorization: Bearer <the whole .vpptoken content>` on every
endpoint but `service/config` (401 with 9722 for a malformed header, 9601 for an unknown token,
9621 once the token expired, 9625 once revoked); JSON on POSTs (415, 9727); methods (405, 9726);
each token's request rate against `maxRequestPerSecond` (429, 9646); the request limits and
duplicates (9700-9705, 9714, 9715), assets and subjects required (9718, 9719, 9720),
device-assignable and revocable assets (9707, 9706), known users (9609), email syntax (9717),
client config (9710-9713, 9723-9725, 9728), page range (9650) and unknown events (9708).

What it implements: service config, client config (a TEST_NOTIFICATION when notifications are
registered), assets and users (paged), associate / disassociate / revoke, users create / update /
retire, and event status. Requests that change something become events, PENDING until `process()`
runs them (or at once with `auto_process`): licence counts move, per-item failures are recorded
(9709 not enough licences, a serial in `bad_serials`, 9716 an existing user, ...), and Apple's
notifications are put in `outbox` for the test to deliver to Russet (unless `notify` is off).
Faults can be injected per endpoint (any status, body, headers).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulators.https_peer import HttpsServer
from simulators.tls import TlsFiles

BASE = "/mdm/v2/"
JSON_TYPE = "application/json"
NOTIFICATION_TYPES = ("ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT")
MAX_NOTIFIED = 100  # items per notification
ERRORS = {
    9601: ("Login required", 401),
    9602: ("Invalid argument", 400),
    9609: ("Registered user not found", 400),
    9619: ("License not associated", 400),
    9621: ("Token has expired. Generate a new token in Apple Business Manager.", 401),
    9625: ("The server has revoked the sToken.", 401),
    9628: ("Ineligible device assignment", 400),
    9646: ("There have been too many requests recently. Try again later.", 429),
    9650: ("Page index is out of range", 400),
    9700: ("Too many assets", 400),
    9701: ("Too many clientUserIds", 400),
    9702: ("Too many serialNumbers", 400),
    9703: ("Duplicate assets", 400),
    9704: ("Duplicate clientUserIds", 400),
    9705: ("Duplicate serialNumbers", 400),
    9706: ("Asset not revocable", 400),
    9707: ("Asset not device assignable", 400),
    9708: ("Event not found", 400),
    9709: ("Not enough licenses", 400),
    9710: ("Notification URL and auth token must be given together", 400),
    9711: ("Notification URL or auth token too long", 400),
    9712: ("Notification URL must be a valid HTTPS URL", 400),
    9713: ("MDM metadata too long", 400),
    9714: ("Too many users", 400),
    9715: ("Duplicate users", 400),
    9716: ("A registered user with that clientUserId already exists", 400),
    9717: ("Invalid email address", 400),
    9718: ("Assets are required", 400),
    9719: ("clientUserIds or serialNumbers are required", 400),
    9720: ("Users are required", 400),
    9722: ("Invalid Authorization header", 401),
    9723: ("MDM name, ID and metadata are all required", 400),
    9724: ("MDM ID too long", 400),
    9725: ("MDM name too long", 400),
    9726: ("Unsupported HTTP method", 405),
    9727: ("Unsupported Content-Type", 415),
    9728: ("Notification URL is unreachable", 400),
}


class ApiError(Exception):
    def __init__(self, number: int, info: dict[str, Any] | None = None) -> None:
        super().__init__(number)
        self.number = number
        self.info = info


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass
class Asset:
    adam_id: str
    total: int
    pricing: str = "STDQ"
    product_type: str = "App"
    assigned: int = 0
    retired: int = 0
    device_assignable: bool = True
    revocable: bool = True
    platforms: tuple[str, ...] = ("iOS", "macOS")

    @property
    def available(self) -> int:
        return self.total - self.assigned

    def as_json(self) -> dict[str, Any]:
        return {
            "adamId": self.adam_id,
            "pricingParam": self.pricing,
            "productType": self.product_type,
            "assignedCount": self.assigned,
            "availableCount": self.available,
            "retiredCount": self.retired,
            "totalCount": self.total,
            "deviceAssignable": self.device_assignable,
            "revocable": self.revocable,
            "supportedPlatforms": list(self.platforms),
        }


@dataclass
class Event:
    event_id: str
    event_type: str
    location: Location
    request: dict[str, Any]
    status: str = "PENDING"
    requested: int = 0
    completed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Location:
    bearer: str
    org_name: str
    location_name: str
    expires: datetime
    uid: str = field(default_factory=lambda: str(secrets.randbelow(10**15)))
    revoked: bool = False
    mdm_info: dict[str, str] | None = None
    notification_url: str | None = None
    notification_auth_token: str | None = None
    notification_types: list[str] = field(default_factory=list)
    assets: dict[tuple[str, str], Asset] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # the current entry per clientUserId
    retired_users: list[dict[str, Any]] = field(default_factory=list)
    assignments: set[tuple[str, str, str, str]] = field(default_factory=set)  # adam, pricing, kind, subject
    events: dict[str, Event] = field(default_factory=dict)
    recent: deque[float] = field(default_factory=deque)  # request times, for the rate limit


@dataclass
class Posted:
    """A notification Apple would POST to the location's notification URL."""

    url: str
    auth_token: str
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Fault:
    status: int
    body: bytes
    headers: dict[str, str]
    after: int = 0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def make_token(org_name: str, expires: datetime) -> str:
    """A .vpptoken file's content: base64 of {token, expDate, orgName}."""
    inner = {
        "token": base64.b64encode(secrets.token_bytes(48)).decode(),
        "expDate": _iso(expires),
        "orgName": org_name,
    }
    return base64.b64encode(json.dumps(inner).encode()).decode()


class VppSimulator:
    def __init__(self, tls: TlsFiles, *, page_size: int = 100, port: int = 0) -> None:
        self.page_size = page_size
        self.clock_offset = timedelta(0)
        self.limits: dict[str, int] = {
            "maxAssets": 25,
            "maxClientUserIds": 1000,
            "maxSerialNumbers": 1000,
            "maxRevokeClientUserIds": 100,
            "maxRevokeSerialNumbers": 100,
            "maxUsers": 100,
            "maxNotificationLength": 512,
            "maxMdmNameLength": 100,
            "maxMdmMetadataLength": 255,
            "maxMdmIdLength": 100,
            "maxRequestPerSecond": 15,
        }
        self.locations: dict[str, Location] = {}
        self.outbox: list[Posted] = []
        self.notify = True  # post notifications (off: Russet must poll the status)
        self.auto_process = False  # run events as soon as they are submitted
        self.reachable = True  # whether Russet's notification URL "answers" the TEST_NOTIFICATION
        self.bad_serials: dict[str, int] = {}  # serial -> error number of its (asynchronous) failure
        self.faults: dict[str, deque[Fault]] = {}
        self.requests: list[Seen] = []
        self.calls: Counter[str] = Counter()
        self.throttled = 0  # 429s answered for the rate limit
        self._lock = threading.RLock()
        self._http = HttpsServer(tls, self.handle, port=port, content_type=JSON_TYPE)
        self.url = f"https://127.0.0.1:{self._http.port}/mdm/v2"

    # -- control from tests -----------------------------------------------------------------------

    def __enter__(self) -> VppSimulator:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def advance(self, delta: timedelta) -> None:
        self.clock_offset += delta

    def add_location(
        self,
        org_name: str = "Example School",
        location_name: str = "Main Campus",
        *,
        expires: datetime | None = None,
        assets: list[Asset] | None = None,
    ) -> str:
        """A new location; returns its .vpptoken file content."""
        expires = expires or self.now() + timedelta(days=365)
        bearer = make_token(org_name, expires)
        with self._lock:
            location = Location(bearer, org_name, location_name, expires)
            for asset in assets or []:
                location.assets[(asset.adam_id, asset.pricing)] = asset
            self.locations[bearer] = location
        return bearer

    def location(self, token: str) -> Location:
        return self.locations[token]

    def inject(
        self,
        endpoint: str,
        status: int,
        body: bytes | str | dict[str, Any] = b"",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Answer `times` calls of `endpoint` ("POST assets/associate", or "*") this way, after
        `after` calls went through normally."""
        raw = (
            json.dumps(body).encode()
            if isinstance(body, dict)
            else body.encode()
            if isinstance(body, str)
            else body
        )
        with self._lock:
            queue = self.faults.setdefault(endpoint, deque())
            queue.extend(
                Fault(status, raw, dict(headers or {}), after if i == 0 else 0) for i in range(times)
            )

    def process(self) -> int:
        """Run every pending event (Apple's asynchronous work); returns how many ran."""
        ran = 0
        with self._lock:
            for location in self.locations.values():
                for event in list(location.events.values()):
                    if event.status == "PENDING":
                        self._run(event)
                        ran += 1
        return ran

    def associate_user(self, token: str, client_user_id: str) -> None:
        """The person accepted the invitation: USER_ASSOCIATED."""
        with self._lock:
            location = self.locations[token]
            user = location.users[client_user_id]
            user.update(status="Associated", idHash=secrets.token_hex(16))
            self._post(location, "USER_ASSOCIATED", {"associatedUsers": [self._user_json(user)]})

    def purchase(self, token: str, adam_id: str, count: int, pricing: str = "STDQ") -> None:
        """Licences bought (or refunded, count < 0): ASSET_COUNT."""
        with self._lock:
            location = self.locations[token]
            asset = location.assets[(adam_id, pricing)]
            asset.total += count
            self._post(
                location, "ASSET_COUNT", {"adamId": adam_id, "countDelta": count, "pricingParam": pricing}
            )

    # -- HTTP -------------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(target)
        path = parts.path[len(BASE) :] if parts.path.startswith(BASE) else parts.path
        endpoint = f"{method} {path}"
        with self._lock:
            self.requests.append(Seen(method, target, headers, body))
            self.calls[endpoint] += 1
            queue = self.faults.get(endpoint) or self.faults.get("*")
            if queue and queue[0].after:
                queue[0].after -= 1
            elif queue:
                fault = queue.popleft()
                return fault.status, fault.body, dict(fault.headers)
        try:
            with self._lock:
                if endpoint == "GET service/config":
                    return 200, json.dumps(self._service_config()).encode(), {}
                location = self._authenticate(headers)
                self._rate_limit(location)
                if method == "POST" and not headers.get("content-type", "").startswith(JSON_TYPE):
                    raise ApiError(9727)
                try:
                    data: Any = json.loads(body) if body else {}
                except ValueError:
                    raise ApiError(9602) from None
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                answer = self._route(method, path, location, data, query)
                answer.update(tokenExpirationDate=_iso(location.expires), uId=location.uid)
                if location.mdm_info:
                    answer["mdmInfo"] = location.mdm_info
                return 200, json.dumps(answer).encode(), {}
        except ApiError as exc:
            message, status = ERRORS.get(exc.number, ("Error", 400))
            error: dict[str, Any] = {"errorNumber": exc.number, "errorMessage": message}
            if exc.info:
                error["errorInfo"] = exc.info
            return status, json.dumps(error).encode(), {}

    def _service_config(self) -> dict[str, Any]:
        urls = {
            key: f"{self.url}/{path}"
            for key, path in (
                ("clientConfig", "client/config"),
                ("getAssets", "assets"),
                ("associateAssets", "assets/associate"),
                ("disassociateAssets", "assets/disassociate"),
                ("revokeAssets", "assets/revoke"),
                ("getUsers", "users"),
                ("createUsers", "users/create"),
                ("updateUsers", "users/update"),
                ("retireUsers", "users/retire"),
                ("eventStatus", "status"),
            )
        }
        return {
            "urls": urls,
            "limits": dict(self.limits),
            "notificationTypes": list(NOTIFICATION_TYPES),
            "errorCodes": [{"errorNumber": n, "errorMessage": m} for n, (m, _) in sorted(ERRORS.items())],
        }

    def _authenticate(self, headers: dict[str, str]) -> Location:
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not bearer:
            raise ApiError(9722)
        location = self.locations.get(bearer)
        if location is None:
            raise ApiError(9601)
        if location.revoked:
            raise ApiError(9625)
        if location.expires <= self.now():
            raise ApiError(9621)
        return location

    def _rate_limit(self, location: Location) -> None:
        now = time.monotonic()
        while location.recent and now - location.recent[0] >= 1.0:
            location.recent.popleft()
        if len(location.recent) >= self.limits["maxRequestPerSecond"]:
            self.throttled += 1
            raise ApiError(9646)
        location.recent.append(now)

    def _route(
        self, method: str, path: str, location: Location, data: Any, query: dict[str, str]
    ) -> dict[str, Any]:
        routes = {
            ("GET", "client/config"): lambda: self._client_config(location),
            ("POST", "client/config"): lambda: self._set_client_config(location, data),
            ("GET", "assets"): lambda: self._assets(location, query),
            ("GET", "users"): lambda: self._users(location, query),
            ("GET", "status"): lambda: self._status(location, query),
            ("POST", "assets/associate"): lambda: self._manage(location, "ASSOCIATE", data),
            ("POST", "assets/disassociate"): lambda: self._manage(location, "DISASSOCIATE", data),
            ("POST", "assets/revoke"): lambda: self._revoke(location, data),
            ("POST", "users/create"): lambda: self._manage_users(location, "CREATE", data),
            ("POST", "users/update"): lambda: self._manage_users(location, "UPDATE", data),
            ("POST", "users/retire"): lambda: self._manage_users(location, "RETIRE", data),
        }
        handler = routes.get((method, path))
        if handler is None:
            if any(p == path for _, p in routes):
                raise ApiError(9726)
            raise ApiError(9602)
        return handler()

    # -- client config --------------------------------------------------------------------------

    def _client_config(self, location: Location) -> dict[str, Any]:
        out: dict[str, Any] = {
            "countryISO2ACode": "US",
            "defaultPlatform": "volumestore",
            "locationName": location.location_name,
            "websiteURL": "https://school.apple.com",
        }
        if location.notification_url:
            out.update(
                notificationUrl=location.notification_url,
                notificationAuthToken=location.notification_auth_token,
                subscribedNotificationTypes=location.notification_types,
            )
        return out

    def _set_client_config(self, location: Location, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(9602)
        info = data.get("mdmInfo")
        if info is not None:
            if not isinstance(info, dict) or not all(
                isinstance(info.get(k), str) and info[k] for k in ("id", "name", "metadata")
            ):
                raise ApiError(9723)
            for key, limit, number in (
                ("id", "maxMdmIdLength", 9724),
                ("name", "maxMdmNameLength", 9725),
                ("metadata", "maxMdmMetadataLength", 9713),
            ):
                if len(info[key]) > self.limits[limit]:
                    raise ApiError(number)
        url, secret = data.get("notificationUrl"), data.get("notificationAuthToken")
        if (url is None) != (secret is None):
            raise ApiError(9710)
        if url is not None:
            if not isinstance(url, str) or urlsplit(url).scheme != "https" or not urlsplit(url).hostname:
                raise ApiError(9712)
            if (
                len(url) > self.limits["maxNotificationLength"]
                or len(str(secret)) > self.limits["maxNotificationLength"]
            ):
                raise ApiError(9711)
            types = data.get("notificationTypes") or []
            if not isinstance(types, list) or any(t not in NOTIFICATION_TYPES for t in types):
                raise ApiError(9602)
            if not self.reachable:
                raise ApiError(9728)
        if info is not None:
            location.mdm_info = {k: info[k] for k in ("id", "name", "metadata")}
        if url is not None:
            location.notification_url, location.notification_auth_token = url, str(secret)
            location.notification_types = list(data.get("notificationTypes") or [])
            self._post(location, "TEST_NOTIFICATION", {}, force=True)
        return self._client_config(location)

    # -- listings -------------------------------------------------------------------------------

    def _page(self, items: list[dict[str, Any]], query: dict[str, str], key: str) -> dict[str, Any]:
        try:
            index = int(query.get("pageIndex", "0"))
        except ValueError:
            raise ApiError(9602) from None
        pages = max(1, -(-len(items) // self.page_size))
        if not 0 <= index < pages:
            raise ApiError(9650)
        chunk = items[index * self.page_size : (index + 1) * self.page_size]
        out: dict[str, Any] = {key: chunk, "currentPageIndex": index, "size": len(chunk), "totalPages": pages}
        if index + 1 < pages:
            out["nextPageIndex"] = index + 1
        out["versionId"] = f"v{len(self.requests)}"
        return out

    def _assets(self, location: Location, query: dict[str, str]) -> dict[str, Any]:
        items = [a.as_json() for _, a in sorted(location.assets.items())]
        if "adamId" in query:
            items = [a for a in items if a["adamId"] == query["adamId"]]
        return self._page(items, query, "assets")

    @staticmethod
    def _user_json(user: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in user.items()
            if k in ("clientUserId", "email", "status", "inviteCode", "idHash", "managedAppleId")
        }

    def _users(self, location: Location, query: dict[str, str]) -> dict[str, Any]:
        items = [self._user_json(u) for u in [*location.retired_users, *location.users.values()]]
        if "clientUserId" in query:
            items = [u for u in items if u["clientUserId"] == query["clientUserId"]]
        return self._page(items, query, "users")

    def _status(self, location: Location, query: dict[str, str]) -> dict[str, Any]:
        event = location.events.get(query.get("eventId", ""))
        if event is None:
            raise ApiError(9708)
        out: dict[str, Any] = {
            "eventStatus": event.status,
            "eventType": event.event_type,
            "numRequested": event.requested,
            "numCompleted": event.completed,
        }
        if event.failures:
            out["failures"] = event.failures
        return out

    # -- changes: checked now, done later (events) ----------------------------------------------

    def _list(self, data: dict[str, Any], key: str, limit: str, too_many: int, duplicate: int) -> list[str]:
        values = data.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise ApiError(9602)
        if len(values) > self.limits[limit]:
            raise ApiError(too_many)
        if len(set(values)) != len(values):
            raise ApiError(duplicate)
        return values

    def _event(
        self, location: Location, event_type: str, request: dict[str, Any], requested: int
    ) -> dict[str, Any]:
        event = Event(str(uuid.uuid4()), event_type, location, request, requested=requested)
        location.events[event.event_id] = event
        if self.auto_process:
            self._run(event)
        return {"eventId": event.event_id}

    def _manage(self, location: Location, kind: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(9602)
        raw_assets = data.get("assets")
        if not raw_assets:
            raise ApiError(9718)
        if not isinstance(raw_assets, list) or not all(isinstance(a, dict) for a in raw_assets):
            raise ApiError(9602)
        if len(raw_assets) > self.limits["maxAssets"]:
            raise ApiError(9700)
        keys = [(str(a.get("adamId")), a.get("pricingParam") or "STDQ") for a in raw_assets]
        if len(set(keys)) != len(keys):
            raise ApiError(9703)
        serials = self._list(data, "serialNumbers", "maxSerialNumbers", 9702, 9705)
        users = self._list(data, "clientUserIds", "maxClientUserIds", 9701, 9704)
        if not serials and not users:
            raise ApiError(9719)
        unknown = [k for k in keys if k not in location.assets]
        if unknown:
            raise ApiError(9602, {"assets": [{"adamId": a, "pricingParam": p} for a, p in unknown]})
        for key in keys:
            asset = location.assets[key]
            if serials and not asset.device_assignable:
                raise ApiError(9707, {"assets": [{"adamId": key[0], "pricingParam": key[1]}]})
            if kind == "DISASSOCIATE" and not asset.revocable:
                raise ApiError(9706, {"assets": [{"adamId": key[0], "pricingParam": key[1]}]})
        missing = [u for u in users if u not in location.users]
        if missing:
            raise ApiError(9609, {"clientUserIds": missing})
        request = {"assets": keys, "serials": serials, "users": users}
        return self._event(location, kind, request, len(keys) * (len(serials) + len(users)))

    def _revoke(self, location: Location, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(9602)
        serials = self._list(data, "serialNumbers", "maxRevokeSerialNumbers", 9702, 9705)
        users = self._list(data, "clientUserIds", "maxRevokeClientUserIds", 9701, 9704)
        if not serials and not users:
            raise ApiError(9719)
        return self._event(
            location, "REVOKE", {"serials": serials, "users": users}, len(serials) + len(users)
        )

    def _manage_users(self, location: Location, kind: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(9602)
        users = data.get("users")
        if not users:
            raise ApiError(9720)
        if not isinstance(users, list) or not all(
            isinstance(u, dict) and isinstance(u.get("clientUserId"), str) for u in users
        ):
            raise ApiError(9602)
        if len(users) > self.limits["maxUsers"]:
            raise ApiError(9714)
        ids = [u["clientUserId"] for u in users]
        if len(set(ids)) != len(ids):
            raise ApiError(9715)
        for user in users:
            for key in ("email", "managedAppleId"):
                value = user.get(key)
                if value is not None and (not isinstance(value, str) or "@" not in value or " " in value):
                    raise ApiError(9717)
        return self._event(location, kind, {"users": users}, len(users))

    # -- Apple's asynchronous work ----------------------------------------------------------------

    def _run(self, event: Event) -> None:
        location = event.location
        ok: list[dict[str, Any]] = []
        failed: dict[tuple[int, str], list[dict[str, Any]]] = {}
        request = event.request
        if event.event_type in ("ASSOCIATE", "DISASSOCIATE"):
            for adam, pricing in request["assets"]:
                asset = location.assets[(adam, pricing)]
                subjects = [("device", s) for s in request["serials"]] + [
                    ("user", u) for u in request["users"]
                ]
                for kind, subject in subjects:
                    item = {
                        "adamId": adam,
                        "pricingParam": pricing,
                        ("serialNumber" if kind == "device" else "clientUserId"): subject,
                    }
                    number = self._license(location, asset, kind, subject, event.event_type == "ASSOCIATE")
                    if number is None:
                        ok.append(item)
                    else:
                        failed.setdefault((number, adam), []).append(item)
        elif event.event_type == "REVOKE":
            subjects = [("device", s) for s in request["serials"]] + [("user", u) for u in request["users"]]
            for kind, subject in subjects:
                ok += self._revoke_all(location, kind, subject)
        else:
            for user in request["users"]:
                number = self._user_change(location, event.event_type, user)
                entry = dict(
                    location.users.get(user["clientUserId"]) or {"clientUserId": user["clientUserId"]}
                )
                if number is None:
                    ok.append(self._user_json(entry))
                else:
                    failed.setdefault((number, ""), []).append({"clientUserId": user["clientUserId"]})
        event.completed = len(ok) if event.event_type != "REVOKE" else event.requested
        event.failures = [self._failure(number, adam, items) for (number, adam), items in failed.items()]
        event.status = "FAILED" if failed and not ok and event.event_type != "REVOKE" else "COMPLETE"
        self._notify_event(event, ok, failed)

    def _license(
        self, location: Location, asset: Asset, kind: str, subject: str, associate: bool
    ) -> int | None:
        key = (asset.adam_id, asset.pricing, kind, subject)
        if not associate:
            if key not in location.assignments:
                return 9619
            location.assignments.discard(key)
            asset.assigned -= 1
            return None
        if key in location.assignments:
            return None
        if kind == "device" and subject in self.bad_serials:
            return self.bad_serials[subject]
        if kind == "user" and subject not in location.users:
            return 9609
        if asset.available <= 0:
            return 9709
        location.assignments.add(key)
        asset.assigned += 1
        return None

    def _revoke_all(self, location: Location, kind: str, subject: str) -> list[dict[str, Any]]:
        gone = []
        for key in sorted(location.assignments):
            adam, pricing, k, s = key
            asset = location.assets[(adam, pricing)]
            if k == kind and s == subject and asset.revocable:
                location.assignments.discard(key)
                asset.assigned -= 1
                gone.append(
                    {
                        "adamId": adam,
                        "pricingParam": pricing,
                        ("serialNumber" if kind == "device" else "clientUserId"): subject,
                    }
                )
        return gone

    def _user_change(self, location: Location, kind: str, user: dict[str, Any]) -> int | None:
        cuid = user["clientUserId"]
        current = location.users.get(cuid)
        if kind == "CREATE":
            if current is not None:
                return 9716
            entry: dict[str, Any] = {"clientUserId": cuid, "email": user.get("email")}
            if user.get("managedAppleId"):
                entry.update(
                    managedAppleId=user["managedAppleId"], status="Associated", idHash=secrets.token_hex(16)
                )
            else:
                entry.update(status="Registered", inviteCode=secrets.token_hex(8))
            location.users[cuid] = entry
            return None
        if current is None:
            return 9609
        if kind == "UPDATE":
            for key in ("email", "managedAppleId"):
                if user.get(key):
                    current[key] = user[key]
            return None
        self._revoke_all(location, "user", cuid)  # retiring releases the user's revocable licences
        current["status"] = "Retired"
        location.retired_users.append(location.users.pop(cuid))
        return None

    @staticmethod
    def _failure(number: int, adam: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if adam:
            info["assets"] = [{"adamId": adam, "pricingParam": items[0].get("pricingParam", "STDQ")}]
        serials = [i["serialNumber"] for i in items if "serialNumber" in i]
        users = [i["clientUserId"] for i in items if "clientUserId" in i]
        if serials:
            info["serialNumbers"] = serials
        if users:
            info["clientUserIds"] = users
        return {
            "errorNumber": number,
            "errorMessage": ERRORS.get(number, ("Error", 400))[0],
            "errorInfo": info,
        }

    # -- notifications ----------------------------------------------------------------------------

    def _notify_event(
        self, event: Event, ok: list[dict[str, Any]], failed: dict[tuple[int, str], list[dict[str, Any]]]
    ) -> None:
        users = event.event_type in ("CREATE", "UPDATE", "RETIRE")
        kind, key = ("USER_MANAGEMENT", "users") if users else ("ASSET_MANAGEMENT", "assignments")
        for start in range(0, len(ok), MAX_NOTIFIED):
            body = {
                "type": event.event_type,
                "result": "SUCCESS",
                "eventId": event.event_id,
                key: ok[start : start + MAX_NOTIFIED],
            }
            self._post(event.location, kind, body)
        if not ok and not failed:  # nothing to say item by item (a revoke of nothing): one empty SUCCESS
            self._post(
                event.location,
                kind,
                {"type": event.event_type, "result": "SUCCESS", "eventId": event.event_id, key: []},
            )
        for (number, _), items in failed.items():
            for start in range(0, len(items), MAX_NOTIFIED):
                body = {
                    "type": event.event_type,
                    "result": "FAILURE",
                    "eventId": event.event_id,
                    key: items[start : start + MAX_NOTIFIED],
                    "error": {"errorNumber": number, "errorMessage": ERRORS.get(number, ("Error", 400))[0]},
                }
                self._post(event.location, kind, body)
        if users and event.event_type == "CREATE":
            associated = [u for u in ok if u.get("status") == "Associated"]
            if associated:
                self._post(event.location, "USER_ASSOCIATED", {"associatedUsers": associated})

    def _post(self, location: Location, kind: str, body: dict[str, Any], *, force: bool = False) -> None:
        if not location.notification_url or not location.notification_auth_token:
            return
        if not force and (not self.notify or kind not in location.notification_types):
            return
        envelope = {
            "notificationId": str(uuid.uuid4()),
            "notificationType": kind,
            "notification": body,
            "uId": location.uid,
        }
        self.outbox.append(
            Posted(location.notification_url, location.notification_auth_token, json.dumps(envelope).encode())
        )
