"""APNs administration shared by the REST API and the CLI: pushes on demand, status, and
installing the push certificate (which makes the APNs connection active)."""

from __future__ import annotations

from typing import Any

from russet.apns.certificate import ImportResult, import_push_certificate
from russet.apns.pusher import CONNECTION, SERVICE
from russet.kernel.errors import Invalid, NotFound
from russet.operations import MAX_DEVICES_PER_COMMAND
from russet.runtime import Russet


async def push_devices(russet: Russet, device_ids: list[str]) -> dict[str, Any]:
    """Push these enrollments now; every device's outcome (delivered, token_dead, retrying...)."""
    if not device_ids:
        raise Invalid("name at least one device")
    if len(device_ids) > MAX_DEVICES_PER_COMMAND:
        raise Invalid(f"at most {MAX_DEVICES_PER_COMMAND} devices at once")
    if not all(isinstance(d, str) and d for d in device_ids):
        raise Invalid("device ids must be non-empty strings")
    known = russet.storage.enrollments.existing(device_ids)
    missing = sorted(set(device_ids) - known)
    if missing:
        raise NotFound("no enrollment with id " + ", ".join(missing))
    results = await russet.pusher.push_devices(device_ids)
    return {"results": results, "delivered": sum(1 for r in results if r["outcome"] == "delivered")}


def push_status(russet: Russet) -> dict[str, Any]:
    """Certificate (topic, expiry, warning), whether pushing runs or why not, counts by outcome."""
    return russet.pusher.status()


def import_certificate(russet: Russet, data: bytes, *, force: bool = False) -> ImportResult:
    """Install the push certificate Apple issued and mark the APNs connection active.

    The certificate store writes in its own transaction, so the connection is marked right after;
    importing the same certificate again marks it again. A new certificate also lifts a stop
    caused by APNs refusing the previous one (the stop names that certificate's fingerprint).
    """
    result = import_push_certificate(russet.storage, data, force=force)
    russet.push_topic.invalidate()  # this process at once; other workers and nodes within its max_age
    with russet.storage.engine.begin() as conn:
        russet.connections.connect(conn, SERVICE, CONNECTION)
    russet.pusher.wake()
    return result
