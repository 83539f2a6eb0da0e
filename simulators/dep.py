"""A stand-in for Apple's device assignment API ("DEP", §e of apple-protocols.md) on 127.0.0.1.

What it checks, as Apple does: the OAuth 1.0a HMAC-SHA1 signature of `GET /session` (computed
here independently of any OAuth library, with the consumer and access secrets it issued; nonces
are single-use, timestamps must be recent), a valid `X-ADM-Auth-Session`, a numeric
`X-Server-Protocol-Version` and a `User-Agent` on every call.

What it implements: `/account`; `/server/devices` (keyset pages over the serials, `more_to_follow`,
the last cursor continuing as a sync cursor); `/devices/sync` over a change log (added / modified /
deleted), cursors expiring after `cursor_ttl` (EXPIRED_CURSOR) and tamper-checked
(INVALID_CURSOR); `/profile` with Apple's 400 codes; `/profile/devices` POST/PUT/DELETE with
per-device SUCCESS / NOT_ACCESSIBLE / FAILED / THROTTLED. Faults can be injected per endpoint
(any status, body and headers: 401, 403 FORBIDDEN, 429 with Retry-After, THROTTLED, 5xx,
malformed JSON). It holds 100,000 devices easily (the benchmark runs it in its own process:
`python -m simulators.dep --devices 100000 --tls-dir DIR --credentials FILE`).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7

from simulators.https_peer import HttpsServer
from simulators.tls import TlsFiles, make_server_tls

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_SERIALS = 1000
OAUTH_WINDOW = 300  # seconds a signed request's timestamp may be off
JSON_TYPE = "application/json;charset=UTF8"

MODELS = [
    ("iPhone 15", "IPHONE 15 BLACK 128GB", "BLACK", "iOS", "iPhone"),
    ("iPad Air", "IPAD AIR WI-FI 256GB SPACE GRAY", "SPACE GRAY", "iPadOS", "iPad"),
    ("MacBook Pro", "MBP 14 M3 SILVER", "SILVER", "OSX", "Mac"),
    ("Apple TV 4K", "APPLE TV 4K 64GB", "BLACK", "tvOS", "AppleTV"),
]


# -- the server token ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_secret: str
    access_token_expiry: str  # ISO 8601, as in Apple's token

    @classmethod
    def new(cls, valid_for: timedelta = timedelta(days=365)) -> Credentials:
        expiry = (datetime.now(UTC) + valid_for).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(
            "CK_" + secrets.token_hex(24),
            "CS_" + secrets.token_hex(20),
            "AT_" + secrets.token_hex(40),
            "AS_" + secrets.token_hex(20),
            expiry,
        )


def make_server_token(
    cert: x509.Certificate,
    credentials: Credentials,
    *,
    content_encryption: type[algorithms.AES128] | type[algorithms.AES256] = algorithms.AES256,
) -> bytes:
    """The .p7m file ABM/ASM offers for download: S/MIME EnvelopedData to the MDM's certificate."""
    message = json.dumps(asdict(credentials))
    plaintext = (
        "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        f"-----BEGIN MESSAGE-----\n{message}\n-----END MESSAGE-----\n"
    ).encode()
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(plaintext)
        .set_content_encryption_algorithm(content_encryption)
        .add_recipient(cert)
        .encrypt(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.Binary])
    )


# -- OAuth 1.0a (RFC 5849), verified from first principles ------------------------------------------


def _pct(value: str) -> str:
    return quote(value, safe="-._~")


def parse_oauth_header(header: str) -> dict[str, str]:
    if not header.startswith("OAuth "):
        raise ValueError("not an OAuth Authorization header")
    params: dict[str, str] = {}
    for part in header[6:].split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not (value.startswith('"') and value.endswith('"')):
            raise ValueError(f"malformed OAuth parameter {part!r}")
        key = unquote(key)
        if key in params:
            raise ValueError(f"duplicated OAuth parameter {key}")
        params[key] = unquote(value[1:-1])
    return params


