"""The outbound gateway: the only code in Russet that opens connections to Apple.

Every call says which service and connection it is for, which endpoint, why, and which fields
it carries about whom. The gateway refuses undeclared fields and disconnected connections
before anything leaves, retries what Apple asks to be retried (backoff with jitter,
Retry-After), reuses connections, and writes one ledger row per field per attempt.
`RUSSET_APPLE_CA_FILE` replaces the system trust store for all of it.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import ssl
import tempfile
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from russet.apple.catalogue import spec
from russet.apple.connections import ConnectionRegistry
from russet.apple.h2client import H2Client, HeaderTemplate
from russet.apple.ledger import Ledger, LedgerCells, LedgerHead
from russet.apple.wire import APNS_PROTOCOL_HEADERS, Refused, derive_received, derive_sent, norm

if TYPE_CHECKING:
    import httpx  # imported when a first request is sent: ~5 MB a worker that never calls Apple saves

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REQUEST_ID_HEADERS = ("apns-id", "x-request-id", "x-apple-request-uuid", "x-apple-jingle-correlation-key")
MAX_RETRY_AFTER = 300.0


class NotOnTheWire(ValueError):
    """A caller recorded as received something Apple's answer does not carry (a bug in Russet)."""


class AppleUnavailable(Exception):
    """Apple could not be reached (or kept failing) after every allowed attempt."""


@dataclass(frozen=True, slots=True)
class Datum:
    """One field of an exchange: its catalogue name, its value, and whom it is about."""

    field: str
    value: str | bytes | int | None
    subject: str | None = None  # the device serial/UDID, user id or organisation it concerns


@dataclass(frozen=True, slots=True)
class Call:
    service: str  # apns | abm | vpp
    connection: str  # the connection's name
    endpoint: str  # a template, never values: "POST /server/devices"
    purpose: str  # why, in words a privacy officer can read
    sent: Sequence[Datum] = ()


ClientIdentity = tuple[x509.Certificate, PrivateKeyTypes]
# One attempt for `AppleGateway.record_alike`: subject, values, status, request id, received pairs.
Attempt = tuple[
    str | None, Sequence[str | bytes | int | None], int | None, str | None, Sequence[tuple[str, str | None]]
]


# Told of every attempt at a call to Apple: its service and Apple's status (None: no answer).
# Observers run on the caller's path (the push path among them): they must be cheap and not raise.
CallObserver = Callable[[str, int | None], None]

_UNSEEN: Any = object()


def _head(call: Call, at: datetime) -> LedgerHead:
    return (at, call.service, call.connection, call.endpoint, call.purpose)


