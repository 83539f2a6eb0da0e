"""The APNs simulator answers like APNs (protocol doc §d.3–§d.6), on both of its HTTP/2 engines."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from simulators.apns import ApnsSimulator, FakeAppleCA, _HpackDecoder, write_identity

TOPIC = "com.apple.mgmt.External.0f6e1d2c-3b4a-4958-8776-a5b4c3d2e1f0"
TOKEN = "5a1b" * 16  # 32 bytes, lowercase hex, like a TokenUpdate Token
MAGIC = "7C5A2B1E-0D9F-4E8C-B7A6-951F2E3D4C5B"
HEADERS = {"apns-topic": TOPIC, "apns-push-type": "mdm", "apns-priority": "10"}


@pytest.fixture(scope="module")
def apple() -> FakeAppleCA:
    return FakeAppleCA()


@pytest.fixture(scope="module")
def identity(apple: FakeAppleCA) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    return apple.new_push_identity(TOPIC)


@pytest.fixture(params=["lean", "h2"])
def sim(request: pytest.FixtureRequest, apple: FakeAppleCA) -> Iterator[ApnsSimulator]:
    with ApnsSimulator(ca_cert=apple.cert, engine=request.param) as simulator:
        yield simulator


@pytest.fixture
def client(
    sim: ApnsSimulator, identity: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> Iterator[httpx.Client]:
    with httpx.Client(http2=True, verify=sim.client_context(*identity), base_url=sim.url) as c:
        yield c


def push(
    client: httpx.Client,
    token: str = TOKEN,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    method: str = "POST",
    path: str | None = None,
) -> httpx.Response:
    content = json.dumps({"mdm": MAGIC}).encode() if body is None else body
    return client.request(
        method,
        path or f"/3/device/{token}",
        headers=HEADERS if headers is None else headers,
        content=content,
    )


def test_valid_push_is_accepted_and_recorded(client: httpx.Client, sim: ApnsSimulator) -> None:
    response = push(client)
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200 and response.content == b""
    apns_id = response.headers["apns-id"]
    assert len(apns_id) == 36 and apns_id.count("-") == 4
    [received] = sim.received
    assert received.method == "POST" and received.path == f"/3/device/{TOKEN}" and received.token == TOKEN
    assert received.headers["apns-topic"] == TOPIC and received.headers["apns-push-type"] == "mdm"
    assert json.loads(received.body) == {"mdm": MAGIC}
    assert (received.status, received.reason, received.apns_id) == (200, None, apns_id)
    assert received.certificate_topic == TOPIC
    assert sim.stats()["by_status"] == {200: 1}


def test_optional_headers_and_a_given_apns_id(client: httpx.Client) -> None:
    given = "123e4567-e89b-12d3-a456-426614174000"
    for priority in ("1", "5", "10"):
        extra = {"apns-priority": priority, "apns-expiration": "0", "apns-id": given}
        response = push(client, headers={**HEADERS, **extra})
        assert response.status_code == 200 and response.headers["apns-id"] == given
    minimal = {"apns-topic": TOPIC, "apns-push-type": "mdm"}
    assert push(client, headers=minimal).status_code == 200


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in HEADERS.items() if k != name}


CASES = [
    pytest.param({"method": "GET"}, 405, "MethodNotAllowed", id="get"),
    pytest.param({"path": "/3/devices/abcd"}, 404, "BadPath", id="path"),
    pytest.param({"path": "/3/device/"}, 400, "MissingDeviceToken", id="no-token"),
    pytest.param({"token": "zz" * 32}, 400, "BadDeviceToken", id="token-not-hex"),
    pytest.param({"token": "abc"}, 400, "BadDeviceToken", id="token-odd"),
    pytest.param({"headers": _without("apns-topic")}, 400, "MissingTopic", id="no-topic"),
    pytest.param(
        {"headers": {**HEADERS, "apns-topic": "com.apple.mgmt.External.other"}},
        400,
        "TopicDisallowed",
        id="other-topic",
    ),
    pytest.param({"headers": {**HEADERS, "apns-topic": "no spaces"}}, 400, "BadTopic", id="bad-topic"),
    pytest.param({"headers": _without("apns-push-type")}, 400, "InvalidPushType", id="no-push-type"),
    pytest.param(
        {"headers": {**HEADERS, "apns-push-type": "alert"}}, 400, "InvalidPushType", id="alert-push-type"
    ),
    pytest.param({"headers": {**HEADERS, "apns-priority": "7"}}, 400, "BadPriority", id="priority"),
    pytest.param(
        {"headers": {**HEADERS, "apns-expiration": "soon"}}, 400, "BadExpirationDate", id="expiration"
    ),
    pytest.param({"headers": {**HEADERS, "apns-id": "not-a-uuid"}}, 400, "BadMessageId", id="apns-id"),
    pytest.param(
        {"headers": {**HEADERS, "apns-collapse-id": "c" * 65}}, 400, "BadCollapseId", id="collapse-id"
    ),
    pytest.param(
        {"headers": [*HEADERS.items(), ("apns-priority", "5")]}, 400, "DuplicateHeaders", id="duplicate"
    ),
    pytest.param({"body": b""}, 400, "PayloadEmpty", id="empty"),
    pytest.param({"body": b'{"aps": {"alert": "hi"}}'}, 400, "BadMdmPayload", id="aps-body"),
    pytest.param({"body": b'{"mdm": "x", "extra": 1}'}, 400, "BadMdmPayload", id="extra-key"),
    pytest.param({"body": b'{"mdm": ""}'}, 400, "BadMdmPayload", id="empty-magic"),
    pytest.param({"body": b"mdm=x"}, 400, "BadMdmPayload", id="not-json"),
    pytest.param({"body": json.dumps({"mdm": "m" * 5000}).encode()}, 413, "PayloadTooLarge", id="too-large"),
]


@pytest.mark.parametrize(("request_args", "status", "reason"), CASES)
def test_each_check_answers_apples_error(
    client: httpx.Client, sim: ApnsSimulator, request_args: dict[str, object], status: int, reason: str
) -> None:
    response = push(client, **request_args)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.json() == {"reason": reason}
    assert response.headers["content-type"] == "application/json" and response.headers["apns-id"]
    assert sim.received[-1].reason == reason
    # The connection stays usable after an error.
    assert push(client).status_code == 200


def test_missing_topic_allowed_when_configured(
    apple: FakeAppleCA, identity: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    with ApnsSimulator(ca_cert=apple.cert, require_topic=False) as sim:
        with httpx.Client(http2=True, verify=sim.client_context(*identity), base_url=sim.url) as c:
            assert push(c, headers=_without("apns-topic")).status_code == 200


def test_injected_errors(client: httpx.Client, sim: ApnsSimulator) -> None:
    other = "0f" * 32
    before = int(datetime.now(UTC).timestamp() * 1000)
    sim.inject(TOKEN, 410)
    gone = push(client)
    assert gone.status_code == 410
    body = gone.json()
    assert body["reason"] == "Unregistered" and isinstance(body["timestamp"], int)
    assert body["timestamp"] >= before
    assert push(client).status_code == 200  # times=1: used up

    sim.inject(TOKEN, 429, times=2)
    assert [push(client).status_code for _ in range(3)] == [429, 429, 200]
    assert push(client, token=other).status_code == 200  # faults are per token

    sim.inject(TOKEN, 403, "BadCertificateEnvironment")
    assert push(client).json() == {"reason": "BadCertificateEnvironment"}

    sim.inject(None, 503, "Shutdown", times=None)  # every token, until cleared
    assert push(client, token=other).json() == {"reason": "Shutdown"}
    assert push(client).status_code == 503
    sim.clear_faults()
    assert push(client).status_code == 200

    sim.inject(TOKEN, 500)
    response = push(client)
    assert response.status_code == 500 and response.json() == {"reason": "InternalServerError"}

    # A malformed request still gets its own error, not the injected one.
    sim.inject(TOKEN, 410)
    assert push(client, body=b"").json() == {"reason": "PayloadEmpty"}
    with pytest.raises(ValueError):
        sim.inject(TOKEN, 418)


def test_token_bound_to_another_topic(client: httpx.Client, sim: ApnsSimulator) -> None:
    sim.bind(TOKEN, "com.apple.mgmt.External.old-topic")
    assert push(client).json() == {"reason": "DeviceTokenNotForTopic"}
    assert push(client, token="ab" * 32).status_code == 200


def test_certificate_without_mdm_topic_is_refused(apple: FakeAppleCA, sim: ApnsSimulator) -> None:
    cert, key = apple.new_push_identity(None)
    with httpx.Client(http2=True, verify=sim.client_context(cert, key), base_url=sim.url) as c:
        response = push(c)
    assert response.status_code == 403 and response.json() == {"reason": "BadCertificate"}


def test_handshake_fails_without_a_client_certificate(sim: ApnsSimulator) -> None:
    assert sim.server_ca_file is not None
    bare = ssl.create_default_context(cafile=str(sim.server_ca_file))
    with httpx.Client(http2=True, verify=bare, base_url=sim.url) as c, pytest.raises(httpx.TransportError):
        push(c)
    assert sim.received == [] and sim.stats()["connections"] == 0


def test_handshake_fails_with_a_certificate_from_another_ca(sim: ApnsSimulator) -> None:
    stranger = FakeAppleCA("Not Apple")
    cert, key = stranger.new_push_identity(TOPIC)
    with (
        httpx.Client(http2=True, verify=sim.client_context(cert, key), base_url=sim.url) as c,
        pytest.raises(httpx.TransportError),
    ):
        push(c)
    assert sim.received == [] and sim.stats()["connections"] == 0


def test_expired_client_certificate_fails_the_handshake(apple: FakeAppleCA, sim: ApnsSimulator) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    past = datetime.now(UTC) - timedelta(days=400)
    cert = apple.issue_push_certificate(key.public_key(), TOPIC, not_before=past, days=30)
    with (
        httpx.Client(http2=True, verify=sim.client_context(cert, key), base_url=sim.url) as c,
        pytest.raises(httpx.TransportError),
    ):
        push(c)


# -- HTTP/2 behaviour seen from a raw client ---------------------------------------------------


class RawClient:
    """A bare h2 client, to send many streams at once and to see SETTINGS and GOAWAY."""

    def __init__(self, sim: ApnsSimulator, identity: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
        ctx = sim.client_context(*identity)
        self.sock = ctx.wrap_socket(
            socket.create_connection((sim.host, sim.port), timeout=10), server_hostname=sim.host
        )
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.authority = f"{sim.host}:{sim.port}"

    def send(self, token: str) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", self.authority),
            (":path", f"/3/device/{token}"),
            *HEADERS.items(),
        ]
        self.conn.send_headers(stream_id, headers)
        self.conn.send_data(stream_id, json.dumps({"mdm": MAGIC}).encode(), end_stream=True)
        return stream_id

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def events(self) -> list[h2.events.Event]:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        events = self.conn.receive_data(data)
        self.flush()
        return events

    def close(self) -> None:
        self.sock.close()


def test_many_concurrent_streams_on_one_connection(
    sim: ApnsSimulator, identity: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    raw = RawClient(sim, identity)
    try:
        settings: dict[int, int] = {}
        while h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS not in settings:
            for event in raw.events():
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    settings.update({code: s.new_value for code, s in event.changed_settings.items()})
        assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 1000
        tokens = {raw.send(os.urandom(32).hex()): None for _ in range(300)}
        raw.flush()  # 300 requests in flight before any answer is read
        statuses: dict[int, str] = {}
        while len(statuses) < len(tokens):
            for event in raw.events():
                if isinstance(event, h2.events.ResponseReceived):
                    statuses[event.stream_id] = dict(event.headers)[b":status"].decode()
        assert set(statuses) == set(tokens) and set(statuses.values()) == {"200"}
    finally:
        raw.close()
    assert sim.stats()["connections"] == 1 and sim.count == 300
    assert sim.stats()["max_requests_per_read"] > 1


def test_goaway_carries_the_reason(
    sim: ApnsSimulator, identity: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    raw = RawClient(sim, identity)
    try:
        raw.send(TOKEN)
        raw.flush()
        answered = False
        while not answered:
            answered = any(isinstance(e, h2.events.StreamEnded) for e in raw.events())
        sim.goaway("Shutdown")
        terminated = None
        while terminated is None:
            terminated = next(
                (e for e in raw.events() if isinstance(e, h2.events.ConnectionTerminated)), None
            )
        assert json.loads(terminated.additional_data or b"") == {"reason": "Shutdown"}
        assert terminated.last_stream_id == 1
    finally:
        raw.close()


def test_counting_only_mode(apple: FakeAppleCA, identity: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    with ApnsSimulator(ca_cert=apple.cert, record=False) as sim:
        with httpx.Client(http2=True, verify=sim.client_context(*identity), base_url=sim.url) as c:
            for _ in range(5):
                assert push(c).status_code == 200
            assert push(c, token="zz").status_code == 400
        assert sim.received == [] and sim.count == 6
        assert sim.stats()["by_status"] == {200: 5, 400: 1}
        sim.reset()
        assert sim.count == 0


def test_hpack_decoder_agrees_with_the_hpack_library() -> None:
    """The lean engine's HPACK decoder, against hpack's encoder: Huffman, indexing, evictions."""
    rng = random.Random(7)
    encoder, decoder = hpack.Encoder(), _HpackDecoder()
    encoder.header_table_size = 256  # forces evictions and a table size update
    for round_ in range(300):
        headers: list[tuple[str, str | bytes]] = [
            (":method", "POST"),
            (":path", f"/3/device/{rng.randbytes(32).hex()}"),
        ]
        headers += [(f"x-{rng.randrange(20)}", bytes(rng.randrange(256) for _ in range(rng.randrange(40))))]
        headers += [("apns-topic", TOPIC), ("apns-id", f"{round_:036d}")]
        expected = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers]
        assert decoder.decode(encoder.encode(headers, huffman=round_ % 2 == 0)) == expected


def test_runs_as_its_own_process(
    tmp_path: Path, apple: FakeAppleCA, identity: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    """Benchmarks run it with `python -m simulators.apns` so it does not share the pusher's GIL."""
    (tmp_path / "apple.pem").write_bytes(apple.pem)
    cert_file, key_file = write_identity(tmp_path, *identity, "client")
    server_ca = tmp_path / "server-ca.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.apns", "--ca", str(tmp_path / "apple.pem"),
         "--server-ca-out", str(server_ca)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        ctx = ssl.create_default_context(cafile=str(server_ca))
        ctx.load_cert_chain(cert_file, key_file)
        with httpx.Client(http2=True, verify=ctx, base_url=url) as c:
            assert push(c).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    assert json.loads(out)["by_status"] == {"200": 1}
