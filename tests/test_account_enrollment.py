"""Account-driven enrollment (issue #17 item 2): discovery at the well-known path, the 401 with
Apple's Bearer challenge, sign-in at the local OpenID Connect provider (`simulators/oidc.py`), the
one-use bearer token, the User Enrollment profile naming the person's Managed Apple Account, the
device enrolling as a User Enrollment and being refused a device-wide command; and the refusals:
an unknown domain, a replayed, foreign or other-mode token, a person outside the domains."""

from __future__ import annotations

import json
import plistlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from russet.app import create_app
from russet.config import Settings
from russet.enrollment.tables import enrollment_account_tokens, enrollment_requests
from russet.pki import verify_attached
from russet.runtime import Russet
from russet.schemas import profile_problems
from russet.storage.db import utcnow
from simulators.device import Enrollment, SimDevice
from simulators.oidc import OidcProvider
from tests.conftest import PUBLIC_URL, TOPIC

CALLBACK = f"{PUBLIC_URL}/mdm/account/callback"
RESULTS = "apple-remotemanagement-user-login://authentication-results"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    idp = OidcProvider(
        redirect_uris=(CALLBACK,), person={"sub": "u-7", "email": "alice@example.com", "name": "Alice"}
    ).start()
    yield idp
    idp.stop()


@pytest.fixture
def server(settings: Settings, provider: OidcProvider) -> Iterator[Russet]:
    env = {
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": PUBLIC_URL,
        "RUSSET_PUSH_TOPIC": TOPIC,
        "RUSSET_OIDC_DISCOVERY_URL": provider.discovery_url,
        "RUSSET_OIDC_CLIENT_ID": provider.client_id,
        "RUSSET_OIDC_CLIENT_SECRET": provider.client_secret,
        "RUSSET_ACCESS_LOG": "off",
    }
    russet = Russet.open(Settings.from_env(env))
    yield russet
    russet.close()


@pytest.fixture
def device_client(server: Russet) -> Iterator[TestClient]:
    with TestClient(create_app(server), base_url=PUBLIC_URL) as c:
        yield c


def discover(client: TestClient, identifier: str, family: str = "iPhone") -> Any:
    return client.get(
        "/.well-known/com.apple.remotemanagement",
        params={"user-identifier": identifier, "model-family": family},
    )


def sign_in(client: TestClient, challenge: str) -> str:
    """What the device's web view does: the challenge's URL, the provider, back; the access token."""
    assert challenge.startswith('Bearer method="apple-as-web", url="')
    url = challenge.split('url="', 1)[1].rstrip('"')
    start = client.get(url.removeprefix(PUBLIC_URL), follow_redirects=False)
    assert start.status_code == 303, start.text
    back = httpx.get(start.headers["location"], follow_redirects=False)  # the person signs in there
    assert back.status_code == 302, back.text
    done = client.get(back.headers["location"].removeprefix(PUBLIC_URL), follow_redirects=False)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith(RESULTS + "?")
    return parse_qs(urlsplit(location).query)["access-token"][0]


def counts(russet: Russet) -> tuple[int, int]:
    with russet.storage.engine.connect() as conn:
        requests = conn.execute(select(func.count()).select_from(enrollment_requests)).scalar_one()
        tokens = conn.execute(select(func.count()).select_from(enrollment_account_tokens)).scalar_one()
    return requests, tokens


