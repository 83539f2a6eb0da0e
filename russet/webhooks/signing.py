"""How a receiver knows a request came from Russet: `X-Russet-Signature: sha256=<hex>`, the
HMAC-SHA256 of the body under the endpoint's secret, and `X-Russet-Timestamp` (Unix seconds of the
attempt). The body names its event (`id` / `event_id`) and time, so a receiver can drop a replay
or a redelivery it already has."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Russet-Signature"
TIMESTAMP_HEADER = "X-Russet-Timestamp"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does (the tests use it): compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header)
