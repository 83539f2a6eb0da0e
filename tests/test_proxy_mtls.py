"""Proxy mTLS: behind a TLS-terminating proxy the device identity arrives in a header (RFC 9440
or nginx's escaped PEM); with the header configured nothing else is accepted, and a missing,
unreadable, foreign or borrowed certificate is refused without storing anything."""

from __future__ import annotations

import base64
import dataclasses
import plistlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.app import create_app
from russet.config import ConfigError, Settings
from russet.enrollment.profile import ProfileRequest, build_profile, signed_profile
from russet.mdm.proxy_cert import UnreadableCertificate, parse_client_cert
from russet.mdm.tables import enrollments
from russet.pki import create_ca, issue_device_identity, verify_attached
from russet.runtime import Russet
from simulators.device import CHECKIN_TYPE, Enrollment, SimDevice
from simulators.tls import make_server_tls
from simulators.tls_proxy import TlsTerminatingProxy, nginx_value, rfc9440_value
from tests.cli_support import cli_invoker
from tests.conftest import PUBLIC_URL, TOPIC

NGINX_HEADER = "X-SSL-Client-Cert"


def queue_profile_list(russet: Russet, target: str) -> str:
    [queued] = russet.devices.send_command([target], {"RequestType": "ProfileList"}, created_by="test")[
        "commands"
    ]
    return str(queued["command_uuid"])


def stored_enrollments(russet: Russet) -> int:
    with russet.storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(enrollments)).scalar_one()


# -- reading the header --------------------------------------------------------------------------


def test_both_encodings_read_back_the_certificate() -> None:
    ca, ca_key = create_ca("Test CA", "Test")
    cert, _ = issue_device_identity(ca, ca_key, "device")
    for value in (rfc9440_value(cert), nginx_value(cert)):
        assert parse_client_cert(value) == cert  # auto-detected
    assert parse_client_cert(rfc9440_value(cert), "rfc9440") == cert
    assert parse_client_cert(nginx_value(cert), "nginx") == cert
    # nginx leaves some characters unescaped; "+" must stay a plus (not a space).
    pem_with_plain_chars = nginx_value(cert).replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    assert parse_client_cert(pem_with_plain_chars, "nginx") == cert


@pytest.mark.parametrize(
    ("value", "fmt", "reason"),
    [
        ("MIIBxyz", "auto", "neither RFC 9440"),
        (":not base64!:", "rfc9440", "not base64"),
        (":" + base64.b64encode(b"not a certificate").decode() + ":", "rfc9440", "not a DER certificate"),
        ("-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----", "nginx", "does not hold"),
        ("%2D%2D%2D%2D%2DBEGIN%20PRIVATE%20KEY", "nginx", "not one URL-escaped PEM certificate"),
        (":" + "A" * 20000 + ":", "auto", "over"),
        ("   ", "auto", "empty"),
    ],
)
def test_unreadable_values_are_named(value: str, fmt: str, reason: str) -> None:
    with pytest.raises(UnreadableCertificate, match=reason):
        parse_client_cert(value, fmt)  # type: ignore[arg-type]


def test_settings_check_the_header_and_format() -> None:
    base = {"RUSSET_DATA_DIR": "/tmp/x"}
    assert Settings.from_env(base).client_cert_header is None
    on = Settings.from_env({**base, "RUSSET_CLIENT_CERT_HEADER": "Client-Cert"})
    assert on.client_cert_header == "Client-Cert" and on.client_cert_format == "auto"
    with pytest.raises(ConfigError, match="RUSSET_CLIENT_CERT_FORMAT"):
        Settings.from_env({**base, "RUSSET_CLIENT_CERT_FORMAT": "pem"})
    with pytest.raises(ConfigError, match="RUSSET_CLIENT_CERT_HEADER"):
        Settings.from_env({**base, "RUSSET_CLIENT_CERT_HEADER": "X Client: Cert"})


# -- Russet in proxy mode, in process ------------------------------------------------------------


@pytest.fixture(params=[("Client-Cert", "rfc9440"), (NGINX_HEADER, "nginx")], ids=["rfc9440", "nginx"])
def proxied(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[Russet, str, str]]:
    header, fmt = request.param
    server = Russet.open(dataclasses.replace(settings, client_cert_header=header, client_cert_format="auto"))
    yield server, header, fmt
    server.close()


def proxy_profile(russet: Russet) -> bytes:
    request = ProfileRequest(PUBLIC_URL, TOPIC, identity="pkcs12", sign_message=False)
    return signed_profile(
        build_profile(request, russet.authority, russet.storage.certificates), russet.authority
    )


