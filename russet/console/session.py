"""The console's session cookie: sealed (AES-GCM under the master key), HttpOnly, SameSite=Strict,
and Secure whenever the console is served over https (see `secure`).

It holds only the SHA-256 of the admin's API key, or the id of the console user who signed in
with a password or single sign-on (looked up on every request, so revoking the key or removing
the user ends the session at once, and a changed role applies at once), the name for display, a
CSRF token, and an expiry (`LIFETIME_SECONDS` after sign-in). A visitor who has not logged in
still gets a session with just a CSRF token, so the login form is protected against login CSRF
too.

Single sign-on keeps its flow (state, nonce, PKCE verifier, where to go next) in a cookie of its
own, sealed too, for `SSO_SECONDS`, on /console/sso only and SameSite=Lax: the provider's redirect
back is a cross-site navigation, on which a browser withholds SameSite=Strict cookies.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from russet.storage.secretbox import SecretBox, SecretError

COOKIE = "russet_console"
PURPOSE = "console-session"
LIFETIME_SECONDS = 12 * 3600
SSO_SECONDS = 600  # a sign-on not finished by then starts again


@dataclass(frozen=True)
class Session:
    csrf: str
    expires: int
    key_hash: str | None = None  # signed in with an API key
    name: str | None = None
    user_id: int | None = None  # signed in as a console user (password or single sign-on)

    @property
    def signed_in(self) -> bool:
        return self.key_hash is not None or self.user_id is not None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(24), expires=int(time.time()) + LIFETIME_SECONDS)

    def logged_in(self, key_hash: str, name: str) -> Session:
        """A fresh CSRF token at login, so one planted before it is useless after."""
        return Session(secrets.token_urlsafe(24), int(time.time()) + LIFETIME_SECONDS, key_hash, name)

    def user_logged_in(self, user_id: int, name: str) -> Session:
        return Session(
            secrets.token_urlsafe(24), int(time.time()) + LIFETIME_SECONDS, None, name, user_id=user_id
        )

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


def load(box: SecretBox, request: Request) -> Session | None:
    """The request's session, or None when absent, tampered with, unreadable or expired."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(box.open(base64.urlsafe_b64decode(raw.encode()), PURPOSE))
        session = Session(
            csrf=str(data["c"]),
            expires=int(data["e"]),
            key_hash=data.get("k"),
            name=data.get("n"),
            user_id=int(data["u"]) if data.get("u") is not None else None,
        )
    except (SecretError, binascii.Error, ValueError, KeyError, TypeError):
        return None
    return session if session.expires > time.time() else None


def secure(request: Request, public_url: str) -> bool:
    """Whether the cookie must only travel over https: when RUSSET_PUBLIC_URL is https, even though
    the request itself arrives over plain http from the TLS proxy the README sets up in front."""
    return public_url.startswith("https://") or request.url.scheme == "https"


def store(box: SecretBox, request: Request, response: Response, session: Session, public_url: str) -> None:
    data: dict[str, object] = {"c": session.csrf, "e": session.expires}
    if session.key_hash is not None:
        data.update(k=session.key_hash, n=session.name)
    if session.user_id is not None:
        data.update(u=session.user_id, n=session.name)

    sealed = box.seal(json.dumps(data, separators=(",", ":")).encode(), PURPOSE)
    response.set_cookie(
        COOKIE,
        base64.urlsafe_b64encode(sealed).decode(),
        max_age=max(0, session.expires - int(time.time())),
        path="/console",
        secure=secure(request, public_url),
        httponly=True,
        samesite="strict",
    )


def clear(request: Request, response: Response, public_url: str) -> None:
    response.delete_cookie(
        COOKIE, path="/console", secure=secure(request, public_url), httponly=True, samesite="strict"
    )


SSO_COOKIE = "russet_sso"
SSO_PURPOSE = "console-sso"


def store_sso(
    box: SecretBox, request: Request, response: Response, flow: dict[str, str], public_url: str
) -> None:
    data = {**flow, "e": str(int(time.time()) + SSO_SECONDS)}
    sealed = box.seal(json.dumps(data, separators=(",", ":")).encode(), SSO_PURPOSE)
    response.set_cookie(
        SSO_COOKIE,
        base64.urlsafe_b64encode(sealed).decode(),
        max_age=SSO_SECONDS,
        path="/console/sso",
        secure=secure(request, public_url),
        httponly=True,
        samesite="lax",
    )


def load_sso(box: SecretBox, request: Request) -> dict[str, str] | None:
    """The sign-on flow this browser started, or None when absent, tampered with or too old."""
    raw = request.cookies.get(SSO_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(box.open(base64.urlsafe_b64decode(raw.encode()), SSO_PURPOSE))
        flow = {str(k): str(v) for k, v in data.items()}
        if int(flow.pop("e")) <= time.time():
            return None
    except (SecretError, binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        return None
    return flow


def clear_sso(request: Request, response: Response, public_url: str) -> None:
    response.delete_cookie(
        SSO_COOKIE, path="/console/sso", secure=secure(request, public_url), httponly=True, samesite="lax"
    )
