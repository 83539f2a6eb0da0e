"""An APNs stand-in for MDM pushes: HTTP/2 over TLS on 127.0.0.1 (protocol doc §d.3–§d.6).

Tests and benchmarks point Russet's pusher here instead of api.push.apple.com. It checks what
APNs checks and answers what APNs answers:

* TLS with a client certificate issued by a given CA (the tests' stand-in for Apple); without one
  the handshake fails. The topic is the client certificate's subject UID (§d.1); a certificate
  without a ``com.apple.mgmt.`` UID gets 403 ``BadCertificate`` on every request.
* ``POST /3/device/<hex token>`` with ``apns-push-type: mdm``, ``apns-topic`` equal to the
  certificate's topic, optional ``apns-priority`` (1, 5, 10), ``apns-expiration`` (integer),
  ``apns-id`` (canonical UUID), ``apns-collapse-id`` (≤ 64 bytes), body exactly
  ``{"mdm": "<PushMagic>"}`` (≤ 4096 bytes).
* 200 with ``apns-id``, or ``{"reason": …}`` with the status of §d.5 (410 adds ``timestamp``).

Where §d.5 does not say which reason APNs picks, this simulator's choice is: a well-formed topic
other than the certificate's is ``TopicDisallowed``, a malformed one ``BadTopic``, a token bound
to another topic (`ApnsSimulator.bind`) ``DeviceTokenNotForTopic``. A body that is JSON but not
``{"mdm": string}`` gets 400 ``BadMdmPayload``, a reason of this simulator only (APNs' answer is
not documented). Real APNs also accepts a missing ``apns-topic`` for single-topic certificates;
the simulator refuses it with ``MissingTopic`` unless ``require_topic=False``, because Russet
always sends it.

The server runs on its own event loop (uvloop when installed) in a background thread, or in a
process of its own (``python -m simulators.apns``, see `main`) so a benchmark's pusher keeps the
GIL. Two HTTP/2 engines share the checks above: ``lean`` (default), this module's own minimal
HTTP/2 server side at ~25 µs of CPU per request, and ``h2``, the h2 library's state machine at
~250 µs, kept as the strict reference (the tests run on both). ``record=False`` keeps only
counters, for benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import struct
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    uvloop = None  # type: ignore[assignment]

TOPIC_PREFIX = "com.apple.mgmt."
MAX_PAYLOAD = 4096
SIM_ONLY_REASONS = frozenset({"BadMdmPayload"})
# Reasons used by `inject` when none is given.
DEFAULT_REASONS = {
    400: "BadDeviceToken",
    403: "BadCertificate",
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}

_BACKDATE = timedelta(minutes=5)
_PATH_PREFIX = b"/3/device/"
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2}){1,100}")
_UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TOPIC = re.compile(rb"[A-Za-z0-9][A-Za-z0-9.\-_]*")
_PRIORITIES = frozenset({b"1", b"5", b"10"})
_CONNECTION_WINDOW = 16 * 1024 * 1024
_H2_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)


# -- certificates: a stand-in for Apple's CAs, and the simulator's own server certificate ---------


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class FakeAppleCA:
    """Stands in for Apple's CAs: issues MDM push certificates (UID = topic) and vendor certificates."""

    def __init__(
        self, common_name: str = "Apple Test Certification Authority", organization: str = "Apple Inc."
    ) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = _name((NameOID.COMMON_NAME, common_name), (NameOID.ORGANIZATION_NAME, organization))
        start = datetime.now(UTC) - _BACKDATE
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    def _issue(
        self,
        public_key: CertificatePublicKeyTypes,
        subject: x509.Name,
        not_before: datetime | None,
        not_after: datetime | None,
        days: int,
    ) -> x509.Certificate:
        start = not_before or datetime.now(UTC) - _BACKDATE
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after or start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue_push_certificate(
        self,
        public_key: CertificatePublicKeyTypes,
        topic: str | None,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        days: int = 365,
    ) -> x509.Certificate:
        """A push certificate shaped like Apple's (UID=topic, CN=APSP:…, C=US); no UID if topic is None."""
        attributes = [] if topic is None else [(NameOID.USER_ID, topic)]
        attributes += [(NameOID.COMMON_NAME, f"APSP:{uuid.uuid4()}"), (NameOID.COUNTRY_NAME, "US")]
        return self._issue(public_key, _name(*attributes), not_before, not_after, days)

    def new_push_identity(
        self, topic: str | None, *, days: int = 365
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A fresh RSA 2048 key and its push certificate: the client identity a pusher presents."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.issue_push_certificate(key.public_key(), topic, days=days), key

    def issue_vendor_certificate(
        self, common_name: str = "MDM Vendor: Russet Test Vendor", *, days: int = 365
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """An "MDM Vendor CSR Signing" certificate and its RSA key (the vendor signs SHA256withRSA)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = _name((NameOID.COMMON_NAME, common_name), (NameOID.COUNTRY_NAME, "US"))
        return self._issue(key.public_key(), subject, None, None, days), key


@dataclass(frozen=True)
class ServerTls:
    """A throwaway CA and a server certificate it issued for 127.0.0.1; clients trust ``ca_cert``."""

    ca_cert: x509.Certificate
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(_pem(self.ca_cert))
        return path


def make_server_tls(host: str = "127.0.0.1", days: int = 2) -> ServerTls:
    """A fresh CA and server certificate for ``host`` (an IP address), EC P-256 for fast handshakes."""
    import ipaddress

    start = datetime.now(UTC) - _BACKDATE
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name((NameOID.COMMON_NAME, "APNs simulator server CA"))
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name((NameOID.COMMON_NAME, host)))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ServerTls(ca, cert, key)


def write_identity(
    directory: Path, cert: x509.Certificate, key: PrivateKeyTypes, name: str
) -> tuple[Path, Path]:
    """Write a certificate and its key as PEM files (ssl wants files); returns their paths."""
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(_pem(cert))
    key_file.write_bytes(_key_pem(key))
    key_file.chmod(0o600)
    return cert_file, key_file


def _peer_topic(transport: asyncio.BaseTransport) -> str | None:
    """The MDM topic of the client certificate (its subject UID), once per connection."""
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    for attribute in cert.subject.get_attributes_for_oid(NameOID.USER_ID):
        if isinstance(attribute.value, str) and attribute.value.startswith(TOPIC_PREFIX):
            return attribute.value
    return None


# -- what was received, and scripted faults ------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what the simulator answered."""

    method: str
    path: str
    token: str | None
    headers: dict[str, str]  # without the pseudo-headers
    body: bytes
    status: int
    reason: str | None
    apns_id: str
    certificate_topic: str | None


@dataclass
class _Fault:
    status: int
    reason: str
    remaining: int | None  # None: until cleared
    timestamp_ms: int | None


_Verdict = tuple[int, str | None, int | None]  # status, reason, timestamp for 410


def _error_body(reason: str, timestamp_ms: int | None) -> bytes:
    payload: dict[str, Any] = {"reason": reason}
    if timestamp_ms is not None:
        payload["timestamp"] = timestamp_ms
    return json.dumps(payload).encode()


# -- the server --------------------------------------------------------------------------------


class ApnsSimulator:
    """APNs for MDM on 127.0.0.1; use as a context manager (or start/stop), then point a client at ``url``."""

    def __init__(
        self,
        *,
        ca_cert: x509.Certificate | Sequence[x509.Certificate],
        server_cert: x509.Certificate | None = None,
        server_key: PrivateKeyTypes | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        require_topic: bool = True,
        max_concurrent_streams: int = 1000,
        engine: str = "lean",
    ) -> None:
        if engine not in _ENGINES:
            raise ValueError(f"engine must be one of {', '.join(_ENGINES)}")
        self._protocol = _ENGINES[engine]
        if (server_cert is None) != (server_key is None):
            raise ValueError("give both server_cert and server_key, or neither for a throwaway one")
        # The CA a client must trust, when the simulator made its own server certificate.
        self.server_ca: x509.Certificate | None = None
        if server_cert is None or server_key is None:
            tls = make_server_tls(host)
            server_cert, server_key, self.server_ca = tls.cert, tls.key, tls.ca_cert
        self._ca_certs = [ca_cert] if isinstance(ca_cert, x509.Certificate) else list(ca_cert)
        self._server_cert, self._server_key = server_cert, server_key
        self.host, self.port = host, port
        self.record = record
        self.require_topic = require_topic
        self.max_concurrent_streams = max_concurrent_streams
        self.received: list[Received] = []
        self.count = 0
        self.by_status: Counter[int] = Counter()
        self.connections_made = 0
        self.max_requests_per_read = 0  # above 1 only when a client has several streams in flight
        self._id_prefix = str(uuid.uuid4())[:24].encode()  # apns-ids: this prefix and a counter
        self._faults: dict[bytes | None, list[_Fault]] = {}
        self._bindings: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self._open: set[Any] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="apns-sim-")
        # PEM of the throwaway server CA, for clients that take a CA file (None with a given cert).
        self.server_ca_file = None if self.server_ca is None else Path(self._dir.name) / "server-ca.pem"

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def __enter__(self) -> ApnsSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ssl_context(self) -> ssl.SSLContext:
        directory = Path(self._dir.name)
        cert_file, key_file = write_identity(directory, self._server_cert, self._server_key, "server")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata="".join(_pem(c).decode() for c in self._ca_certs))
        ctx.load_cert_chain(cert_file, key_file)
        ctx.set_alpn_protocols(["h2"])
        if self.server_ca is not None and self.server_ca_file is not None:
            self.server_ca_file.write_bytes(_pem(self.server_ca))
        return ctx

    def start(self) -> None:
        """Listen (on ``port``, or a free one) in a background thread; returns once it accepts."""
        ctx = self._ssl_context()
        self._thread = threading.Thread(target=self._run, args=(ctx,), name="apns-simulator", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise self._startup_error

    def _run(self, ctx: ssl.SSLContext) -> None:
        loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(lambda: self._protocol(self), self.host, self.port, ssl=ctx, backlog=1024)
            )
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for conn in list(self._open):
                conn.abort()
            loop.run_until_complete(server.wait_closed())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._dir.cleanup()

    def client_context(self, cert: x509.Certificate, key: PrivateKeyTypes) -> ssl.SSLContext:
        """A client TLS context that trusts this server and presents ``cert``/``key`` (for tests)."""
        if self.server_ca is None:
            raise ValueError("the server certificate was given: build the client context with its CA")
        ctx = ssl.create_default_context(cadata=_pem(self.server_ca).decode())
        cert_file, key_file = write_identity(Path(self._dir.name), cert, key, f"client-{uuid.uuid4().hex}")
        ctx.load_cert_chain(cert_file, key_file)
        ctx.set_alpn_protocols(["h2"])
        return ctx

    # -- scripting -----------------------------------------------------------------------------

    def inject(
        self,
        token_hex: str | None,
        status: int,
        reason: str | None = None,
        *,
        times: int | None = 1,
        timestamp_ms: int | None = None,
    ) -> None:
        """Answer the next ``times`` valid pushes to ``token_hex`` (None: any token) with an error.

        ``times=None`` keeps answering so until `clear_faults`. A 410 carries ``timestamp``
        (now, unless given), as APNs' does.
        """
        chosen = reason or DEFAULT_REASONS.get(status)
        if chosen is None:
            raise ValueError(f"give a reason for status {status}")
        if status == 410 and timestamp_ms is None:
            timestamp_ms = int(time.time() * 1000)
        key = None if token_hex is None else token_hex.lower().encode()
        with self._lock:
            self._faults.setdefault(key, []).append(_Fault(status, chosen, times, timestamp_ms))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def bind(self, token_hex: str, topic: str) -> None:
        """Say the device token belongs to ``topic``: pushes to it under another topic get
        ``DeviceTokenNotForTopic`` (devices left on an old topic after a certificate change)."""
        self._bindings[token_hex.lower().encode()] = topic.encode()

    def reset(self) -> None:
        """Forget what was received and the counters (faults and bindings stay)."""
        self.received.clear()
        self.count = 0
        self.by_status.clear()
        self.max_requests_per_read = 0

    def goaway(self, reason: str = "Shutdown") -> None:
        """Close every connection with a GOAWAY whose debug data is ``{"reason": …}`` (§d.5)."""
        loop = self._loop
        if loop is None:
            return
        debug = _error_body(reason, None)

        async def close_all() -> None:
            for conn in list(self._open):
                conn.goaway(debug)

        asyncio.run_coroutine_threadsafe(close_all(), loop).result(10)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "by_status": dict(self.by_status),
            "connections": self.connections_made,
            "open_connections": len(self._open),
            "max_requests_per_read": self.max_requests_per_read,
        }

    # -- judging one request (server thread) ---------------------------------------------------

    def _fault_for(self, token: bytes) -> _Verdict | None:
        with self._lock:
            for key in (token, None):
                faults = self._faults.get(key)
                if not faults:
                    continue
                fault = faults[0]
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        faults.pop(0)
                return fault.status, fault.reason, fault.timestamp_ms
        return None

    def _connected(self, conn: Any) -> None:
        self._open.add(conn)
        self.connections_made += 1

    def _handle(
        self, raw_headers: list[tuple[bytes, bytes]], body: bytes, cert_topic: str | None
    ) -> tuple[int, str | None, int | None, bytes]:
        """Judge, count and (when recording) keep one request; returns the answer and its apns-id."""
        headers: dict[bytes, bytes] = {}
        duplicated = False
        for name, value in raw_headers:
            if name in headers:
                duplicated = True
            headers[name] = value
        status, reason, timestamp_ms = self.judge(headers, duplicated, body, cert_topic)
        self.count += 1
        self.by_status[status] += 1
        apns_id = headers.get(b"apns-id")
        if apns_id is None or not _UUID.fullmatch(apns_id):
            apns_id = b"%s%012x" % (self._id_prefix, self.count)
        if self.record:
            path = headers.get(b":path", b"").decode("latin-1")
            self.received.append(
                Received(
                    method=headers.get(b":method", b"").decode("latin-1"),
                    path=path,
                    token=path[len(_PATH_PREFIX) :] if path.startswith("/3/device/") else None,
                    headers={
                        k.decode("latin-1"): v.decode("latin-1")
                        for k, v in raw_headers
                        if not k.startswith(b":")
                    },
                    body=body,
                    status=status,
                    reason=reason,
                    apns_id=apns_id.decode("latin-1"),
                    certificate_topic=cert_topic,
                )
            )
        return status, reason, timestamp_ms, apns_id

    def judge(
        self, headers: dict[bytes, bytes], duplicated: bool, body: bytes, cert_topic: str | None
    ) -> _Verdict:
        """APNs' answer to one request: (status, reason or None, 410 timestamp or None)."""
        if headers.get(b":method") != b"POST":
            return 405, "MethodNotAllowed", None
        path = headers.get(b":path", b"")
        if not path.startswith(_PATH_PREFIX):
            return 404, "BadPath", None
        token = path[len(_PATH_PREFIX) :]
        if not token:
            return 400, "MissingDeviceToken", None
        if cert_topic is None:
            return 403, "BadCertificate", None
        if duplicated:
            return 400, "DuplicateHeaders", None
        apns_id = headers.get(b"apns-id")
        if apns_id is not None and not _UUID.fullmatch(apns_id):
            return 400, "BadMessageId", None
        if headers.get(b"apns-push-type") != b"mdm":
            return 400, "InvalidPushType", None
        topic = headers.get(b"apns-topic")
        if topic is None:
            if self.require_topic:
                return 400, "MissingTopic", None
            topic = cert_topic.encode()
        elif not _TOPIC.fullmatch(topic):
            return 400, "BadTopic", None
        elif topic != cert_topic.encode():
            return 400, "TopicDisallowed", None
        if not _HEX.fullmatch(token):
            return 400, "BadDeviceToken", None
        priority = headers.get(b"apns-priority")
        if priority is not None and priority not in _PRIORITIES:
            return 400, "BadPriority", None
        expiration = headers.get(b"apns-expiration")
        if expiration is not None and not expiration.isdigit():
            return 400, "BadExpirationDate", None
        collapse = headers.get(b"apns-collapse-id")
        if collapse is not None and len(collapse) > 64:
            return 400, "BadCollapseId", None
        if not body:
            return 400, "PayloadEmpty", None
        if len(body) > MAX_PAYLOAD:
            return 413, "PayloadTooLarge", None
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, "BadMdmPayload", None
        if not (
            type(payload) is dict and len(payload) == 1 and type(payload.get("mdm")) is str and payload["mdm"]
        ):
            return 400, "BadMdmPayload", None
        token = token.lower()
        bound = self._bindings.get(token) if self._bindings else None
        if bound is not None and bound != topic:
            return 400, "DeviceTokenNotForTopic", None
        if self._faults:
            fault = self._fault_for(token)
            if fault is not None:
                return fault
        return 200, None, None