def test_device_behind_the_proxy_enrolls_and_runs_commands(proxied: tuple[Russet, str, str]) -> None:
    russet, header, fmt = proxied
    device = SimDevice(
        Enrollment.from_profile(proxy_profile(russet)), path_only=True, proxy_header=header, proxy_format=fmt
    )
    assert device.enrollment.sign_message is False  # the profile told it not to sign
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        device.enroll(client)
        uuid = queue_profile_list(russet, device.udid)
        body = plistlib.dumps(device.report_message("Idle"))
        headers = device.signed_headers(body, CHECKIN_TYPE)
        assert "Mdm-Signature" not in headers and header in headers
        command = device.command_of(device.connect(client, device.report_message("Idle")))
        assert command is not None and command["CommandUUID"] == uuid
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None and row["enabled"]


def test_missing_forged_or_foreign_certificates_are_refused(
    proxied: tuple[Russet, str, str], tmp_path: Path
) -> None:
    russet, header, fmt = proxied
    victim = SimDevice(
        Enrollment.from_profile(proxy_profile(russet)), path_only=True, proxy_header=header, proxy_format=fmt
    )
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        victim.enroll(client)
        before = stored_enrollments(russet)
        auth = plistlib.dumps({**victim.authenticate_message(), "UDID": "NEW-DEVICE"})

        def check_in(headers: dict[str, str]) -> httpx.Response:
            return client.put("/mdm/checkin", content=auth, headers={"Content-Type": CHECKIN_TYPE, **headers})

        # No header at all: refused, and 403 rather than 401 (401 would unenroll the device).
        response = check_in({})
        assert response.status_code == 403 and header in response.text
        # A valid Mdm-Signature is not accepted instead of the header.
        signer = SimDevice(Enrollment.from_profile(proxy_profile(russet)), path_only=True)
        signer.enrollment.sign_message = True
        assert check_in(signer.signed_headers(auth, CHECKIN_TYPE)).status_code == 403
        # Garbage in the header.
        response = check_in({header: ":bm90IGEgY2VydGlmaWNhdGU=:"})
        assert response.status_code == 403 and "does not hold a certificate" in response.text
        # A well-formed certificate from someone else's CA.
        other_ca, other_key = create_ca("Someone Else's CA", "Mallory")
        foreign, _ = issue_device_identity(other_ca, other_key, "impostor")
        response = check_in({header: rfc9440_value(foreign) if fmt == "rfc9440" else nginx_value(foreign)})
        assert response.status_code == 403 and "not issued by Russet's CA" in response.text
        # The victim's (public) certificate is bound to the victim: it cannot enroll another UDID.
        borrowed = {header: rfc9440_value(victim.enrollment.certificate)}
        assert check_in(borrowed).status_code == 403
        # A header repeated (a proxy that appends instead of overwriting) is refused.
        response = client.put(
            "/mdm/checkin",
            content=plistlib.dumps(victim.report_message("Idle")),
            headers=[
                ("Content-Type", CHECKIN_TYPE),
                (header, rfc9440_value(victim.enrollment.certificate)),
                (header, rfc9440_value(foreign)),
            ],
        )
        assert response.status_code == 403 and "more than once" in response.text
        assert stored_enrollments(russet) == before
        # The victim still works.
        assert victim.command_of(victim.connect(client, victim.report_message("Idle"))) is None


def test_another_enrolled_devices_certificate_cannot_speak_for_it(proxied: tuple[Russet, str, str]) -> None:
    russet, header, fmt = proxied
    a, b = (
        SimDevice(
            Enrollment.from_profile(proxy_profile(russet)),
            path_only=True,
            proxy_header=header,
            proxy_format=fmt,
        )
        for _ in range(2)
    )
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        a.enroll(client)
        b.enroll(client)
        spoof = SimDevice(b.enrollment, udid=a.udid, path_only=True, proxy_header=header, proxy_format=fmt)
        assert spoof.connect(client, spoof.report_message("Idle")).status_code == 403
        checkout = {"MessageType": "CheckOut", "Topic": TOPIC, "UDID": a.udid}
        assert spoof.check_in(client, checkout).status_code == 403
    assert russet.storage.enrollments.get(a.udid)["enabled"]  # type: ignore[index]


