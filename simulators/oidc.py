"""A tiny OpenID Connect provider on 127.0.0.1 for the console's single sign-on tests.

It does what a real provider does for the authorization code flow with PKCE, and checks what a
real one checks:

* ``GET /.well-known/openid-configuration``: the discovery document (issuer = its base URL);
* ``GET /authorize``: ``response_type=code``, the registered ``client_id`` and ``redirect_uri``,
  ``scope`` with ``openid``, ``state``, ``nonce``, ``code_challenge`` with
  ``code_challenge_method=S256``; the person is signed in at once as `OidcProvider.person` (no
  form) and sent back to ``redirect_uri?code=…&state=…`` (or ``error=access_denied`` when
  `deny` is set);
* ``POST /token``: client authentication (HTTP Basic or ``client_secret_post``), a code issued
  for this client, used once, the same ``redirect_uri``, and ``code_verifier`` whose S256 is the
  code's challenge; answers an RS256 ``id_token`` (``iss``, ``sub``, ``aud``, ``exp``, ``iat``,
  ``nonce``, ``email``, ``email_verified`` and `OidcProvider.person`'s other claims);
* ``GET /jwks``: the public key.

`id_token_changes` lets a test break one claim of the next ID tokens (a wrong nonce, audience…).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    person: dict[str, Any]
    used: bool = False


@dataclass
class OidcProvider:
    client_id: str = "russet-console"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: tuple[str, ...] = ()  # empty: any (a test sets the one Russet uses)
    person: dict[str, Any] = field(default_factory=lambda: {"sub": "u-1", "email": "ann@example.com"})
    deny: bool = False
    id_token_changes: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, params)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "sim-1", "use": "sig", "alg": "RS256"})
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- running -----------------------------------------------------------------------------------

    def start(self) -> OidcProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                provider._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                provider._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    # -- the endpoints -----------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(http.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        if method == "POST":
            length = int(http.headers.get("Content-Length") or 0)
            body = http.rfile.read(min(length, 64 * 1024)).decode()
            params.update({k: v[0] for k, v in parse_qs(body).items()})
        self.requests.append((method, url.path, params))
        if method == "GET" and url.path == "/.well-known/openid-configuration":
            return self._json(http, 200, self.discovery())
        if method == "GET" and url.path == "/jwks":
            return self._json(http, 200, KeySet([self.key]).as_dict(private=False))
        if method == "GET" and url.path == "/authorize":
            return self._authorize(http, params)
        if method == "POST" and url.path == "/token":
            return self._token(http, params)
        return self._json(http, 404, {"error": "not_found"})

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def _authorize(self, http: BaseHTTPRequestHandler, p: dict[str, str]) -> None:
        problems = []
        if p.get("response_type") != "code":
            problems.append("response_type must be code")
        if p.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        redirect = p.get("redirect_uri", "")
        if not redirect or (self.redirect_uris and redirect not in self.redirect_uris):
            problems.append("redirect_uri is not registered")
        if "openid" not in p.get("scope", "").split():
            problems.append("scope must include openid")
        if not p.get("state") or not p.get("nonce"):
            problems.append("state and nonce are required")
        if p.get("code_challenge_method") != "S256" or not p.get("code_challenge"):
            problems.append("PKCE with S256 is required")
        if problems:  # never redirect to an unchecked URI: answer here
            return self._json(
                http, 400, {"error": "invalid_request", "error_description": "; ".join(problems)}
            )
        if self.deny:
            query = {"error": "access_denied", "state": p["state"]}
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._grants[code] = Grant(
                    self.client_id, redirect, p["code_challenge"], p["nonce"], dict(self.person)
                )
            query = {"code": code, "state": p["state"]}
        http.send_response(302)
        http.send_header("Location", f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(query)}")
        http.send_header("Content-Length", "0")
        http.end_headers()

    def _client_ok(self, http: BaseHTTPRequestHandler, p: dict[str, str]) -> bool:
        header = http.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        else:
            user, password = p.get("client_id", ""), p.get("client_secret", "")
        return user == self.client_id and secrets.compare_digest(password, self.client_secret)

    def _token(self, http: BaseHTTPRequestHandler, p: dict[str, str]) -> None:
        if not self._client_ok(http, p):
            return self._json(http, 401, {"error": "invalid_client"})
        if p.get("grant_type") != "authorization_code":
            return self._json(http, 400, {"error": "unsupported_grant_type"})
        with self._lock:
            grant = self._grants.get(p.get("code", ""))
            if grant is None or grant.used:
                return self._json(http, 400, {"error": "invalid_grant"})
            grant.used = True
        if p.get("redirect_uri") != grant.redirect_uri:
            return self._json(http, 400, {"error": "invalid_grant", "error_description": "redirect_uri"})
        verifier = p.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or digest != grant.challenge:
            return self._json(http, 400, {"error": "invalid_grant", "error_description": "code_verifier"})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "email_verified": True,
            **grant.person,
            **self.id_token_changes,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "sim-1"}, claims, self.key)
        answer = {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300}
        return self._json(http, 200, {**answer, "id_token": id_token})

    @staticmethod
    def _json(http: BaseHTTPRequestHandler, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(body)))
        http.send_header("Cache-Control", "no-store")
        http.end_headers()
        http.wfile.write(body)
