"""Console sign-in: the session cookie's flags behind the TLS proxy, and the sign-in rate limit
shared through the database by every worker and node."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.app import create_app
from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import utcnow
from russet.storage.login_failures import MAX_FAILURES, WINDOW, LoginLimiter, buckets
from russet.storage.tables import login_failures
from tests.test_console import csrf_of


@pytest.fixture
def key(russet: Russet) -> str:
    return russet.storage.api_keys.create("alex")


def sign_in(client: TestClient, key: str) -> object:
    form = client.get("/console/login")
    return client.post(
        "/console/login", data={"csrf": csrf_of(form.text), "api_key": key}, follow_redirects=False
    )


def test_cookie_is_secure_behind_the_tls_proxy(russet: Russet) -> None:
    """The proxy speaks plain http to Russet; RUSSET_PUBLIC_URL is https, so the cookie is Secure."""
    with TestClient(create_app(russet), base_url="http://127.0.0.1:8080") as behind_proxy:
        cookie = behind_proxy.get("/console/login").headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_cookie_is_not_secure_on_a_plain_http_test_server(russet: Russet) -> None:
    plain = dataclasses.replace(russet, settings=dataclasses.replace(russet.settings, public_url="http://x"))
    with TestClient(create_app(plain), base_url="http://127.0.0.1:8080") as client:
        cookie = client.get("/console/login").headers["set-cookie"]
    assert "Secure" not in cookie and "HttpOnly" in cookie


def test_too_many_failures_are_429_with_retry_after_even_for_the_right_key(
    client: TestClient, key: str
) -> None:
    for _ in range(MAX_FAILURES):
        assert sign_in(client, "rus_wrong").status_code == 401  # type: ignore[attr-defined]
    refused = sign_in(client, key)
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert 0 < int(refused.headers["retry-after"]) <= WINDOW.total_seconds()  # type: ignore[attr-defined]
    assert "too many failed sign-ins" in refused.text  # type: ignore[attr-defined]
    assert client.get("/console/devices", follow_redirects=False).status_code == 303  # not signed in


def test_nodes_count_together(settings: Settings, russet: Russet, key: str) -> None:
    """Two servers on one database (workers or nodes): failures on one close the door on both."""
    other = Russet.open(settings)
    try:
        with (
            TestClient(create_app(russet), base_url="https://mdm.example.test") as one,
            TestClient(create_app(other), base_url="https://mdm.example.test") as two,
        ):
            for attempt in range(MAX_FAILURES):
                assert sign_in(one if attempt % 2 else two, "rus_wrong").status_code == 401  # type: ignore[attr-defined]
            assert sign_in(one, key).status_code == 429  # type: ignore[attr-defined]
            assert sign_in(two, key).status_code == 429  # type: ignore[attr-defined]
    finally:
        other.close()


def test_success_clears_the_count(client: TestClient, key: str, russet: Russet) -> None:
    for _ in range(MAX_FAILURES - 1):
        sign_in(client, "rus_wrong")
    assert sign_in(client, key).status_code == 303  # type: ignore[attr-defined]
    with russet.storage.engine.connect() as conn:  # the address is clear; the wrong prefix still counts
        assert conn.execute(select(login_failures.c.bucket)).scalars().all() == ["key:rus_wrong"]


def test_key_prefix_is_limited_from_any_address(russet: Russet) -> None:
    limiter = LoginLimiter(russet.storage.engine)
    for n in range(MAX_FAILURES):
        limiter.failed(buckets(f"10.0.0.{n}", "rus_abcdef-guess"))
    assert limiter.retry_after(buckets("192.0.2.7", "rus_abcdef-another-guess")) is not None
    assert limiter.retry_after(buckets("192.0.2.7", "rus_zzzzzz")) is None  # another prefix, fresh address


def test_the_window_ends_and_restarts(russet: Russet) -> None:
    limiter = LoginLimiter(russet.storage.engine)
    start = utcnow()
    names = buckets("198.51.100.1", "")
    for _ in range(MAX_FAILURES):
        limiter.failed(names, now=start)
    assert limiter.retry_after(names, now=start + timedelta(seconds=10)) == WINDOW.total_seconds() - 10
    later = start + WINDOW
    assert limiter.retry_after(names, now=later) is None
    limiter.failed(names, now=later)  # a new window: counting starts again at 1
    with russet.storage.engine.connect() as conn:
        assert conn.execute(select(login_failures.c.failures)).scalar_one() == 1
    assert limiter.prune(now=later + WINDOW) == 1


def test_concurrent_failures_are_all_counted(russet: Russet) -> None:
    limiter = LoginLimiter(russet.storage.engine)
    names = buckets("203.0.113.9", "")

    def fail() -> None:
        for _ in range(5):
            limiter.failed(names)

    threads = [threading.Thread(target=fail) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with russet.storage.engine.connect() as conn:
        assert conn.execute(select(login_failures.c.failures)).scalar_one() == 30


@pytest.mark.parametrize(
    "url", ["/console/devices?q=a%00b", "/console/devices?after=%00", "/console/devices/x%00"]
)
def test_console_refuses_nul_in_query_and_path(client: TestClient, key: str, url: str) -> None:
    assert sign_in(client, key).status_code == 303  # type: ignore[attr-defined]
    page = client.get(url)
    assert page.status_code == 422 and "NUL characters are not allowed" in page.text
