"""Console sign-in as a person (issue #19): single sign-on over OpenID Connect against a local
provider (`simulators/oidc.py`: discovery, authorize, token, JWKS, RS256 ID tokens), and local
accounts with Argon2 passwords; browser tests of SSO sign-in and of an auditor who cannot send a
command."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.access.roles import Role
from russet.access.tables import console_users
from russet.app import create_app
from russet.config import Settings
from russet.runtime import Russet
from simulators.oidc import OidcProvider
from tests.conftest import PUBLIC_URL
from tests.test_console import CHROMIUM, csrf_of, seed

CALLBACK = f"{PUBLIC_URL}/console/sso/callback"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    idp = OidcProvider(redirect_uris=(CALLBACK,)).start()
    yield idp
    idp.stop()


def with_sso(settings: Settings, idp: OidcProvider, **extra: str) -> Settings:
    env = {
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": settings.public_url,
        "RUSSET_OIDC_DISCOVERY_URL": idp.discovery_url,
        "RUSSET_OIDC_CLIENT_ID": idp.client_id,
        "RUSSET_OIDC_CLIENT_SECRET": idp.client_secret,
        "RUSSET_ACCESS_LOG": "off",
        **extra,
    }
    return Settings.from_env(env)


@pytest.fixture
def sso_russet(settings: Settings, provider: OidcProvider) -> Iterator[Russet]:
    server = Russet.open(with_sso(settings, provider))
    yield server
    server.close()


@pytest.fixture
def sso_client(sso_russet: Russet) -> Iterator[TestClient]:
    with TestClient(create_app(sso_russet), base_url=PUBLIC_URL) as c:
        yield c


def sign_on(client: TestClient, next_page: str = "/console/devices") -> Any:
    """Through the flow as a browser would: Russet -> the provider -> back to Russet."""
    start = client.get(f"/console/sso?next={next_page}", follow_redirects=False)
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    back = httpx.get(authorize, follow_redirects=False)  # the provider signs the person in
    assert back.status_code == 302, back.text
    location = back.headers["location"]
    assert location.startswith(CALLBACK)
    return client.get(location.removeprefix(PUBLIC_URL), follow_redirects=False)


def test_sso_sign_in_with_a_pre_created_user(
    sso_client: TestClient, sso_russet: Russet, provider: OidcProvider
) -> None:
    sso_russet.access.add_user("Ann@example.com", Role.AUDITOR, None)
    done = sign_on(sso_client, "/console/audit")
    assert done.status_code == 303 and done.headers["location"] == "/console/audit"
    page = sso_client.get("/console/audit")
    assert page.status_code == 200 and "ann@example.com (auditor)" in page.text
    # What Russet asked for: the code flow with PKCE S256, state and nonce, at its callback.
    [(_, _, asked)] = [r for r in provider.requests if r[1] == "/authorize"]
    assert asked["response_type"] == "code" and asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == CALLBACK and "openid" in asked["scope"].split()
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    [(_, _, token)] = [r for r in provider.requests if r[1] == "/token"]
    assert token["grant_type"] == "authorization_code" and len(token["code_verifier"]) >= 43
    assert "client_secret" not in token  # sent with HTTP Basic, never in the body
    [row] = [r for r in sso_russet.access.audit_rows() if "single sign-on" in r["action"]]
    assert row["actor"] == "user:ann@example.com" and row["outcome"] == "ok"
    assert sso_russet.access.users is not None
    assert sso_russet.access.users.get("ann@example.com").last_sign_in_at is not None  # type: ignore[union-attr]


def test_role_from_a_configured_claim_makes_the_user(settings: Settings, provider: OidcProvider) -> None:
    provider.person = {"sub": "u-2", "email": "bo@example.com", "groups": ["staff", "operator"]}
    server = Russet.open(with_sso(settings, provider, RUSSET_OIDC_ROLE_CLAIM="groups"))
    try:
        with TestClient(create_app(server), base_url=PUBLIC_URL) as client:
            assert sign_on(client).status_code == 303
            assert "bo@example.com (operator)" in client.get("/console/devices").text
        user = server.access.users.get("bo@example.com")  # type: ignore[union-attr]
        assert user is not None and user.role is Role.OPERATOR and user.source == "sso"
    finally:
        server.close()


def test_unknown_person_without_a_role_claim_is_refused_and_nothing_stored(
    sso_client: TestClient, sso_russet: Russet
) -> None:
    refused = sign_on(sso_client)
    assert refused.status_code == 403
    assert "ann@example.com has no Russet user" in refused.text
    with sso_russet.storage.engine.connect() as conn:
        assert conn.execute(select(console_users)).all() == []
    assert sso_client.get("/console/devices", follow_redirects=False).status_code == 303  # not signed in


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"nonce": "replayed"}, "the ID token is not valid"),
        ({"aud": "another-client"}, "the ID token is not valid"),
        ({"iss": "https://evil.example"}, "the ID token is not valid"),
        ({"exp": 1}, "the ID token is not valid"),
        ({"email_verified": False}, "has not verified"),
    ],
)
def test_bad_id_tokens_are_refused(
    sso_client: TestClient, sso_russet: Russet, provider: OidcProvider, changes: dict[str, Any], reason: str
) -> None:
    sso_russet.access.add_user("ann@example.com", Role.ADMIN, None)
    provider.id_token_changes = changes
    refused = sign_on(sso_client)
    assert refused.status_code == 403 and reason in refused.text
    assert sso_client.get("/console/devices", follow_redirects=False).status_code == 303


def test_a_callback_for_another_browsers_sign_in_is_refused(
    sso_client: TestClient, sso_russet: Russet
) -> None:
    """Login CSRF: a code obtained in the attacker's own flow, replayed into the victim's browser
    whose flow has another state."""
    sso_russet.access.add_user("ann@example.com", Role.ADMIN, None)
    start = sso_client.get("/console/sso", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    sso_client.get("/console/sso", follow_redirects=False)  # the victim's own flow: a new state
    forged = sso_client.get(f"/console/sso/callback?code={code}&state=attackers", follow_redirects=False)
    assert forged.status_code == 403 and "state differs" in forged.text
    without = TestClient(sso_client.app, base_url=PUBLIC_URL)  # no flow cookie at all
    assert without.get(f"/console/sso/callback?code={code}&state=x").status_code == 400


def test_the_provider_saying_no_is_shown(sso_client: TestClient, provider: OidcProvider) -> None:
    provider.deny = True
    refused = sign_on(sso_client)
    assert refused.status_code == 403 and "access_denied" in refused.text


def test_sso_not_configured_is_a_clear_404(client: TestClient) -> None:
    answer = client.get("/console/sso")
    assert answer.status_code == 404 and "single sign-on is not configured" in answer.text
    assert "Sign in with single sign-on" not in client.get("/console/login").text


def test_sso_settings_come_together() -> None:
    from russet.config import ConfigError

    with pytest.raises(ConfigError, match="needs RUSSET_OIDC_CLIENT_ID"):
        Settings.from_env(
            {"RUSSET_OIDC_DISCOVERY_URL": "https://idp.example/.well-known/openid-configuration"}
        )
    with pytest.raises(ConfigError, match="RUSSET_OIDC_DISCOVERY_URL is not"):
        Settings.from_env({"RUSSET_OIDC_CLIENT_ID": "x"})
    full = Settings.from_env(
        {
            "RUSSET_OIDC_DISCOVERY_URL": "https://idp.example/.well-known/openid-configuration",
            "RUSSET_OIDC_CLIENT_ID": "russet",
            "RUSSET_OIDC_CLIENT_SECRET": "s3cret-value",
        }
    )
    assert "s3cret-value" not in repr(full)  # never printed with the settings


# -- local accounts ------------------------------------------------------------------------------------


def password_sign_in(client: TestClient, email: str, password: str) -> Any:
    form = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "email": email, "password": password},
        follow_redirects=False,
    )


def test_password_sign_in_with_argon2(client: TestClient, russet: Russet) -> None:
    russet.access.add_user("ann@example.com", Role.OPERATOR, "correct horse battery")
    with russet.storage.engine.connect() as conn:
        stored = conn.execute(select(console_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert password_sign_in(client, "ann@example.com", "wrong password here").status_code == 401
    assert password_sign_in(client, "nobody@example.com", "correct horse battery").status_code == 401
    assert password_sign_in(client, "ANN@example.com", "correct horse battery").status_code == 303
    assert "ann@example.com (operator)" in client.get("/console/devices").text


def test_sso_only_user_has_no_password_sign_in(client: TestClient, russet: Russet) -> None:
    russet.access.add_user("sam@example.com", Role.ADMIN, None)
    assert password_sign_in(client, "sam@example.com", "").status_code == 401


def test_sessions_expire(client: TestClient, russet: Russet, monkeypatch: pytest.MonkeyPatch) -> None:
    from russet.console import session as sessions

    russet.access.add_user("ann@example.com", Role.AUDITOR, "correct horse battery")
    assert password_sign_in(client, "ann@example.com", "correct horse battery").status_code == 303
    assert client.get("/console/devices", follow_redirects=False).status_code == 200
    later = time.time() + sessions.LIFETIME_SECONDS + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    assert client.get("/console/devices", follow_redirects=False).status_code == 303


def test_user_cli(run: Any) -> None:
    code, out = run("user", "add", "not-an-email", "--role", "admin")
    assert code == 1 and "is not an email address" in out  # before any password is asked
    code, out = run("user", "add", "ann@example.com", "--role", "auditor", "--sso-only")
    assert code == 0 and "added ann@example.com (auditor, single sign-on only)" in out
    code, out = run("user", "add", "ann@example.com", "--role", "auditor", "--sso-only")
    assert code == 1 and "already exists" in out
    code, out = run("user", "role", "ann@example.com", "operator")
    assert code == 0 and "is now operator" in out
    code, out = run("user", "list", "--json")
    assert code == 0 and '"role": "operator"' in out and "password_hash" not in out
    code, out = run("user", "remove", "ann@example.com")
    assert code == 0
    code, out = run("user", "remove", "ann@example.com")
    assert code == 1 and "no user" in out


def test_user_add_reads_a_password(invoke_cli: Any) -> None:
    from click.testing import CliRunner

    from russet.cli.main import cli

    short = CliRunner().invoke(cli, ["user", "add", "a@example.com", "--role", "admin", "--password-stdin"],
                               input="short\n")  # fmt: skip
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    good = CliRunner().invoke(cli, ["user", "add", "a@example.com", "--role", "admin"],
                              input="correct horse battery\ncorrect horse battery\n")  # fmt: skip
    assert good.exit_code == 0, good.output
    assert "added a@example.com (admin, password set)" in good.output


# -- in a browser ----------------------------------------------------------------------------------------


@pytest.fixture
def playwright_api() -> Any:
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}; apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="the Python playwright package is not installed")


@pytest.fixture
def served_sso(settings: Settings) -> Iterator[tuple[str, Russet, OidcProvider]]:
    """Russet on a real socket with single sign-on against the local provider, for a browser."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    idp = OidcProvider(redirect_uris=(f"{base}/console/sso/callback",)).start()
    server_settings = with_sso(dataclasses.replace(settings, public_url=base), idp)
    russet = Russet.open(server_settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(russet), host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    yield base, russet, idp
    server.should_exit = True
    thread.join(10)
    russet.close()
    idp.stop()


def test_browser_sso_sign_in_then_an_auditor_cannot_send_a_command(
    playwright_api: Any, served_sso: tuple[str, Russet, OidcProvider], tmp_path: Path
) -> None:
    base, russet, _ = served_sso
    [device] = seed(russet, 1, device_name="Lab Mac")
    russet.access.add_user("ann@example.com", Role.AUDITOR, None)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{base}/console/devices/{device}")
            assert "/console/login" in page.url
            page.click("#sso")  # to the provider, which signs Ann in and sends her back
            page.wait_for_url(f"{base}/console/devices/{device}")
            assert "ann@example.com (auditor)" in page.inner_text("header")
            assert "cannot send commands" in page.inner_text("#no-commands")
            assert page.locator("select[name=request_type]").count() == 0
            page.screenshot(path=str(tmp_path / "auditor.png"), full_page=True)
            # The form is not there; a hand-made post from her signed-in browser is refused.
            csrf = page.get_attribute("form.logout input[name=csrf]", "value")
            posted = page.request.post(
                f"{base}/console/devices/{device}/commands",
                form={"csrf": csrf or "", "request_type": "DeviceInformation", "params": ""},
                max_redirects=0,
            )
            assert posted.status == 403
            assert "needs the operator role; user:ann@example.com has the auditor role" in posted.text()
            page.click("nav >> text=Audit log")
            page.wait_for_url(f"{base}/console/audit")
            assert "The hash chain verifies" in page.inner_text("#chain")
            assert re.search(r"console sign-in with single sign-on", page.inner_text("table"))
        finally:
            browser.close()
    assert russet.storage.queue.for_enrollment(device, 10) == []
