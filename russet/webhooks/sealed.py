"""What the webhooks feature seals at rest, for key rotation (`russet.storage.rotation`): each
endpoint's HMAC secret and each outbox body (a NanoMDM-shaped body holds the raw check-in)."""

from __future__ import annotations

from russet.storage.rotation import SealedColumn
from russet.webhooks.store import body_purpose, secret_purpose
from russet.webhooks.tables import webhook_endpoints, webhook_outbox

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(webhook_endpoints, "sealed_secret", lambda r: secret_purpose(r.id)),
    SealedColumn(webhook_outbox, "sealed_body", lambda r: body_purpose(r.endpoint_id, r.event_id)),
)
