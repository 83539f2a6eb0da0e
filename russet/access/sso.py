"""Single sign-on for the console over OpenID Connect: the authorization code flow with PKCE
(S256), `state` and `nonce` checked, the ID token verified (RS256 or ES256 against the provider's
JWKS, issuer, audience, expiry, nonce).

Authlib builds the protocol messages (the authorization request, the token request, PKCE's
challenge, the random values); its JOSE successor joserfc verifies the ID token; httpx carries
the two server-to-server calls (discovery and JWKS are cached for `CACHE_SECONDS`). Nothing here
knows about HTTP frameworks: the console keeps `Pending` in its sealed session between `start`
and `finish`.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from russet.access.roles import Role
from russet.kernel.errors import Invalid, Refused, UpstreamFailed

if TYPE_CHECKING:
    import httpx

# httpx, authlib and joserfc (~7 MB) are imported where a sign-on uses them, not by every server
# worker: most installations configure no provider, and the rest sign in rarely.

CACHE_SECONDS = 3600
MAX_RESPONSE_BYTES = 256 * 1024
ALGORITHMS = ("RS256", "ES256")


@dataclass(frozen=True)
class OidcConfig:
    discovery_url: str
    client_id: str
    client_secret: str
    redirect_url: str
    scopes: str = "openid email profile"
    role_claim: str | None = None  # a claim naming the role (admin | operator | auditor), or None


@dataclass(frozen=True)
class Pending:
    """What the browser's session keeps between the redirect to the provider and its return."""

    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class Identity:
    email: str
    role: Role | None  # from the role claim, when configured and present
    subject: str
    issuer: str
    name: str | None = None  # the `name` claim, when the provider gives one


class SingleSignOn:
    def __init__(self, config: OidcConfig, timeout: float = 10.0) -> None:
        self.config = config
        self._timeout = timeout
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any]] | None = None

    def _get_json(self, url: str) -> Any:
        import httpx

        try:
            with httpx.Client(timeout=self._timeout) as client:
                response = client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"the sign-on provider cannot be reached at {url}: {exc}") from None
        return self._json(response, url)

    @staticmethod
    def _json(response: httpx.Response, url: str) -> Any:
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise UpstreamFailed(f"the sign-on provider's answer from {url} is too large")
        try:
            data = response.json()
        except ValueError:
            raise UpstreamFailed(f"the sign-on provider's answer from {url} is not JSON") from None
        if response.status_code != 200:
            error = data.get("error") if isinstance(data, dict) else None
            raise UpstreamFailed(
                f"the sign-on provider answered {response.status_code} ({error or 'no reason'})"
            )
        return data

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached), with the endpoints the flow needs."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata[0] < CACHE_SECONDS:
                return self._metadata[1]
        found = self._get_json(self.config.discovery_url)
        needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in needed):
            raise UpstreamFailed(f"the discovery document lacks one of {', '.join(needed)}")
        with self._lock:
            self._metadata = (time.monotonic(), found)
        return found

    def start(self) -> tuple[str, Pending]:
        """The provider's authorization URL to send the browser to, and what to keep until it returns."""
        from authlib.common.security import generate_token
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        meta = self.metadata()
        pending = Pending(state=generate_token(32), nonce=generate_token(32), verifier=generate_token(64))
        url = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.config.client_id,
            "code",
            redirect_uri=self.config.redirect_url,
            scope=self.config.scopes,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256",
        )
        return url, pending

    def finish(self, pending: Pending, params: Mapping[str, str]) -> Identity:
        """The signed-in person, from the provider's redirect back (`code`, `state` or `error`)."""
        state = params.get("state") or ""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise Refused("the sign-on answer does not belong to this browser's sign-in (state differs)")
        if params.get("error"):
            raise Refused(f"the sign-on provider refused: {params['error']}")
        code = params.get("code")
        if not code:
            raise Invalid("the sign-on answer has no code")
        import httpx
        from authlib.oauth2.rfc6749.parameters import prepare_token_request

        meta = self.metadata()
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.config.redirect_url,
            code_verifier=pending.verifier,
        )
        try:
            with httpx.Client(timeout=self._timeout) as client:
                response = client.post(
                    meta["token_endpoint"],
                    content=body,
                    auth=(self.config.client_id, self.config.client_secret),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Accept": "application/json",
                    },
                )
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"the sign-on provider's token endpoint cannot be reached: {exc}") from None
        tokens = self._json(response, meta["token_endpoint"])
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str):
            raise UpstreamFailed("the sign-on provider sent no ID token")
        return self._identity(id_token, pending.nonce, meta)

    def _identity(self, id_token: str, nonce: str, meta: Mapping[str, Any]) -> Identity:
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        keys = self._get_json(meta["jwks_uri"])
        try:
            token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=list(ALGORITHMS))
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": meta["issuer"]},
                aud={"essential": True, "value": self.config.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise Refused(f"the ID token is not valid: {exc}") from None
        claims = token.claims
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.config.client_id:
            raise Refused("the ID token was issued to another client (azp)")
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise Refused("the ID token names no email address (ask for the email scope)")
        if claims.get("email_verified") is False:
            raise Refused(f"the sign-on provider has not verified {email}")
        name = claims.get("name")
        return Identity(
            email.strip().lower(),
            self._role(claims),
            str(claims["sub"]),
            str(claims["iss"]),
            name.strip()[:200] or None if isinstance(name, str) else None,
        )

    def _role(self, claims: Mapping[str, Any]) -> Role | None:
        if not self.config.role_claim:
            return None
        value = claims.get(self.config.role_claim)
        names = value if isinstance(value, list) else [value]
        roles = [r for r in Role if r.label in {str(n).strip().lower() for n in names if n is not None}]
        return max(roles) if roles else None
