"""Per-device download tokens for hosted app manifests and packages.

InstallApplication's ManifestURL is fetched by the device without Russet's identity (the app
installer does not present the MDM certificate), so the URL itself is the credential: an HMAC
(SHA-256, a key kept sealed in the settings) over the app, the device and an expiry. It cannot be
guessed or moved to another app, names the device it was made for (the access log shows who
downloaded), and stops working at its expiry. Nothing is stored per token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from russet.kernel.errors import Refused

MAX_TOKEN = 1200


@dataclass(frozen=True, slots=True)
class Grant:
    app_id: int
    device_id: str
    expires_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DownloadTokens:
    def __init__(self, key: bytes, ttl: timedelta) -> None:
        if len(key) < 32:
            raise ValueError("the download key must be at least 32 bytes")
        self._key = key
        self.ttl = ttl

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def make(self, app_id: int, device_id: str, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        body = _b64(json.dumps([app_id, device_id, expires], separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def check(self, token: str, now: datetime) -> Grant:
        """The grant a token carries; Refused (403: a device endpoint never answers 401) when it is
        malformed, forged or expired."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise Refused("not a download token")
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            raise Refused("not a download token")
        try:
            app_id, device_id, expires = json.loads(_unb64(body))
        except (ValueError, TypeError):
            raise Refused("not a download token") from None
        if not isinstance(app_id, int) or not isinstance(device_id, str) or not isinstance(expires, int):
            raise Refused("not a download token")
        if now.timestamp() >= expires:
            raise Refused("the download link expired; the reconciler queues a new one")
        return Grant(app_id, device_id, datetime.fromtimestamp(expires, now.tzinfo))
