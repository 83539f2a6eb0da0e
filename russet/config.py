"""Runtime configuration, read once from the environment.

Every setting has a default that works on a fresh machine (SQLite in ./russet-data), so
`russet serve` needs no configuration to start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from russet.kernel.errors import Invalid

# The database URLs Russet accepts (psycopg 3 is the PostgreSQL driver it ships).
DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")


class ConfigError(Invalid, ValueError):
    """A setting has a value Russet cannot use; the message names the variable.

    Still a ValueError too, for callers that catch one.
    """


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _existing_file(env: dict[str, str], name: str) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    if not Path(raw).is_file():
        raise ConfigError(f"{name} names {raw!r}, which is not a readable file")
    return raw


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default)."""
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _header_name(env: dict[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not all(c.isalnum() or c in "-_" for c in raw):
        raise ConfigError(f"{name} must be an HTTP header name such as X-SSL-Client-Cert, got {raw!r}")
    return raw


def _access_log(env: dict[str, str], name: str) -> str:
    """`off`, `stderr` (the default) or the path of a file to append to, whose folder must exist."""
    raw = (env.get(name) or "stderr").strip()
    if raw.lower() in ("off", "stderr"):
        return raw.lower()
    path = Path(raw).expanduser().resolve()
    if path.is_dir() or not path.parent.is_dir():
        raise ConfigError(f"{name} must be off, stderr or a file in an existing folder, got {raw!r}")
    return str(path)


def _oidc(env: dict[str, str], public_url: str) -> dict[str, Any]:
    """The single sign-on settings: all of discovery URL, client id and secret, or none."""
    discovery = (env.get("RUSSET_OIDC_DISCOVERY_URL") or "").strip() or None
    client_id = (env.get("RUSSET_OIDC_CLIENT_ID") or "").strip() or None
    secret = env.get("RUSSET_OIDC_CLIENT_SECRET") or None
    if discovery is None:
        if client_id or secret:
            raise ConfigError("RUSSET_OIDC_CLIENT_ID/SECRET are set but RUSSET_OIDC_DISCOVERY_URL is not")
        return {}
    if not discovery.startswith(("https://", "http://")):
        raise ConfigError(f"RUSSET_OIDC_DISCOVERY_URL must be an https:// URL, got {discovery!r}")
    if not client_id or not secret:
        raise ConfigError(
            "RUSSET_OIDC_DISCOVERY_URL needs RUSSET_OIDC_CLIENT_ID and RUSSET_OIDC_CLIENT_SECRET"
        )
    redirect = (env.get("RUSSET_OIDC_REDIRECT_URL") or "").strip() or f"{public_url}/console/sso/callback"
    if not redirect.startswith(("https://", "http://")):
        raise ConfigError(f"RUSSET_OIDC_REDIRECT_URL must be an https:// URL, got {redirect!r}")
    return {
        "oidc_discovery_url": discovery,
        "oidc_client_id": client_id,
        "oidc_client_secret": secret,
        "oidc_redirect_url": redirect,
        "oidc_scopes": (env.get("RUSSET_OIDC_SCOPES") or "openid email profile").strip(),
        "oidc_role_claim": (env.get("RUSSET_OIDC_ROLE_CLAIM") or "").strip() or None,
    }


@dataclass(frozen=True)
class Settings:
    """What Russet is configured with; see the README's configuration table."""

    data_dir: Path
    database_url: str
    public_url: str
    push_topic: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_result_bytes: int = 2 * 1024 * 1024  # one command result stored; the rest cut, and flagged
    max_inventory_section_bytes: int = 1024 * 1024  # one inventory section (JSON); what fits, flagged
    max_delivery_attempts: int = 5
    reconcile_max_in_flight: int = 5  # commands in flight per device before the reconciler waits
    ade_release_minutes: int = 15  # an ADE device in Setup Assistant gets DeviceConfigured by then
    apple_ca_file: str | None = None
    ledger_retention_days: int = 730
    abm_url: str = "https://mdmenrollment.apple.com"
    abm_sync_minutes: int = 30
    apns_url: str = "https://api.push.apple.com"  # sandbox: https://api.sandbox.push.apple.com
    master_key: str | None = field(default=None, repr=False)
    vpp_url: str = "https://vpp.itunes.apple.com/mdm/v2"  # Apps and Books API v2
    activation_lock_url: str = "https://deviceservices-external.apple.com"  # escrowKeyUnlock
    vpp_poll_seconds: int = 60  # pending Apps and Books events polled, installs checked (Apple: >= 30 s)
    vpp_sync_minutes: int = 60  # each location's assets re-read while serving
    ade_ca_file: str | None = None  # PEM: the CA that signs ADE MachineInfo, replacing Apple's shipped one
    # Proxy mTLS: the header a TLS-terminating proxy puts the device's client certificate in
    # (None: devices sign with Mdm-Signature instead), and how it is encoded.
    client_cert_header: str | None = None
    client_cert_format: str = "auto"  # auto | rfc9440 | nginx
    user_authenticate: str = "decline"  # macOS network users: decline (410) | allow (no password asked)
    # How far a check-in's signing time may be from the server's clock (devices with skewed clocks).
    signing_window_seconds: int = 600
    # Another identity for an enrolled device: strict (only when bound, opened or released) | open.
    reenroll_policy: str = "strict"
    # One line per HTTP request (russet.accesslog): off | stderr | a file path; text | json.
    access_log: str = "stderr"
    access_log_format: str = "text"
    # Prometheus metrics at /metrics (russet.metrics), for an API key of any role: off unless on.
    metrics: bool = False
    # The audit log's rows are kept this long (then removed by the audit.retention task, anchored).
    audit_retention_days: int = 730
    # Console single sign-on over OpenID Connect: off unless the discovery URL is set.
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_redirect_url: str | None = None  # default: RUSSET_PUBLIC_URL + /console/sso/callback
    oidc_scopes: str = "openid email profile"
    oidc_role_claim: str | None = None  # a claim naming admin | operator | auditor

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("RUSSET_DATA_DIR") or "./russet-data").resolve()
        if data_dir.exists() and not data_dir.is_dir():
            raise ConfigError(f"RUSSET_DATA_DIR {str(data_dir)!r} is a file, not a directory")
        database_url = env.get("RUSSET_DATABASE_URL") or f"sqlite:///{data_dir / 'russet.db'}"
        if not database_url.startswith(DATABASE_SCHEMES):
            scheme = database_url.split("://", 1)[0] if "://" in database_url else database_url[:40]
            raise ConfigError(
                f"RUSSET_DATABASE_URL must be sqlite:///PATH or postgresql://USER@HOST/DB "
                f"(Russet runs on SQLite and PostgreSQL only), got {scheme!r}"
            )
        if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
            # SQLAlchemy picks psycopg2 for a bare postgresql:// URL; Russet ships psycopg 3.
            database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
        public_url = (env.get("RUSSET_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"RUSSET_PUBLIC_URL must start with https:// (or http:// for tests), got {public_url!r}"
            )
        topic = env.get("RUSSET_PUSH_TOPIC") or None
        if topic is not None and not topic.startswith("com.apple.mgmt."):
            raise ConfigError(f"RUSSET_PUSH_TOPIC must start with com.apple.mgmt., got {topic!r}")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            public_url=public_url,
            push_topic=topic,
            max_body_bytes=_int(env, "RUSSET_MAX_BODY_BYTES", 4 * 1024 * 1024),
            max_result_bytes=_int(env, "RUSSET_MAX_RESULT_BYTES", 2 * 1024 * 1024),
            max_inventory_section_bytes=_int(env, "RUSSET_MAX_INVENTORY_SECTION_BYTES", 1024 * 1024),
            max_delivery_attempts=_int(env, "RUSSET_MAX_DELIVERY_ATTEMPTS", 5),
            reconcile_max_in_flight=_int(env, "RUSSET_RECONCILE_MAX_IN_FLIGHT", 5),
            ade_release_minutes=_int(env, "RUSSET_ADE_RELEASE_MINUTES", 15),
            apple_ca_file=_existing_file(env, "RUSSET_APPLE_CA_FILE"),
            ledger_retention_days=_int(env, "RUSSET_LEDGER_RETENTION_DAYS", 730),
            abm_url=(env.get("RUSSET_ABM_URL") or "https://mdmenrollment.apple.com").rstrip("/"),
            abm_sync_minutes=_int(env, "RUSSET_ABM_SYNC_MINUTES", 30),
            apns_url=(env.get("RUSSET_APNS_URL") or "https://api.push.apple.com").rstrip("/"),
            master_key=env.get("RUSSET_MASTER_KEY") or None,
            vpp_url=(env.get("RUSSET_VPP_URL") or "https://vpp.itunes.apple.com/mdm/v2").rstrip("/"),
            activation_lock_url=(
                env.get("RUSSET_ACTIVATION_LOCK_URL") or "https://deviceservices-external.apple.com"
            ).rstrip("/"),
            vpp_poll_seconds=_int(env, "RUSSET_VPP_POLL_SECONDS", 60),
            vpp_sync_minutes=_int(env, "RUSSET_VPP_SYNC_MINUTES", 60),
            ade_ca_file=_existing_file(env, "RUSSET_ADE_CA_FILE"),
            client_cert_header=_header_name(env, "RUSSET_CLIENT_CERT_HEADER"),
            client_cert_format=_choice(env, "RUSSET_CLIENT_CERT_FORMAT", ("auto", "rfc9440", "nginx")),
            user_authenticate=_choice(env, "RUSSET_USER_AUTHENTICATE", ("decline", "allow")),
            signing_window_seconds=_int(env, "RUSSET_SIGNING_WINDOW_SECONDS", 600),
            reenroll_policy=_choice(env, "RUSSET_REENROLL_POLICY", ("strict", "open")),
            access_log=_access_log(env, "RUSSET_ACCESS_LOG"),
            access_log_format=_choice(env, "RUSSET_ACCESS_LOG_FORMAT", ("text", "json")),
            metrics=_choice(env, "RUSSET_METRICS", ("off", "on")) == "on",
            audit_retention_days=_int(env, "RUSSET_AUDIT_RETENTION_DAYS", 730),
            **_oidc(env, public_url),
        )