class AppleGateway:
    def __init__(
        self,
        ledger: Ledger,
        connections: ConnectionRegistry,
        *,
        ca_file: str | None = None,
        timeout: float = 30.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.ledger = ledger
        self.connections = connections
        self._ca_file = ca_file
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._clients: dict[tuple[str, str, str, bool], httpx.AsyncClient] = {}
        self._h2: dict[tuple[str, str, str], tuple[str, H2Client]] = {}
        self._observers: list[CallObserver] = []
        # Each answer's fields, read once however many times its caller records from it.
        self._answers: weakref.WeakKeyDictionary[httpx.Response, set[str]] = weakref.WeakKeyDictionary()

    def observe(self, observer: CallObserver) -> None:
        """Tell `observer` of every attempt from now on (metrics count Apple calls this way, so
        the gateway knows nothing of how they are counted)."""
        self._observers.append(observer)

    def _attempted(self, service: str, status: int | None) -> None:
        for observer in self._observers:
            observer(service, status)

    # -- TLS ------------------------------------------------------------------------------------

    def ssl_context(self, identity: ClientIdentity | None = None, *, http2: bool = False) -> ssl.SSLContext:
        """Trust Apple (or the configured CA bundle) and present `identity` if given."""
        ctx = (
            ssl.create_default_context(cafile=self._ca_file)
            if self._ca_file
            else ssl.create_default_context()
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if http2:
            ctx.set_alpn_protocols(["h2"])
        if identity is not None:
            _load_identity(ctx, *identity)
        return ctx

    def _client(self, call: Call, identity: ClientIdentity | None, http2: bool) -> httpx.AsyncClient:
        key_id = identity[0].fingerprint(hashes.SHA256()).hex() if identity else ""
        cache_key = (call.service, call.connection, key_id, http2)
        client = self._clients.get(cache_key)
        if client is None:
            import httpx

            client = httpx.AsyncClient(
                verify=self.ssl_context(identity, http2=http2),
                http2=http2,
                timeout=self._timeout,
                limits=httpx.Limits(max_keepalive_connections=20, max_connections=100),
                headers={"User-Agent": "Russet-MDM"},
            )
            self._clients[cache_key] = client
        return client

    # -- checks and records ---------------------------------------------------------------------

    def check(self, call: Call) -> None:
        """Fail closed: a disconnected connection or an undeclared field stops the call here."""
        self.connections.require_active(call.service, call.connection)
        for datum in call.sent:
            spec(call.service, "sent", datum.field)

    def wire_check(self, call: Call, request: httpx.Request) -> Call:
        """`call` as the request actually carries it: the fields are read off `request` (query,
        data-carrying headers, body) against the endpoint's catalogue entry, and each must be one
        the caller declared (whose subject it lends); a declared field the request does not
        carry is refused too. `Refused` before anything is sent."""
        method, _, path = call.endpoint.partition(" ")
        if request.method != method or not request.url.path.endswith("/" + path.lstrip("/")):
            raise Refused(f"{call.service}: {request.method} {request.url.path} is not {call.endpoint}")
        derived = derive_sent(
            call.service,
            call.endpoint,
            query=list(request.url.params.multi_items()),
            headers=request.headers,
            content=request.content,
        )
        declared = {(d.field, norm(d.value)): d.subject for d in call.sent}
        carried = {(name, norm(value)) for name, value in derived}
        smuggled = sorted({name for name, _ in carried - declared.keys()})
        if smuggled:
            raise Refused(
                f"{call.service} {call.endpoint}: the request carries {', '.join(map(repr, smuggled))} "
                "with a value the caller did not declare; refusing to send it"
            )
        missing = sorted({name for name, _ in declared.keys() - carried})
        if missing:
            raise Refused(
                f"{call.service} {call.endpoint}: {', '.join(map(repr, missing))} declared but not in "
                "the request; refusing to record what was not sent"
            )
        return replace(call, sent=[Datum(n, v, declared[(n, norm(v))]) for n, v in derived])

    def record(
        self, call: Call, status: int | None, request_id: str | None, received: Sequence[Datum] = ()
    ) -> None:
        """Ledger rows for one attempt of `call` (what was sent, and what came back).

        An answer can carry thousands of data (a page of devices: a dozen fields each, all about
        the device's serial, many with values shared by every device of a model), so catalogue
        lookups and fingerprints of text are made once per distinct field and text here.
        """
        fp = self.ledger.fingerprint
        seen: dict[str, str | None] = {}

        def fingerprint(value: str | bytes | int | None) -> str | None:
            if type(value) is not str:  # only text is remembered: True == 1, but "True" != "1"
                return fp(value)
            found = seen.get(value, _UNSEEN)
            if found is _UNSEEN:
                found = seen[value] = fp(value)
            return found

        cells: list[LedgerCells] = []
        append = cells.append
        service = call.service
        for direction, data in (("sent", call.sent), ("received", received)):
            about: dict[str, str] = {}
            for datum in data:
                name = datum.field
                subject_type = about.get(name)
                if subject_type is None:
                    subject_type = about[name] = spec(service, direction, name).subject
                append(
                    (
                        direction,
                        name,
                        subject_type,
                        fingerprint(datum.subject),
                        fingerprint(datum.value),
                        status,
                        request_id,
                    )
                )
        self.ledger.add_group(_head(call, datetime.now(UTC)), cells)

    def record_many(self, entries: Iterable[tuple[Call, int | None, str | None, Sequence[Datum]]]) -> None:
        """`record` for many attempts at once (one timestamp, one buffer append per call shape)."""
        now = datetime.now(UTC)
        fp = self.ledger.fingerprint
        subject_types: dict[tuple[str, str, str], str] = {}
        groups: dict[tuple[str, str, str, str], list[LedgerCells]] = {}
        for call, status, request_id, received in entries:
            shape = (call.service, call.connection, call.endpoint, call.purpose)
            cells = groups.get(shape)
            if cells is None:
                cells = groups[shape] = []
            append = cells.append
            for direction, data in (("sent", call.sent), ("received", received)):
                for datum in data:
                    key = (call.service, direction, datum.field)
                    subject_type = subject_types.get(key)
                    if subject_type is None:
                        subject_type = subject_types[key] = spec(*key).subject
                    append(
                        (
                            direction,
                            datum.field,
                            subject_type,
                            fp(datum.subject),
                            fp(datum.value),
                            status,
                            request_id,
                        )
                    )
        for (service, connection, endpoint, purpose), cells in groups.items():
            self.ledger.add_group((now, service, connection, endpoint, purpose), cells)

    def record_alike(
        self,
        call: Call,
        fields: Sequence[str],
        attempts: Iterable[Attempt],
    ) -> None:
        """`record` for many attempts of one call that differ only in the values of `fields`, in
        whom those are about, and in their answers: the push path, kept columnar.

        `call.sent` holds the data common to every attempt (fingerprinted once). Each attempt is
        (subject, values of `fields` in order, status, request id, received (field, value) pairs
        about the same subject). Rows come out as `record` would write them, one per field per
        attempt: the per-attempt fields, then the common ones, then what came back.
        """
        service = call.service
        fp, remembered = self.ledger.fingerprint, self.ledger.fingerprint.cached
        sent_types = [spec(service, "sent", name).subject for name in fields]
        common = [
            (d.field, spec(service, "sent", d.field).subject, remembered(d.subject), remembered(d.value))
            for d in call.sent
        ]
        received_types: dict[str, str] = {}
        cells: list[LedgerCells] = []
        append = cells.append
        per_attempt = list(zip(fields, sent_types, strict=True))
        observers = self._observers
        for subject, values, status, request_id, received in attempts:
            for observer in observers:
                observer(service, status)
            subject_fp = remembered(subject)
            for (name, subject_type), value in zip(per_attempt, values, strict=True):
                append(("sent", name, subject_type, subject_fp, remembered(value), status, request_id))
            for name, subject_type, common_subject, value_fp in common:
                append(("sent", name, subject_type, common_subject, value_fp, status, request_id))
            for name, value in received:
                about = received_types.get(name)
                if about is None:
                    about = received_types[name] = spec(service, "received", name).subject
                append(("received", name, about, subject_fp, fp(value), status, request_id))
        self.ledger.add_group(_head(call, datetime.now(UTC)), cells)

    def http2_client(self, call: Call, url: str, identity: ClientIdentity, **options: Any) -> H2Client:
        """The lean HTTP/2 client for `call`'s connection to `url` presenting `identity` (kept
        and reused; a new identity replaces the old client). Checked like every call."""
        self.check(call)
        key = (call.service, call.connection, url)
        fingerprint = identity[0].fingerprint(hashes.SHA256()).hex()
        held = self._h2.get(key)
        if held is not None and held[0] == fingerprint:
            return held[1]
        if held is not None:
            held[1].close()  # connections presenting the replaced certificate end now
        parsed = urlsplit(url)  # not httpx: pushing needs only the h2 client
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f"{url!r}: an https:// URL is needed")
        context = self.ssl_context(identity, http2=True)
        client = H2Client(parsed.hostname, parsed.port or 443, context, **options)
        self._h2[key] = (fingerprint, client)
        return client

    def push_template(
        self, call: Call, client: H2Client, headers: Sequence[tuple[str, str]], body_shape: bytes
    ) -> HeaderTemplate:
        """The header block of a push shape, checked once for every push sent with it.

        Pushes are too many to parse each one: a shape is its headers (sent as they are) and its
        body's keys (`body_shape`, the body with empty values: the pusher fills in only PushMagic),
        read off against the endpoint like any request; the path's token and the magic are the
        per-push values the ledger records. `Refused` if the shape carries anything undeclared."""
        sent = {k.lower(): v for k, v in headers if k.lower() not in APNS_PROTOCOL_HEADERS}
        sent["content-type"] = dict(headers).get("content-type", "")
        derived = derive_sent(call.service, call.endpoint, query=[], headers=sent, content=body_shape)
        declared = {(d.field, norm(d.value)) for d in call.sent}
        for name, value in derived:
            if name != "PushMagic" and (name, norm(value)) not in declared:
                raise Refused(f"{call.service} {call.endpoint}: {name!r} is not what the push declares")
        return client.template(headers)

    def _answered(self, call: Call, response: httpx.Response, request_id: str | None) -> set[str]:
        """The declared fields an answer carries, read once per answer; what Apple sent that the
        endpoint does not declare is recorded here as `?path` (about the server, no value): an
        answer already received is not refused, Apple adds fields, and the ledger says so."""
        fields = self._answers.get(response)
        if fields is None:
            body = response.content if "json" in response.headers.get("content-type", "") else b""
            known, unknown = derive_received(call.service, call.endpoint, response.headers, body)
            fields = self._answers[response] = {name for name, _ in known}
            if unknown:
                cells: list[LedgerCells] = [
                    (
                        "received",
                        ("?" + (path or "(body)"))[:60],
                        "server",
                        None,
                        None,
                        response.status_code,
                        request_id,
                    )
                    for path in dict.fromkeys(unknown)
                ]
                self.ledger.add_group(_head(call, datetime.now(UTC)), cells)
        return fields

    def received(self, call: Call, response: httpx.Response, data: Sequence[Datum]) -> None:
        """Record what a response told Russet, once the caller has parsed it: every field the
        caller records must be one the answer carries (`NotOnTheWire` otherwise)."""
        request_id = _request_id(response.headers)
        carried = self._answered(call, response, request_id)
        for datum in data:
            if datum.field not in carried:
                raise NotOnTheWire(
                    f"{call.service} {call.endpoint}: {datum.field!r} is recorded as received but "
                    "the answer does not carry it"
                )
        self.record(call, response.status_code, request_id, data)

    # -- requests -------------------------------------------------------------------------------

    async def request(
        self,
        call: Call,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        identity: ClientIdentity | None = None,
        http2: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send one request for `call`, retrying what Apple asks to be retried; returns the last response."""
        import httpx

        self.check(call)
        client = self._client(call, identity, http2)
        built = client.build_request(method, url, json=json, content=content, params=params, headers=headers)
        call = self.wire_check(call, built)  # what is recorded is what the request carries
        attempts = self._max_attempts if retry else 1
        for attempt in range(1, attempts + 1):
            self.connections.require_active(call.service, call.connection)  # a disconnect stops retries too
            try:
                response = await client.send(built)  # the very request checked above
            except httpx.TransportError as exc:
                self.record(call, None, None)
                self._attempted(call.service, None)
                if attempt == attempts:
                    raise AppleUnavailable(
                        f"{call.service} {call.endpoint}: {type(exc).__name__}: {exc}"
                    ) from exc
                await asyncio.sleep(self._delay(attempt, None))
                continue
            request_id = _request_id(response.headers)
            self.record(call, response.status_code, request_id)
            self._answered(replace(call, sent=()), response, request_id)
            self._attempted(call.service, response.status_code)
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                await asyncio.sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        told = _retry_after_seconds(retry_after)
        if told is not None:
            return min(told, MAX_RETRY_AFTER)
        base = self._backoff * (2 ** (attempt - 1))
        return base + random.uniform(0, base)  # full jitter on top of the exponential step

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        for _, h2 in self._h2.values():
            await h2.aclose()
        self._h2.clear()


def _request_id(headers: httpx.Headers) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value[:100]
    return None


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _load_identity(ctx: ssl.SSLContext, cert: x509.Certificate, key: PrivateKeyTypes) -> None:
    """`ssl` only loads client identities from files: write them encrypted with a one-time
    password to a private temporary file, load, and remove it at once."""
    password = os.urandom(24).hex().encode()
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    fd, path = tempfile.mkstemp(prefix="russet-identity-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        ctx.load_cert_chain(path, password=password)
    finally:
        os.unlink(path)