def test_cli_profile_has_no_signmessage_in_proxy_mode(
    settings: Settings, migrated: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    invoke = cli_invoker(settings, monkeypatch)

    def sign_message() -> bool:
        out = tmp_path / "enroll.mobileconfig"
        result = invoke("enrollment", "profile", "--out", str(out))
        assert result.exit_code == 0, result.output
        profile = plistlib.loads(verify_attached(out.read_bytes()).content)
        [mdm] = [p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.mdm"]
        return bool(mdm["SignMessage"])

    assert sign_message() is True
    monkeypatch.setenv("RUSSET_CLIENT_CERT_HEADER", NGINX_HEADER)
    assert sign_message() is False


# -- the whole path: TLS client certificate -> proxy -> header -> Russet ---------------------------


@pytest.fixture
def behind_proxy(settings: Settings, tmp_path: Path) -> Iterator[tuple[Russet, TlsTerminatingProxy, Path]]:
    """Russet over real HTTP with the proxy header configured, and a TLS-terminating proxy in front
    that trusts Russet's CA and, like `ssl_verify_client optional_no_ca`, a foreign one too."""
    import uvicorn

    russet = Russet.open(dataclasses.replace(settings, client_cert_header=NGINX_HEADER))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(russet), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    from cryptography.hazmat.primitives import serialization

    russet_ca = tmp_path / "russet-ca.pem"
    russet_ca.write_bytes(russet.authority.ca_certificate.public_bytes(serialization.Encoding.PEM))
    other_ca, other_key = create_ca("Someone Else's CA", "Mallory")
    other_ca_file = tmp_path / "other-ca.pem"
    other_ca_file.write_bytes(other_ca.public_bytes(serialization.Encoding.PEM))
    foreign, foreign_key = issue_device_identity(other_ca, other_key, "impostor")
    impostor = Enrollment(foreign, foreign_key, "", "", TOPIC)
    impostor.write_identity(tmp_path / "impostor")
    tls = make_server_tls(tmp_path / "proxy-tls")
    try:
        with TlsTerminatingProxy(
            tls, f"http://127.0.0.1:{port}", NGINX_HEADER, "nginx", [russet_ca, other_ca_file]
        ) as proxy:
            yield russet, proxy, tmp_path
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        russet.close()


def tls_client(ca_file: str, identity: tuple[str, str] | None = None) -> ssl.SSLContext:
    """A client TLS context trusting the proxy, presenting `identity` (cert, key files) if given."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if identity is not None:
        ctx.load_cert_chain(*identity)
    return ctx


def test_a_device_presenting_its_certificate_to_the_proxy_is_managed(
    behind_proxy: tuple[Russet, TlsTerminatingProxy, Path],
) -> None:
    russet, proxy, tmp_path = behind_proxy
    tls_ca = str(tmp_path / "proxy-tls" / "ca.pem")
    enrollment = Enrollment.from_profile(proxy_profile(russet))
    device = SimDevice(enrollment)
    device.enrollment.server_url = f"{proxy.url}/mdm/connect"
    device.enrollment.checkin_url = f"{proxy.url}/mdm/checkin"
    with httpx.Client(verify=tls_client(tls_ca, enrollment.write_identity(tmp_path / "device"))) as http:
        device.enroll(http)
        uuid = queue_profile_list(russet, device.udid)
        command = device.command_of(device.connect(http, device.report_message("Idle")))
        assert command is not None and command["CommandUUID"] == uuid
    assert all(NGINX_HEADER in h and "Mdm-Signature" not in h for h in proxy.forwarded)

    # Someone without the device's key sends the device's certificate in the header themselves:
    # the proxy overwrites it (here: drops it, no client certificate) and Russet refuses.
    forged = {"Content-Type": CHECKIN_TYPE, NGINX_HEADER: nginx_value(enrollment.certificate)}
    body = plistlib.dumps(device.report_message("Idle"))
    with httpx.Client(verify=tls_client(tls_ca)) as http:
        response = http.put(device.enrollment.server_url, content=body, headers=forged)
    assert response.status_code == 403 and "no device certificate" in response.text
    # A certificate the proxy lets through (optional_no_ca) but Russet's CA did not issue.
    impostor = (str(tmp_path / "impostor" / "identity.pem"), str(tmp_path / "impostor" / "identity.key"))
    with httpx.Client(verify=tls_client(tls_ca, impostor)) as http:
        response = http.put(device.enrollment.server_url, content=body, headers=forged)
    assert response.status_code == 403 and "not issued by Russet's CA" in response.text
    assert stored_enrollments(russet) == 1