# -- engine "h2": the h2 library's state machine, strict (flow control, header validation) ------


class _H2Connection(asyncio.Protocol):
    """One client connection served by the h2 library: slower, but a reference for the lean engine."""

    def __init__(self, sim: ApnsSimulator) -> None:
        self.sim = sim
        self.h2 = h2.connection.H2Connection(config=_H2_CONFIG)
        self.transport: Any = None
        self.streams: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        self.cert_topic: str | None = None
        self.last_stream_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = transport
        self.cert_topic = _peer_topic(transport)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.sim.max_concurrent_streams},
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_CONNECTION_WINDOW - 65535)
        transport.write(self.h2.data_to_send())  # type: ignore[attr-defined]
        self.sim._connected(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sim._open.discard(self)
        self.streams.clear()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def goaway(self, debug: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.h2.close_connection(additional_data=debug, last_stream_id=self.last_stream_id)
        self.transport.write(self.h2.data_to_send())
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        conn, transport, streams = self.h2, self.transport, self.streams
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            transport.write(conn.data_to_send())
            transport.close()
            return
        answered = 0
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                streams[event.stream_id] = (event.headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                stream = streams.get(event.stream_id)
                if stream is not None and event.data:
                    stream[1].extend(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                stream = streams.pop(event.stream_id, None)
                if stream is not None:
                    answered += 1
                    self._respond(event.stream_id, stream[0], bytes(stream[1]))
            elif isinstance(event, h2.events.StreamReset):
                streams.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                transport.write(conn.data_to_send())
                transport.close()
                return
        if answered > self.sim.max_requests_per_read:
            self.sim.max_requests_per_read = answered
        out = conn.data_to_send()
        if out:
            transport.write(out)

    def _respond(self, stream_id: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.last_stream_id = stream_id
        status, reason, timestamp_ms, apns_id = self.sim._handle(raw_headers, body, self.cert_topic)
        try:
            if reason is None:
                self.h2.send_headers(
                    stream_id, [(b":status", b"200"), (b"apns-id", apns_id)], end_stream=True
                )
            else:
                headers = [
                    (b":status", str(status).encode()),
                    (b"apns-id", apns_id),
                    (b"content-type", b"application/json"),
                ]
                self.h2.send_headers(stream_id, headers)
                self.h2.send_data(stream_id, _error_body(reason, timestamp_ms), end_stream=True)
        except h2.exceptions.StreamClosedError:
            pass  # the client reset the stream meanwhile


# -- engine "lean": just enough HTTP/2 for APNs requests, for benchmarks --------------------------
#
# The h2 library costs ~250 µs of CPU per request (hpack decoding and its state machines); a
# 10,000 pushes/s benchmark on two cores cannot spare that. This engine parses frames, decodes
# HPACK (with the dynamic table) and writes responses that need no encoder state (static-table
# indices and literals without indexing). It honours the client's flow-control windows for the
# bodies it sends and keeps its own receive windows open; it does not police the client's.

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONT = (
    range(10)
)
_END_STREAM = _ACK = 0x1
_END_HEADERS, _PADDED, _PRIORITY_FLAG = 0x4, 0x8, 0x20
_PROTOCOL_ERROR, _FRAME_SIZE_ERROR, _REFUSED_STREAM, _COMPRESSION_ERROR = 0x1, 0x6, 0x7, 0x9
_MAX_FRAME = 16384
_MAX_HEADER_BLOCK = 64 * 1024
_STREAM_WINDOW = 1 << 20  # our SETTINGS_INITIAL_WINDOW_SIZE: a 4 KB payload never needs an update
_FRAME_HEADER = struct.Struct(">BHBBI")
_STATIC: tuple[tuple[bytes, bytes], ...] = HeaderTable.STATIC_TABLE
# Response header blocks: ":status" from the static table where it has the code, else a literal
# (name index 8) without indexing; then apns-id (36 characters) and content-type as literals.
_STATUS_BLOCK = {200: b"\x88", 400: b"\x8c", 404: b"\x8d", 500: b"\x8e"}
_APNS_ID_FIELD = b"\x00\x07apns-id\x24"
_JSON_TYPE_FIELD = b"\x0f\x10\x10application/json"


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _FRAME_HEADER.pack(n >> 16, n & 0xFFFF, kind, flags, stream_id) + payload


def _status_block(status: int) -> bytes:
    block = _STATUS_BLOCK.get(status)
    return block if block is not None else b"\x08\x03" + str(status).encode()


class _ProtocolError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _build_huffman_tables() -> tuple[list[int], list[bytes], frozenset[int]]:
    """A byte-at-a-time decoder for HPACK's Huffman code (RFC 7541 Appendix B).

    States are the internal nodes of the code tree; for each (state, input byte) the tables give
    the next state (-1: invalid, e.g. EOS inside a string) and the bytes emitted on the way.
    """
    children: list[list[int]] = [[-1, -1]]  # internal nodes; leaves are stored as -(symbol + 2)
    for symbol, (code, length) in enumerate(zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)):
        node = 0
        for shift in range(length - 1, -1, -1):
            bit = (code >> shift) & 1
            if shift == 0:
                children[node][bit] = -(symbol + 2)
            else:
                if children[node][bit] == -1:
                    children.append([-1, -1])
                    children[node][bit] = len(children) - 1
                node = children[node][bit]
    states = len(children)
    next_state = [-1] * (states * 256)
    emitted = [b""] * (states * 256)
    for state in range(states):
        for byte in range(256):
            node, out, ok = state, bytearray(), True
            for shift in range(7, -1, -1):
                child = children[node][(byte >> shift) & 1]
                if child >= 0:
                    node = child
                elif child == -(256 + 2) or child == -1:  # EOS, or a code that does not exist
                    ok = False
                    break
                else:
                    out.append(-child - 2)
                    node = 0
            if ok:
                next_state[(state << 8) | byte] = node
                emitted[(state << 8) | byte] = bytes(out)
    # A string may end at the root or inside a code only on padding: up to 7 one-bits (the EOS prefix).
    accepting, node = {0}, 0
    for _ in range(7):
        node = children[node][1]
        accepting.add(node)
    return next_state, emitted, frozenset(accepting)


_huffman: tuple[list[int], list[bytes], frozenset[int]] | None = None
_huffman_cache: dict[bytes, bytes] = {}


def _huffman_decode(data: bytes) -> bytes:
    global _huffman
    cached = _huffman_cache.get(data)
    if cached is not None:
        return cached
    if _huffman is None:
        _huffman = _build_huffman_tables()
    next_state, emitted, accepting = _huffman
    state, parts = 0, []
    for byte in data:
        index = (state << 8) | byte
        state = next_state[index]
        if state < 0:
            raise _ProtocolError(_COMPRESSION_ERROR, "invalid Huffman code")
        piece = emitted[index]
        if piece:
            parts.append(piece)
    if state not in accepting:
        raise _ProtocolError(_COMPRESSION_ERROR, "invalid Huffman padding")
    decoded = b"".join(parts)
    if len(_huffman_cache) > 65536:
        _huffman_cache.clear()
    _huffman_cache[data] = decoded
    return decoded


class _HpackDecoder:
    """HPACK header block decoding (RFC 7541) with the dynamic table, for one connection."""

    def __init__(self, max_size: int = 4096) -> None:
        self.table: list[tuple[bytes, bytes]] = []  # newest first: index 62 is table[0]
        self.size = 0
        self.max_size = max_size
        self.limit = max_size  # what we allowed in SETTINGS_HEADER_TABLE_SIZE (the default)

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if 0 < index <= 61:
            return _STATIC[index - 1]
        if 61 < index <= 61 + len(self.table):
            return self.table[index - 62]
        raise _ProtocolError(_COMPRESSION_ERROR, f"header table index {index} out of range")

    def _add(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 32
        self.table.insert(0, (name, value))
        self.size += size
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size and self.table:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32

    @staticmethod
    def _integer(data: bytes, i: int, bits: int) -> tuple[int, int]:
        mask = (1 << bits) - 1
        value = data[i] & mask
        i += 1
        if value < mask:
            return value, i
        shift = 0
        while True:
            byte = data[i]
            i += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, i
            if shift > 28:
                raise _ProtocolError(_COMPRESSION_ERROR, "HPACK integer too large")

    def _string(self, data: bytes, i: int) -> tuple[bytes, int]:
        huffman = data[i] & 0x80
        length, i = self._integer(data, i, 7)
        end = i + length
        if end > len(data):
            raise _ProtocolError(_COMPRESSION_ERROR, "HPACK string runs past the block")
        raw = data[i:end]
        return (_huffman_decode(raw) if huffman else raw), end

    def decode(self, data: bytes) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        i, n = 0, len(data)
        try:
            while i < n:
                byte = data[i]
                if byte & 0x80:  # indexed field
                    index, i = self._integer(data, i, 7)
                    headers.append(self._entry(index))
                    continue
                if byte & 0x40:  # literal with incremental indexing
                    index, i = self._integer(data, i, 6)
                    indexing = True
                elif byte & 0x20:  # dynamic table size update
                    size, i = self._integer(data, i, 5)
                    if size > self.limit:
                        raise _ProtocolError(_COMPRESSION_ERROR, "table size update above our limit")
                    self.max_size = size
                    self._evict()
                    continue
                else:  # literal without indexing (0000) or never indexed (0001)
                    index, i = self._integer(data, i, 4)
                    indexing = False
                if index:
                    name = self._entry(index)[0]
                else:
                    name, i = self._string(data, i)
                value, i = self._string(data, i)
                headers.append((name, value))
                if indexing:
                    self._add(name, value)
        except IndexError:
            raise _ProtocolError(_COMPRESSION_ERROR, "truncated header block") from None
        return headers


class _LeanConnection(asyncio.Protocol):
    """One client connection, HTTP/2 server side, with only what APNs requests need."""

    def __init__(self, sim: ApnsSimulator) -> None:
        self.sim = sim
        self.transport: Any = None
        self.cert_topic: str | None = None
        self.buffer = bytearray()
        self.preface_seen = False
        self.decoder = _HpackDecoder()
        # stream id -> [headers, body, bytes received]
        self.streams: dict[int, list[Any]] = {}
        self.last_stream_id = 0
        self.block_stream = 0  # stream whose header block continues in CONTINUATION frames
        self.block = bytearray()
        self.block_ends_stream = False
        self.received_unacked = 0
        self.send_window = 65535
        self.initial_send_window = 65535
        self.stream_send_credit: dict[int, int] = {}  # WINDOW_UPDATEs for streams we have not answered
        self.pending: list[tuple[int, bytes]] = []  # DATA frames (stream, body) waiting for window
        self.out: list[bytes] = []
        self.closing = False

    # -- lifecycle ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.cert_topic = _peer_topic(transport)
        settings = struct.pack(
            ">HIHI", 0x3, self.sim.max_concurrent_streams, 0x4, _STREAM_WINDOW
        )  # MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE
        transport.write(  # type: ignore[attr-defined]
            _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", _CONNECTION_WINDOW - 65535))
        )
        self.sim._connected(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sim._open.discard(self)
        self.streams.clear()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def goaway(self, debug: bytes, code: int = 0) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        payload = struct.pack(">II", self.last_stream_id, code) + debug
        self.transport.write(b"".join(self.out) + _frame(_GOAWAY, 0, 0, payload))
        self.out.clear()
        self.transport.close()
        self.closing = True

    # -- input ----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        buffer = self.buffer
        buffer += data
        answered = self.sim.count
        try:
            if not self.preface_seen:
                if len(buffer) < 24:
                    return
                if buffer[:24] != _PREFACE:
                    raise _ProtocolError(_PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                del buffer[:24]
                self.preface_seen = True
            offset, end = 0, len(buffer)
            while end - offset >= 9:
                high, low, kind, flags, stream_id = _FRAME_HEADER.unpack_from(buffer, offset)
                length = (high << 16) | low
                if length > _MAX_FRAME:
                    raise _ProtocolError(_FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE")
                if end - offset - 9 < length:
                    break
                payload = bytes(buffer[offset + 9 : offset + 9 + length])
                offset += 9 + length
                self._frame(kind, flags, stream_id & 0x7FFFFFFF, payload)
                if self.closing:
                    return
            del buffer[:offset]
        except _ProtocolError as exc:
            self.goaway(str(exc).encode(), exc.code)
            return
        answered = self.sim.count - answered
        if answered > self.sim.max_requests_per_read:
            self.sim.max_requests_per_read = answered
        if self.out:
            self.transport.write(b"".join(self.out))
            self.out.clear()

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self.block_stream and kind != _CONT:
            raise _ProtocolError(_PROTOCOL_ERROR, "header block interrupted before CONTINUATION")
        if kind == _HEADERS:
            self._headers(flags, stream_id, payload)
        elif kind == _DATA:
            self._data(flags, stream_id, payload)
        elif kind == _CONT:
            if stream_id != self.block_stream or not stream_id:
                raise _ProtocolError(_PROTOCOL_ERROR, "unexpected CONTINUATION")
            self._fragment(stream_id, payload, flags & _END_HEADERS, self.block_ends_stream)
        elif kind == _SETTINGS:
            self._settings(flags, payload)
        elif kind == _WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == _PING:
            if len(payload) != 8:
                raise _ProtocolError(_FRAME_SIZE_ERROR, "PING payload must be 8 bytes")
            if not flags & _ACK:
                self.out.append(_frame(_PING, _ACK, 0, payload))
        elif kind == _RST_STREAM:
            self.streams.pop(stream_id, None)
            self.stream_send_credit.pop(stream_id, None)
        elif kind == _GOAWAY:
            self.goaway(b"")
        elif kind == _PUSH_PROMISE:
            raise _ProtocolError(_PROTOCOL_ERROR, "clients cannot push")
        # PRIORITY and unknown frame types are ignored, as APNs does (§d.6).

    @staticmethod
    def _unpad(flags: int, payload: bytes) -> bytes:
        if flags & _PADDED:
            if not payload or payload[0] >= len(payload):
                raise _ProtocolError(_PROTOCOL_ERROR, "bad padding")
            return payload[1 : len(payload) - payload[0]]
        return payload

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id or not stream_id & 1:
            raise _ProtocolError(_PROTOCOL_ERROR, "request on an even or zero stream id")
        fragment = self._unpad(flags, payload)
        if flags & _PRIORITY_FLAG:
            fragment = fragment[5:]
        if stream_id <= self.last_stream_id and stream_id not in self.streams:
            raise _ProtocolError(_PROTOCOL_ERROR, "HEADERS on a closed stream")
        self._fragment(stream_id, fragment, flags & _END_HEADERS, bool(flags & _END_STREAM))

    def _fragment(self, stream_id: int, fragment: bytes, last: int, ends_stream: bool) -> None:
        if not last:
            self.block_stream, self.block_ends_stream = stream_id, ends_stream
            self.block += fragment
            if len(self.block) > _MAX_HEADER_BLOCK:
                raise _ProtocolError(_PROTOCOL_ERROR, "header block too large")
            return
        if self.block_stream:
            self.block += fragment
            fragment = bytes(self.block)
            self.block.clear()
            self.block_stream = 0
        headers = self.decoder.decode(fragment)  # always, so the HPACK table stays in step
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers: nothing APNs reads
            if ends_stream:
                self._end(stream_id)
            return
        self.last_stream_id = stream_id
        if len(self.streams) >= self.sim.max_concurrent_streams:
            self.out.append(_frame(_RST_STREAM, 0, stream_id, struct.pack(">I", _REFUSED_STREAM)))
            return
        self.streams[stream_id] = [headers, bytearray(), 0]
        if ends_stream:
            self._end(stream_id)

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        self.received_unacked += len(payload)
        if self.received_unacked > _CONNECTION_WINDOW // 2:
            self.out.append(_frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", self.received_unacked)))
            self.received_unacked = 0
        stream = self.streams.get(stream_id)
        if stream is None:
            return  # a stream we refused or already answered
        stream[1] += self._unpad(flags, payload)
        stream[2] += len(payload)
        if stream[2] > _STREAM_WINDOW // 2:
            self.out.append(_frame(_WINDOW_UPDATE, 0, stream_id, struct.pack(">I", stream[2])))
            stream[2] = 0
        if flags & _END_STREAM:
            self._end(stream_id)

    def _settings(self, flags: int, payload: bytes) -> None:
        if flags & _ACK:
            return
        if len(payload) % 6:
            raise _ProtocolError(_FRAME_SIZE_ERROR, "SETTINGS payload not a multiple of 6")
        for offset in range(0, len(payload), 6):
            code, value = struct.unpack_from(">HI", payload, offset)
            if code == 0x4:  # INITIAL_WINDOW_SIZE: the window for the bodies we send
                self.initial_send_window = value
        self.out.append(_frame(_SETTINGS, _ACK, 0))
        self._flush_pending()

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ProtocolError(_FRAME_SIZE_ERROR, "WINDOW_UPDATE payload must be 4 bytes")
        increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            self.send_window += increment
        elif stream_id in self.streams or any(s == stream_id for s, _ in self.pending):
            self.stream_send_credit[stream_id] = self.stream_send_credit.get(stream_id, 0) + increment
        self._flush_pending()

    # -- output -------------------------------------------------------------------------------

    def _end(self, stream_id: int) -> None:
        headers, body, _ = self.streams.pop(stream_id)
        status, reason, timestamp_ms, apns_id = self.sim._handle(headers, bytes(body), self.cert_topic)
        block = _status_block(status) + _APNS_ID_FIELD + apns_id
        if reason is None:
            self.stream_send_credit.pop(stream_id, None)
            self.out.append(_frame(_HEADERS, _END_HEADERS | _END_STREAM, stream_id, block))
            return
        self.out.append(_frame(_HEADERS, _END_HEADERS, stream_id, block + _JSON_TYPE_FIELD))
        self.pending.append((stream_id, _error_body(reason, timestamp_ms)))
        self._flush_pending()

    def _flush_pending(self) -> None:
        while self.pending:
            stream_id, body = self.pending[0]
            stream_window = self.initial_send_window + self.stream_send_credit.get(stream_id, 0)
            if len(body) > min(self.send_window, stream_window):
                return  # flow control: wait for the client's WINDOW_UPDATE
            self.pending.pop(0)
            self.stream_send_credit.pop(stream_id, None)
            self.send_window -= len(body)
            self.out.append(_frame(_DATA, _END_STREAM, stream_id, body))


_ENGINES: dict[str, Any] = {"lean": _LeanConnection, "h2": _H2Connection}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the simulator in its own process, so a benchmark's pusher keeps a core (and the GIL).

    ``python -m simulators.apns --ca apple-ca.pem --server-ca-out server-ca.pem`` prints the URL,
    serves until SIGINT/SIGTERM, then prints the counters as JSON.
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m simulators.apns", description=main.__doc__)
    parser.add_argument("--ca", required=True, type=Path, help="PEM of the CA that issues push certificates")
    parser.add_argument("--server-ca-out", required=True, type=Path, help="where to write the server's CA")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--engine", choices=sorted(_ENGINES), default="lean")
    parser.add_argument("--record", action="store_true", help="keep every request (default: count only)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ca_certs = x509.load_pem_x509_certificates(args.ca.read_bytes())
    sim = ApnsSimulator(
        ca_cert=ca_certs, host=args.host, port=args.port, record=args.record, engine=args.engine
    )
    with sim:
        assert sim.server_ca is not None
        args.server_ca_out.write_bytes(_pem(sim.server_ca))
        print(sim.url, flush=True)
        stop.wait()
        print(json.dumps(sim.stats()), flush=True)


if __name__ == "__main__":
    main()