def oauth_signature(
    method: str, url: str, params: dict[str, str], consumer_secret: str, token_secret: str
) -> str:
    """HMAC-SHA1 over the RFC 5849 signature base string (query and oauth_* parameters)."""
    parts = urlsplit(url)
    port = parts.port
    host = parts.hostname or ""
    default = (parts.scheme == "https" and port == 443) or (parts.scheme == "http" and port == 80)
    base_uri = (
        f"{parts.scheme.lower()}://{host.lower()}{'' if port is None or default else f':{port}'}{parts.path}"
    )
    pairs = [(k, v) for k, vs in parse_qs(parts.query, keep_blank_values=True).items() for v in vs]
    pairs += [(k, v) for k, v in params.items() if k not in ("realm", "oauth_signature")]
    normalized = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in pairs))
    base = "&".join((method.upper(), _pct(base_uri), _pct(normalized)))
    key = f"{_pct(consumer_secret)}&{_pct(token_secret)}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()


# -- the simulator ---------------------------------------------------------------------------------


@dataclass
class Fault:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0  # calls to let through untouched first


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ApiError(Exception):
    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.headers = headers or {}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class DepSimulator:
    def __init__(
        self,
        tls: TlsFiles,
        credentials: Credentials | None = None,
        *,
        cursor_ttl: timedelta = timedelta(days=7),
        keep_requests: bool = True,
        port: int = 0,
    ) -> None:
        self.credentials = credentials or Credentials.new()
        self.cursor_ttl = cursor_ttl
        self.keep_requests = keep_requests
        self.clock_offset = timedelta(0)
        self.session_refusal = 401  # or 403: answer FORBIDDEN for an ended session (Apple's simulator)
        self.account = {
            "server_name": "Russet test server",
            "server_uuid": str(uuid.uuid4()).upper(),
            "admin_id": "admin@example.org",
            "facilitator_id": "admin@example.org",
            "org_name": "Example School",
            "org_email": "it@example.org",
            "org_phone": "+1 555 0100",
            "org_address": "1 Infinite Loop, Cupertino",
            "org_id": "1234567",
            "org_id_hash": hashlib.sha256(b"1234567").hexdigest(),
            "org_type": "edu",
            "org_version": "v2",
            "urls": [
                {
                    "uri": "/server/devices",
                    "http_method": ["POST"],
                    "limit": {"default": 100, "maximum": 1000},
                },
                {"uri": "/devices/sync", "http_method": ["POST"], "limit": {"default": 100, "maximum": 1000}},
                {"uri": "/profile", "http_method": ["GET", "POST"]},
                {"uri": "/profile/devices", "http_method": ["POST", "PUT", "DELETE"]},
            ],
        }
        self.devices: dict[str, dict[str, Any]] = {}
        self._serials: list[str] = []  # sorted: keyset paging
        self._log: list[tuple[str, str, datetime, dict[str, Any] | None]] = []  # serial, op, when, record
        self.profiles: dict[str, dict[str, Any]] = {}
        self.sessions: set[str] = set()
        self._nonces: set[str] = set()
        self.faults: dict[str, deque[Fault]] = {}
        self.requests: list[Seen] = []
        self.calls: Counter[str] = Counter()
        self.largest_batch = 0
        self.throttle_serials: set[str] = set()  # answered THROTTLED on assignment
        self.fail_serials: set[str] = set()  # answered FAILED
        self.drop_fields: set[str] = set()  # leave these out of device records (tests)
        self.rotate_session = False  # hand out a new X-ADM-Auth-Session with the next answer
        self._cursor_key = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._http = HttpsServer(tls, self.handle, port=port, content_type=JSON_TYPE)
        self.url = f"https://127.0.0.1:{self._http.port}"

    # -- control from tests -----------------------------------------------------------------------

    def __enter__(self) -> DepSimulator:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def advance(self, delta: timedelta) -> None:
        """Move the simulator's clock (cursor expiry); OAuth timestamps stay on real time."""
        self.clock_offset += delta

    def inject(
        self,
        endpoint: str,
        status: int,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Answer `times` calls of `endpoint` ("POST /server/devices", or "*") this way, once
        `after` calls have gone through normally."""
        raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            queue = self.faults.setdefault(endpoint, deque())
            queue.extend(
                Fault(status, raw, dict(headers or {}), after if i == 0 else 0) for i in range(times)
            )

    def expire_sessions(self, status: int = 401) -> None:
        with self._lock:
            self.sessions.clear()
            self.session_refusal = status

    def token_for(self, cert: x509.Certificate) -> bytes:
        return make_server_token(cert, self.credentials)

    @staticmethod
    def record(serial: str, index: int = 0, **fields: Any) -> dict[str, Any]:
        model, description, color, os_name, family = MODELS[index % len(MODELS)]
        record = {
            "serial_number": serial,
            "model": model,
            "description": description,
            "color": color,
            "asset_tag": f"AT-{index:06d}",
            "os": os_name,
            "device_family": family,
            "profile_status": "empty",
            "profile_uuid": "",
            "profile_assign_time": "",
            "device_assigned_by": "purchasing@example.org",
            "device_assigned_date": "2025-09-01T10:00:00Z",
        }
        record.update(fields)
        return record

    def add_devices(self, count: int, prefix: str = "SIM", start: int = 0) -> list[str]:
        serials = [f"{prefix}{i:08d}" for i in range(start, start + count)]
        with self._lock:
            when = self.now()
            for index, serial in enumerate(serials, start):
                record = self.record(serial, index)
                self.devices[serial] = record
                self._log.append((serial, "added", when, record))
            self._serials = sorted(self.devices)
        return serials

    def add_device(self, serial: str, **fields: Any) -> None:
        with self._lock:
            record = self.record(serial, len(self.devices), **fields)
            self.devices[serial] = record
            bisect.insort(self._serials, serial)
            self._log.append((serial, "added", self.now(), record))

    def modify(self, serial: str, **fields: Any) -> None:
        with self._lock:
            record = {**self.devices[serial], **fields}
            self.devices[serial] = record
            self._log.append((serial, "modified", self.now(), record))

    def remove(self, serial: str) -> None:
        with self._lock:
            del self.devices[serial]
            self._serials.remove(serial)
            self._log.append((serial, "deleted", self.now(), None))

    # -- cursors ----------------------------------------------------------------------------------

    def _cursor(self, kind: str, position: int, after: str = "") -> str:
        raw = json.dumps({"k": kind, "s": position, "a": after, "t": self.now().timestamp()}).encode()
        body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        tag = hmac.new(self._cursor_key, body.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{body}.{tag}"

    def _read_cursor(self, cursor: Any) -> dict[str, Any]:
        if not isinstance(cursor, str) or len(cursor) > 1000 or "." not in cursor:
            raise ApiError(400, "INVALID_CURSOR")
        body, tag = cursor.rsplit(".", 1)
        expected = hmac.new(self._cursor_key, body.encode(), hashlib.sha256).hexdigest()[:24]
        if not hmac.compare_digest(tag, expected):
            raise ApiError(400, "INVALID_CURSOR")
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return data

    # -- HTTP -------------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        path = urlsplit(target).path
        endpoint = f"{method} {path}"
        with self._lock:
            if self.keep_requests:
                self.requests.append(Seen(method, target, headers, body))
            self.calls[endpoint] += 1
            queue = self.faults.get(endpoint) or self.faults.get("*")
            if queue and queue[0].after:
                queue[0].after -= 1
            elif queue:
                fault = queue.popleft()
                return fault.status, fault.body, dict(fault.headers)
        try:
            if not headers.get("user-agent", "").strip():
                raise ApiError(400, "USER_AGENT_MISSING")
            if not headers.get("x-server-protocol-version", "").strip().isdigit():
                raise ApiError(400, "X_SERVER_PROTOCOL_VERSION_MISSING")  # the simulator's own code
            if endpoint == "GET /session":
                return 200, json.dumps({"auth_session_token": self._session(target, headers)}).encode(), {}
            with self._lock:
                if headers.get("x-adm-auth-session") not in self.sessions:
                    refusal = self.session_refusal
                    raise ApiError(refusal, "FORBIDDEN" if refusal == 403 else "UNAUTHORIZED")
            answer = self._route(method, path, target, body)
            extra = {}
            with self._lock:
                if self.rotate_session:  # Apple may replace the session on any answer (§e.3)
                    self.rotate_session = False
                    self.sessions.discard(headers["x-adm-auth-session"])
                    extra["X-ADM-Auth-Session"] = "sess-" + secrets.token_hex(16)
                    self.sessions.add(extra["X-ADM-Auth-Session"])
            return 200, json.dumps(answer).encode(), extra
        except ApiError as exc:
            return exc.status, json.dumps(exc.code).encode(), exc.headers

    def _session(self, target: str, headers: dict[str, str]) -> str:
        try:
            params = parse_oauth_header(headers.get("authorization", ""))
        except ValueError:
            raise ApiError(400, "oauth_parameters_absent") from None
        c = self.credentials
        required = (
            "oauth_consumer_key",
            "oauth_token",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_nonce",
            "oauth_signature",
        )
        if any(p not in params for p in required):
            raise ApiError(400, "oauth_parameters_absent")
        if params["oauth_signature_method"] != "HMAC-SHA1" or params.get("oauth_version", "1.0") != "1.0":
            raise ApiError(400, "signature_method_rejected")
        if params["oauth_consumer_key"] != c.consumer_key or params["oauth_token"] != c.access_token:
            raise ApiError(401, "consumer_key_rejected")
        if datetime.fromisoformat(c.access_token_expiry) <= datetime.now(UTC):
            raise ApiError(401, "token_expiredUnauthorized")
        if (
            not params["oauth_timestamp"].isdigit()
            or abs(int(params["oauth_timestamp"]) - time.time()) > OAUTH_WINDOW
        ):
            raise ApiError(401, "timestamp_refused")
        url = f"https://{headers.get('host', '')}{target}"
        expected = oauth_signature("GET", url, params, c.consumer_secret, c.access_secret)
        if not hmac.compare_digest(expected, params["oauth_signature"]):
            raise ApiError(401, "signature_invalid")
        with self._lock:
            if params["oauth_nonce"] in self._nonces:
                raise ApiError(401, "nonce_used")
            self._nonces.add(params["oauth_nonce"])
            session = "sess-" + secrets.token_hex(16)
            self.sessions.add(session)
        return session

    def _route(self, method: str, path: str, target: str, raw: bytes) -> Any:
        body: Any = {}
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(400, "MALFORMED_REQUEST_BODY") from None
        if path == "/account" and method == "GET":
            return self.account
        if path == "/server/devices" and method == "POST":
            return self._fetch(body)
        if path == "/devices/sync" and method == "POST":
            return self._sync(body)
        if path == "/profile" and method == "POST":
            return self._define(body)
        if path == "/profile" and method == "GET":
            profile_uuid = parse_qs(urlsplit(target).query).get("profile_uuid", [""])[0]
            if profile_uuid not in self.profiles:
                raise ApiError(404, "PROFILE_NOT_FOUND")
            return self.profiles[profile_uuid]
        if path == "/profile/devices" and method in ("POST", "PUT"):
            return self._assign(body)
        if path == "/profile/devices" and method == "DELETE":
            return self._unassign(body)
        raise ApiError(404, "NOT_FOUND")

    @staticmethod
    def _limit(body: dict[str, Any]) -> int:
        limit = body.get("limit", DEFAULT_PAGE)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ApiError(400, "LIMIT_INVALID")
        return min(limit, MAX_PAGE)

    def _shown(self, record: dict[str, Any]) -> dict[str, Any]:
        if not self.drop_fields:
            return record
        return {k: v for k, v in record.items() if k not in self.drop_fields}

    def _fetch(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "MALFORMED_REQUEST_BODY")
        limit = self._limit(body)
        with self._lock:
            if "cursor" in body:
                cursor = self._read_cursor(body["cursor"])
                if cursor["k"] != "fetch":
                    raise ApiError(400, "INVALID_CURSOR")
                after, position = cursor["a"], cursor["s"]
            else:
                after, position = "", len(self._log)
            start = bisect.bisect_right(self._serials, after) if after else 0
            serials = self._serials[start : start + limit]
            more = start + limit < len(self._serials)
            devices = [self._shown(self.devices[s]) for s in serials]
            next_cursor = (
                self._cursor("fetch", position, serials[-1]) if more else self._cursor("sync", position)
            )
            return {
                "devices": devices,
                "cursor": next_cursor,
                "more_to_follow": more,
                "fetched_until": _iso(self.now()),
            }

    def _sync(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "MALFORMED_REQUEST_BODY")
        if not body.get("cursor"):
            raise ApiError(400, "CURSOR_REQUIRED")
        limit = self._limit(body)
        with self._lock:
            cursor = self._read_cursor(body["cursor"])
            if self.now().timestamp() - cursor["t"] > self.cursor_ttl.total_seconds():
                raise ApiError(400, "EXPIRED_CURSOR")
            position = cursor["s"]
            entries = self._log[position : position + limit]
            devices = []
            for serial, op, when, record in entries:
                shown = {"serial_number": serial} if record is None else dict(self._shown(record))
                shown.update(op_type=op, op_date=_iso(when))
                devices.append(shown)
            end = position + len(entries)
            return {
                "devices": devices,
                "cursor": self._cursor("sync", end),
                "more_to_follow": end < len(self._log),
                "fetched_until": _iso(self.now()),
            }

    def _define(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "MALFORMED_REQUEST_BODY")
        name, url = body.get("profile_name"), body.get("url")
        if name is None:
            raise ApiError(400, "CONFIG_NAME_REQUIRED")
        if not isinstance(name, str) or not name or len(name) > 125:
            raise ApiError(400, "CONFIG_NAME_INVALID")
        if url is None:
            raise ApiError(400, "CONFIG_URL_REQUIRED")
        if not isinstance(url, str) or not urlsplit(url).scheme or len(url) > 2000:
            raise ApiError(400, "CONFIG_URL_INVALID")
        for key, limit, code in (
            ("org_magic", 256, "MAGIC_INVALID"),
            ("department", 125, "DEPARTMENT_INVALID"),
            ("support_phone_number", 50, "SUPPORT_PHONE_INVALID"),
            ("support_email_address", 250, "SUPPORT_EMAIL_INVALID"),
        ):
            if key in body and (not isinstance(body[key], str) or not body[key] or len(body[key]) > limit):
                raise ApiError(400, code)
        if body.get("is_mdm_removable") is False and body.get("is_supervised") is not True:
            raise ApiError(400, "FLAGS_INVALID")
        profile_uuid = uuid.uuid4().hex.upper()
        with self._lock:
            self.profiles[profile_uuid] = {**body, "profile_uuid": profile_uuid}
            results = self._apply(profile_uuid, body.get("devices") or [])
        return {"profile_uuid": profile_uuid, "devices": results}

    def _serials_of(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            raise ApiError(400, "MALFORMED_REQUEST_BODY")
        serials = body.get("devices")
        if not serials or not isinstance(serials, list) or not all(isinstance(s, str) for s in serials):
            raise ApiError(400, "DEVICE_ID_REQUIRED")
        if len(serials) > MAX_SERIALS:
            raise ApiError(400, "DEVICE_ID_LIMIT_EXCEEDED")  # the simulator's own code: at most 1000
        self.largest_batch = max(self.largest_batch, len(serials))
        return serials

    def _apply(self, profile_uuid: str | None, serials: list[str]) -> dict[str, str]:
        results: dict[str, str] = {}
        for serial in serials:
            if serial in self.throttle_serials:
                results[serial] = "THROTTLED"
            elif serial in self.fail_serials:
                results[serial] = "FAILED"
            elif serial not in self.devices:
                results[serial] = "NOT_ACCESSIBLE"
            else:
                results[serial] = "SUCCESS"
                if profile_uuid:
                    assigned = {"profile_status": "assigned", "profile_assign_time": _iso(self.now())}
                    self.modify(serial, profile_uuid=profile_uuid, **assigned)
                else:
                    self.modify(serial, profile_uuid="", profile_status="removed", profile_assign_time="")
        return results

    def _assign(self, body: Any) -> dict[str, Any]:
        serials = self._serials_of(body)
        profile_uuid = body.get("profile_uuid")
        if not profile_uuid:
            raise ApiError(400, "PROFILE_UUID_REQUIRED")
        with self._lock:
            if profile_uuid not in self.profiles:
                raise ApiError(404, "PROFILE_NOT_FOUND")
            results = self._apply(profile_uuid, serials)
        answer: dict[str, Any] = {"profile_uuid": profile_uuid, "devices": results}
        if "THROTTLED" in results.values():
            answer["retry_after_seconds"] = 60
        return answer

    def _unassign(self, body: Any) -> dict[str, Any]:
        serials = self._serials_of(body)
        with self._lock:
            return {"devices": self._apply(None, serials)}


def main() -> None:
    """Run the simulator in its own process (the benchmark does, so it does not share a GIL)."""
    parser = argparse.ArgumentParser(description="Apple device assignment API simulator")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--tls-dir", type=Path, required=True)
    parser.add_argument("--credentials", type=Path, required=True, help="JSON of the server token's fields")
    args = parser.parse_args()
    tls = make_server_tls(args.tls_dir)
    credentials = Credentials(**json.loads(args.credentials.read_text()))
    with DepSimulator(tls, credentials, keep_requests=False) as sim:
        sim.add_devices(args.devices)
        print(sim.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
