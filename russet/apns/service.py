"""APNs administration and the MDM core's push port, as one service (`russet.push`).

The surfaces call it to push devices on demand, to see whether pushing runs, and for the push
certificate's lifecycle (CSR, import, status). The MDM core calls it through its `DevicePushes`
port (russet.mdm.ports) to ask for pushes when it queues commands or forgets a device.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from russet.apns.certificate import DEFAULT_CSR_NAME, ImportResult, create_push_csr, import_push_certificate
from russet.apns.certificate import push_status as certificate_status
from russet.apns.ports import KnownDevices, PushStores
from russet.apns.pusher import CONNECTION, SERVICE, Pusher
from russet.apns.state import push_certificate_not_after, request_pushes
from russet.apns.topic import PushTopic
from russet.apple.connections import ConnectionRegistry
from russet.kernel.errors import Invalid, NotFound
from russet.kernel.tasks import PeriodicTask
from russet.mdm.devices import MAX_DEVICES_PER_COMMAND


class PushService:
    """Pushes on demand, push status, the push certificate; and push requests for the MDM core."""

    def __init__(
        self,
        storage: PushStores,
        pusher: Pusher,
        topic: PushTopic,
        connections: ConnectionRegistry,
        known: KnownDevices,
    ) -> None:
        self._storage = storage
        self._pusher = pusher
        self._topic = topic
        self._connections = connections
        self._known = known

    # -- the server's periodic work --------------------------------------------------------------

    def tasks(self) -> list[PeriodicTask]:
        """The push sweep (`apns.sweep`), for the composition root's task runner. The pusher's drain
        loop is not one: it is a long-running coroutine in every process, woken on each enqueue."""
        return [
            PeriodicTask(
                "apns.sweep",
                self._pusher.policy.sweep_seconds,
                self.sweep,
                once_across_nodes=True,
                description="re-push devices with pending commands that have not connected (with backoff)",
            )
        ]

    async def sweep(self) -> int:
        """Queue pushes again for devices with pending commands that have not connected since."""
        count = await self._pusher.sweep()
        if count:
            self._pusher.wake()  # this process drains the requests at once; others within a second
        return count

    # -- admin -----------------------------------------------------------------------------------

    async def push_devices(self, device_ids: list[str]) -> dict[str, Any]:
        """Push these enrollments now; every device's outcome (delivered, token_dead, retrying...)."""
        if not device_ids:
            raise Invalid("name at least one device")
        if len(device_ids) > MAX_DEVICES_PER_COMMAND:
            raise Invalid(f"at most {MAX_DEVICES_PER_COMMAND} devices at once")
        if not all(isinstance(d, str) and d for d in device_ids):
            raise Invalid("device ids must be non-empty strings")
        missing = sorted(set(device_ids) - self._known.existing(device_ids))
        if missing:
            raise NotFound("no enrollment with id " + ", ".join(missing))
        results = await self._pusher.push_devices(device_ids)
        return {"results": results, "delivered": sum(1 for r in results if r["outcome"] == "delivered")}

    def push_status(self) -> dict[str, Any]:
        """Certificate (topic, expiry, warning), whether pushing runs or why not, counts by outcome."""
        return self._pusher.status()

    def certificate_expiry(self) -> datetime | None:
        """When the installed push certificate expires (None: none installed); cheap, for metrics."""
        return push_certificate_not_after(self._storage.engine)

    def certificate_status(self) -> dict[str, Any]:
        """The installed push certificate: topic, expiry, days left, a warning from 30 days out."""
        return certificate_status(self._storage)

    def create_csr(self, out: Path, *, force: bool = False, common_name: str = DEFAULT_CSR_NAME) -> None:
        """Make the push key (sealed in the database) and write its CSR to `out`."""
        create_push_csr(self._storage, out, force=force, common_name=common_name)

    def import_certificate(self, data: bytes, *, force: bool = False) -> ImportResult:
        """Install the push certificate Apple issued and mark the APNs connection active.

        The certificate store writes in its own transaction, so the connection is marked right
        after; importing the same certificate again marks it again. A new certificate also lifts a
        stop caused by APNs refusing the previous one (the stop names that certificate's fingerprint).
        """
        result = import_push_certificate(self._storage, data, force=force)
        self._topic.invalidate()  # this process at once; other workers and nodes within its max_age
        with self._storage.engine.begin() as conn:
            self._connections.connect(conn, SERVICE, CONNECTION)
        self._pusher.wake()
        return result

    # -- the MDM core's DevicePushes port --------------------------------------------------------

    def request_in(self, conn: Connection, enrollment_ids: list[str]) -> None:
        """A push request per enrollment, written in the caller's transaction."""
        request_pushes(conn, enrollment_ids)

    def request(self, enrollment_ids: Sequence[str]) -> None:
        """A push request per enrollment, in a transaction of its own."""
        self._pusher.state.request(enrollment_ids)

    def wake(self) -> None:
        """This process's pusher looks for requests now."""
        self._pusher.wake()

    def device_state(self, enrollment_id: str) -> dict[str, Any] | None:
        """The enrollment's push state, as `show_device` shows it."""
        return self._pusher.state.device(enrollment_id)
