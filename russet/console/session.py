"""The console's session cookie: sealed (AES-GCM under the master key), HttpOnly, SameSite=Strict,
and Secure whenever the console is served over https (see `secure`).

It holds only the SHA-256 of the admin's API key (looked up on every request, so revoking the key
ends the session at once), the key's name for display, a CSRF token, and an expiry. A visitor
who has not logged in still gets a session with just a CSRF token, so the login form is
protected against login CSRF too.
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


@dataclass(frozen=True)
class Session:
    csrf: str
    expires: int
    key_hash: str | None = None  # None: not logged in
    name: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(24), expires=int(time.time()) + LIFETIME_SECONDS)

    def logged_in(self, key_hash: str, name: str) -> Session:
        """A fresh CSRF token at login, so one planted before it is useless after."""
        return Session(secrets.token_urlsafe(24), int(time.time()) + LIFETIME_SECONDS, key_hash, name)

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
            csrf=str(data["c"]), expires=int(data["e"]), key_hash=data.get("k"), name=data.get("n")
        )
    except (SecretError, binascii.Error, ValueError, KeyError, TypeError):
        return None
    return session if session.expires > time.time() else None


def secure(request: Request, public_url: str) -> bool:
    """Whether the cookie must only travel over https: when RUSSET_PUBLIC_URL is https, even though
    the request itself arrives over plain http from the TLS proxy the README sets up in front."""
    return public_url.startswith("https://") or request.url.scheme == "https"


def store(box: SecretBox, request: Request, response: Response, session: Session, public_url: str) -> None:
    data = {"c": session.csrf, "e": session.expires}
    if session.key_hash is not None:
        data.update(k=session.key_hash, n=session.name)
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