def test_discovery_challenge_sign_in_and_a_user_enrollment(server: Russet, device_client: TestClient) -> None:
    server.accounts.add_domain("Example.com", "user")

    found = discover(device_client, "alice@example.com")
    assert found.status_code == 200, found.text
    assert found.json() == {"Servers": [{"Version": "mdm-byod", "BaseURL": f"{PUBLIC_URL}/mdm/account/user"}]}
    base = found.json()["Servers"][0]["BaseURL"].removeprefix(PUBLIC_URL)

    # The first enrollment request has no credentials: Apple's protocol wants 401 with the challenge.
    first = device_client.post(
        base, content=b"signed device description", headers={"Content-Type": "application/pkcs7-signature"}
    )
    assert first.status_code == 401
    assert first.headers["www-authenticate"] == (
        f'Bearer method="apple-as-web", url="{PUBLIC_URL}/mdm/account/sign-in?mode=user"'
    )
    assert counts(server) == (0, 0)

    token = sign_in(device_client, first.headers["www-authenticate"])
    assert counts(server) == (0, 1)
    answer = device_client.post(
        base, content=b"signed device description", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-apple-aspen-config"
    profile = plistlib.loads(verify_attached(answer.content).content)
    mdm = next(p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.mdm")
    assert mdm["AssignedManagedAppleID"] == "alice@example.com"
    assert mdm["EnrollmentMode"] == "BYOD"
    assert profile_problems(profile) == []  # every key as Apple's schema for com.apple.mdm says
    [row] = server.enrollment.recent_requests()
    assert (row["method"], row["person_id"], row["person_email"]) == ("account", "u-7", "alice@example.com")

    # The same token again: the challenge again, no profile, nothing stored.
    again = device_client.post(base, content=b"x", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401
    assert "already used" in again.text
    assert again.headers["www-authenticate"].startswith('Bearer method="apple-as-web"')
    assert counts(server) == (1, 1)

    # The device installs the profile (SCEP identity over Russet's responder) and checks in as a
    # User Enrollment: an EnrollmentID, no UDID, no serial number.
    enrollment = Enrollment.from_profile(answer.content, device_client)  # type: ignore[arg-type]
    device = SimDevice(enrollment, id_key="EnrollmentID", path_only=True)
    for msg in (
        {
            "MessageType": "Authenticate",
            "Topic": TOPIC,
            "EnrollmentID": device.udid,
            "ProductName": "iPhone15,2",
            "OSVersion": "18.1",
        },
        device.token_update_message(),
    ):
        msg.pop("UnlockToken", None)
        assert device.check_in(device_client, msg).status_code == 200
    headers = {"Authorization": f"Bearer {server.storage.api_keys.create('tests')}"}
    shown = device_client.get(f"/api/v1/devices/{device.udid}", headers=headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["enrollment_type"] == "user_enrollment"

    # A device-wide command is refused with the reason, before anything is queued.
    refused = device_client.post(
        "/api/v1/commands",
        json={"devices": [device.udid], "command": {"RequestType": "EraseDevice"}},
        headers=headers,
    )
    assert refused.status_code == 403, refused.text
    assert "EraseDevice is not available with User Enrollment" in refused.text
    # No question that identifies the hardware; what a User Enrollment allows is queued.
    asked = {"RequestType": "DeviceInformation", "Queries": ["UDID", "SerialNumber", "OSVersion"]}
    refused = device_client.post(
        "/api/v1/commands", json={"devices": [device.udid], "command": asked}, headers=headers
    )
    assert refused.status_code == 403, refused.text
    assert "Queries UDID, SerialNumber cannot be asked with User Enrollment" in refused.text
    asked = {"RequestType": "DeviceInformation", "Queries": ["OSVersion", "ProductName"]}
    queued = device_client.post(
        "/api/v1/commands", json={"devices": [device.udid], "command": asked}, headers=headers
    )
    assert queued.status_code == 201, queued.text


def test_unknown_domains_and_bad_identifiers_are_refused(server: Russet, device_client: TestClient) -> None:
    server.accounts.add_domain("example.com", "user")
    unknown = discover(device_client, "bob@other.example")
    assert unknown.status_code == 404
    assert "no account-driven enrollment is configured for other.example" in unknown.text
    for identifier in ("no-at-sign", "@example.com", "bob@not a domain", "x" * 400 + "@example.com"):
        assert discover(device_client, identifier).status_code == 400, identifier
    assert discover(device_client, "bob@example.com", "Toaster").status_code == 400
    assert device_client.get("/.well-known/com.apple.remotemanagement").status_code == 400
    assert counts(server) == (0, 0)


def test_foreign_and_other_mode_tokens_get_the_challenge_again(
    server: Russet, device_client: TestClient
) -> None:
    server.accounts.add_domain("example.com", "user")
    for header in ("Bearer adt_not-one-of-ours", "Bearer " + "x" * 300, "Basic dXNlcjpwYXNz"):
        answer = device_client.post("/mdm/account/user", content=b"x", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.headers["www-authenticate"].startswith('Bearer method="apple-as-web"')
    assert (
        "unknown here"
        in device_client.post(
            "/mdm/account/user", content=b"x", headers={"Authorization": "Bearer adt_not-one-of-ours"}
        ).text
    )
    # A token signed in for User Enrollment buys no Device Enrollment profile (and stays unspent).
    challenge = device_client.post("/mdm/account/user", content=b"x").headers["www-authenticate"]
    token = sign_in(device_client, challenge)
    other = device_client.post(
        "/mdm/account/device", content=b"x", headers={"Authorization": f"Bearer {token}"}
    )
    assert other.status_code == 401
    assert "issued for user enrollment, not device enrollment" in other.text
    assert counts(server) == (0, 1)
    assert (
        device_client.post(
            "/mdm/account/user", content=b"x", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )


def test_a_person_outside_the_configured_domains_gets_no_token(
    server: Russet, device_client: TestClient, provider: OidcProvider
) -> None:
    server.accounts.add_domain("example.com", "user")
    provider.person = {"sub": "u-9", "email": "eve@elsewhere.example"}
    challenge = device_client.post("/mdm/account/user", content=b"x").headers["www-authenticate"]
    url = challenge.split('url="', 1)[1].rstrip('"')
    start = device_client.get(url.removeprefix(PUBLIC_URL), follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    done = device_client.get(back.headers["location"].removeprefix(PUBLIC_URL), follow_redirects=False)
    assert done.status_code == 403
    assert "eve@elsewhere.example is not in a domain configured" in done.text
    assert counts(server) == (0, 0)


def test_a_callback_without_its_sign_in_is_refused(server: Russet, device_client: TestClient) -> None:
    device_client.cookies.clear()
    answer = device_client.get("/mdm/account/callback?code=abc&state=def", follow_redirects=False)
    assert answer.status_code == 400
    assert "not started here" in answer.text
    assert counts(server) == (0, 0)


def test_without_single_sign_on_account_enrollment_says_what_to_set(
    client: TestClient, russet: Russet
) -> None:
    russet.accounts.add_domain("example.com", "user")
    answer = client.post("/mdm/account/user", content=b"x")
    assert answer.status_code == 503
    assert "RUSSET_OIDC_DISCOVERY_URL" in answer.text


def test_domains_from_the_cli(run: Any) -> None:
    code, out = run("enrollment", "domain", "add", "Example.COM")
    assert code == 0, out
    assert "added example.com: User Enrollment" in out
    assert "/.well-known/com.apple.remotemanagement" in out
    code, out = run("enrollment", "domain", "add", "corp.example", "--mode", "device")
    assert code == 0, out
    code, out = run("enrollment", "domain", "list")
    assert "example.com" in out and "mdm-byod" in out and "corp.example" in out and "mdm-adde" in out
    for args, reason in (
        (("add", "example.com"), "already configured"),
        (("add", "not a domain"), "is not a domain name"),
        (("add", "bad-.example"), "is not a domain name"),
        (("remove", "nowhere.example"), "is not configured"),
    ):
        code, out = run("enrollment", "domain", *args)
        assert code != 0 and reason in out, (args, out)
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    code, out = run("enrollment", "domain", "remove", "example.com")
    assert code == 0, out
    code, out = run("enrollment", "domain", "list", "--json")
    assert [d["domain"] for d in json.loads(out)] == ["corp.example"]


def test_domains_over_the_api(client: TestClient, api_headers: dict[str, str]) -> None:
    added = client.post(
        "/api/v1/enrollment/domains", json={"domain": "example.com", "mode": "device"}, headers=api_headers
    )
    assert added.status_code == 201, added.text
    assert added.json()["version"] == "mdm-adde"
    found = client.get(
        "/.well-known/com.apple.remotemanagement", params={"user-identifier": "al@example.com"}
    )
    assert found.json()["Servers"] == [{"Version": "mdm-adde", "BaseURL": f"{PUBLIC_URL}/mdm/account/device"}]
    again = client.post("/api/v1/enrollment/domains", json={"domain": "example.com"}, headers=api_headers)
    assert again.status_code == 409 and "already configured" in again.text
    bad = client.post("/api/v1/enrollment/domains", json={"domain": "no spaces"}, headers=api_headers)
    assert bad.status_code == 400 and "not a domain name" in bad.text
    assert client.post(
        "/api/v1/enrollment/domains", json={"domain": "x.example", "mode": "other"}, headers=api_headers
    ).status_code in (400, 422)
    assert [d["domain"] for d in client.get("/api/v1/enrollment/domains", headers=api_headers).json()] == [
        "example.com"
    ]
    assert client.delete("/api/v1/enrollment/domains/example.com", headers=api_headers).status_code == 200
    assert client.delete("/api/v1/enrollment/domains/example.com", headers=api_headers).status_code == 404
    assert (
        client.get(
            "/.well-known/com.apple.remotemanagement", params={"user-identifier": "al@example.com"}
        ).status_code
        == 404
    )


def test_an_expired_token_and_an_oversized_request_are_refused(
    server: Russet, device_client: TestClient
) -> None:
    server.accounts.add_domain("example.com", "user")
    challenge = device_client.post("/mdm/account/user", content=b"x").headers["www-authenticate"]
    token = sign_in(device_client, challenge)
    big = device_client.post(
        "/mdm/account/user", content=b"x" * (65 * 1024), headers={"Authorization": f"Bearer {token}"}
    )
    assert big.status_code == 413
    with server.storage.engine.begin() as conn:
        conn.execute(update(enrollment_account_tokens).values(expires_at=utcnow() - timedelta(minutes=1)))
    late = device_client.post("/mdm/account/user", content=b"x", headers={"Authorization": f"Bearer {token}"})
    assert late.status_code == 401 and "expired" in late.text
    assert counts(server) == (0, 1)
    with server.storage.engine.begin() as conn:  # a day later, housekeeping forgets the person
        conn.execute(update(enrollment_account_tokens).values(expires_at=utcnow() - timedelta(days=2)))
    assert server.housekeeping()["account_tokens"] == 1
    assert counts(server) == (0, 0)


def test_a_device_enrollment_for_the_organisations_domain(server: Russet, device_client: TestClient) -> None:
    server.accounts.add_domain("example.com", "device")
    [found] = discover(device_client, "alice@example.com", "Mac").json()["Servers"]
    assert found == {"Version": "mdm-adde", "BaseURL": f"{PUBLIC_URL}/mdm/account/device"}
    challenge = device_client.post("/mdm/account/device", content=b"x").headers["www-authenticate"]
    assert challenge.endswith('/mdm/account/sign-in?mode=device"')
    token = sign_in(device_client, challenge)
    answer = device_client.post(
        "/mdm/account/device", content=b"x", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    profile = plistlib.loads(verify_attached(answer.content).content)
    mdm = next(p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.mdm")
    assert (mdm["EnrollmentMode"], mdm["AssignedManagedAppleID"]) == ("ADDE", "alice@example.com")


def test_signing_in_for_the_other_mode_or_being_denied_buys_nothing(
    server: Russet, device_client: TestClient, provider: OidcProvider
) -> None:
    server.accounts.add_domain("example.com", "device")  # the organisation's devices only
    start = device_client.get("/mdm/account/sign-in?mode=user", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    done = device_client.get(back.headers["location"].removeprefix(PUBLIC_URL), follow_redirects=False)
    assert done.status_code == 403
    assert "example.com is configured for Device Enrollment" in done.text
    provider.deny = True
    start = device_client.get("/mdm/account/sign-in?mode=device", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    done = device_client.get(back.headers["location"].removeprefix(PUBLIC_URL), follow_redirects=False)
    assert done.status_code == 403 and "access_denied" in done.text
    assert device_client.get("/mdm/account/sign-in?mode=other", follow_redirects=False).status_code == 400
    assert counts(server) == (0, 0)
