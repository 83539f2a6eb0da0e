"""The console's push certificate page (issue #19 item 5): the installed certificate (topic,
expiry shaded, fingerprint); uploading and renewing through `russet.push.import_certificate`
(the API's and CLI's service); a bad file, a key that matches no CSR or another topic refused on
the page with the API's status and nothing stored; only admins upload; the dashboard links here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from russet.apns.certificate import create_push_csr, push_identity
from russet.runtime import Russet
from simulators.apns import FakeAppleCA
from tests.test_apns_certificate import CERT_TOPIC, OTHER_TOPIC, pem
from tests.test_console import CHROMIUM, log_in, playwright_api, served  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def apple() -> FakeAppleCA:
    return FakeAppleCA("Apple Worldwide Developer Relations Certification Authority")


def csr_key(russet: Russet, tmp_path: Path, name: str = "push.csr") -> Any:
    """The pending push key's public half, as `russet apns csr` leaves it."""
    return create_push_csr(russet.storage, tmp_path / name).public_key()


def signed_in(client: TestClient, russet: Russet, role: str = "admin") -> str:
    return log_in(client, russet.storage.api_keys.create(f"{role}-person", role=role))


def upload(client: TestClient, csrf: str, data: bytes, **fields: str) -> Any:
    return client.post(
        "/console/push/certificate",
        data={"csrf": csrf, **fields},
        files={"certificate": ("push.pem", data, "application/x-pem-file")},
    )


def installed_topic(russet: Russet) -> str | None:
    found = push_identity(russet.storage)
    return None if found is None else found.topic


def test_upload_then_renew_shows_topic_expiry_and_fingerprint(
    client: TestClient, russet: Russet, apple: FakeAppleCA, tmp_path: Path
) -> None:
    csrf = signed_in(client, russet)
    assert "No push certificate installed" in client.get("/console/push").text
    first = apple.issue_push_certificate(csr_key(russet, tmp_path), CERT_TOPIC, days=20)
    shown = upload(client, csrf, pem(first))
    assert shown.status_code == 200 and "Push certificate installed for " + CERT_TOPIC in shown.text
    assert first.fingerprint(hashes.SHA256()).hex() in shown.text
    assert 'id="expiry" class="expiry-amber"' in shown.text  # 20 days left
    assert installed_topic(russet) == CERT_TOPIC

    current = push_identity(russet.storage)
    assert current is not None
    renewed = apple.issue_push_certificate(current.key.public_key(), CERT_TOPIC, days=365)
    again = upload(client, csrf, pem(renewed))
    assert again.status_code == 200 and renewed.fingerprint(hashes.SHA256()).hex() in again.text
    assert 'id="expiry" class=""' in again.text
    found = push_identity(russet.storage)
    assert found is not None and found.certificate == renewed


def test_refusals_are_shown_and_nothing_is_stored(
    client: TestClient, russet: Russet, apple: FakeAppleCA, tmp_path: Path
) -> None:
    csrf = signed_in(client, russet)
    cert = apple.issue_push_certificate(csr_key(russet, tmp_path), CERT_TOPIC)
    assert upload(client, csrf, pem(cert)).status_code == 200
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    moved = apple.issue_push_certificate(csr_key(russet, tmp_path, "b.csr"), OTHER_TOPIC)
    cases: list[tuple[bytes, int, str]] = [
        (b"not a certificate", 400, "not an X.509 certificate"),
        (pem(apple.issue_push_certificate(stranger.public_key(), CERT_TOPIC)), 400, "matches neither"),
        (pem(moved), 409, f"differs from the installed {CERT_TOPIC}"),
    ]
    for data, status, words in cases:
        refused = upload(client, csrf, data)
        assert refused.status_code == status, refused.text
        assert "flash-error" in refused.text and words in refused.text
        assert installed_topic(russet) == CERT_TOPIC
        found = push_identity(russet.storage)
        assert found is not None and found.certificate == cert
    assert "tick &#34;Install anyway&#34;" in upload(client, csrf, pem(moved)).text
    empty = client.post("/console/push/certificate", data={"csrf": csrf}, files={"x": ("x", b"")})
    assert empty.status_code == 400 and "choose the push certificate file" in empty.text
    stale = upload(client, "wrong", pem(moved), force="on")
    assert stale.status_code == 403 and installed_topic(russet) == CERT_TOPIC
    forced = upload(client, csrf, pem(moved), force="on")
    assert forced.status_code == 200 and "re-enroll" in forced.text
    assert installed_topic(russet) == OTHER_TOPIC


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_admins_upload(
    client: TestClient, russet: Russet, apple: FakeAppleCA, tmp_path: Path, role: str
) -> None:
    cert = apple.issue_push_certificate(csr_key(russet, tmp_path), CERT_TOPIC)
    csrf = signed_in(client, russet, role)
    page = client.get("/console/push")
    assert page.status_code == 200 and 'id="upload"' not in page.text
    refused = upload(client, csrf, pem(cert))
    assert refused.status_code == 403
    assert installed_topic(russet) is None


def test_dashboard_links_the_push_certificate_row(client: TestClient, russet: Russet) -> None:
    signed_in(client, russet, "auditor")
    html = client.get("/console/dashboard").text
    assert '<a href="/console/push">APNs push certificate</a>' in html


def test_browser_uploads_a_push_certificate(
    playwright_api: Any,  # noqa: F811
    served: str,  # noqa: F811
    russet: Russet,
    apple: FakeAppleCA,
    tmp_path: Path,
) -> None:
    """A real browser: from the dashboard's expiry row to the page, upload Apple's certificate."""
    cert: x509.Certificate = apple.issue_push_certificate(csr_key(russet, tmp_path), CERT_TOPIC)
    (tmp_path / "push.pem").write_bytes(pem(cert))
    key = russet.storage.api_keys.create("alex")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{served}/console/dashboard")
            page.fill("input[name=api_key]", key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{served}/console/dashboard")
            page.click("text=APNs push certificate")
            page.wait_for_url(f"{served}/console/push")
            page.set_input_files("#upload input[name=certificate]", str(tmp_path / "push.pem"))
            page.click("#upload button[type=submit]")
            page.wait_for_selector("text=Push certificate installed")
            assert page.inner_text("#topic") == CERT_TOPIC
            assert cert.fingerprint(hashes.SHA256()).hex() in page.inner_text("#fingerprint")
        finally:
            browser.close()
    assert installed_topic(russet) == CERT_TOPIC
    assert datetime.now(UTC) + timedelta(days=300) < cert.not_valid_after_utc
