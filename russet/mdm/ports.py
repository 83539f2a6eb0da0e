"""What the MDM core needs from other features, as Protocols the composition root wires.

The core queues commands and shows devices; waking devices is APNs's job. The core never imports
`russet.apns` (APNs reads the core's tables, so the dependency runs the other way): it asks for
this port, which `russet.apns.service.PushService` implements and `russet.runtime` hands in.
Whether a new identity was issued for a device's ADE enrollment is enrollment's knowledge (its log
of profiles handed out): `AdeIdentities`, which `russet.enrollment.tokens.EnrollmentRequestLog`
implements. So is how each device's identity was enrolled, and who signed in for it:
`EnrollmentOrigins`, the same log's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection


class DevicePushes(Protocol):
    """Pushes for devices that have something to fetch."""

    def request_in(self, conn: Connection, enrollment_ids: list[str]) -> None:
        """Ask for a push to these enrollments inside the caller's transaction (an enqueue's), so
        a command and its push request are written together or not at all."""

    def request(self, enrollment_ids: Sequence[str]) -> None:
        """Ask for a push to these enrollments, in a transaction of its own."""

    def wake(self) -> None:
        """Tell this process's pusher to look for requests now (others find them when they poll)."""

    def device_state(self, enrollment_id: str) -> dict[str, Any] | None:
        """The enrollment's push state (last outcome, dead token...), for `show_device`."""


class AdeIdentities(Protocol):
    """Which identities were issued for a device's ADE enrollment (re-enrollment's takeover rule)."""

    def issued_for_ade(self, conn: Connection, device_id: str, serial: str | None, identity_fp: str) -> bool:
        """Whether `identity_fp` was bought with a SCEP challenge from a profile handed out for this
        device's Apple-signed MachineInfo (same UDID, or serial number when known); read in the
        caller's transaction (an Authenticate's)."""


class EnrollmentOrigins(Protocol):
    """How each device identity was enrolled (enrollment's log of profiles handed out)."""

    def origins(self, identity_fps: Collection[str] | None) -> dict[str, tuple[str, str | None]]:
        """Identity fingerprint -> (method: ota, ade, ade_signin or account; who signed in: the
        person's email, else their id, else None), for the identities among `identity_fps` (every
        one when None) bought with the SCEP challenge of a profile /mdm/enroll handed out.
        Identities from elsewhere (`russet enrollment profile`, PKCS#12) are absent."""
        ...


class DeclarativeAnswers(Protocol):
    """The DDM check-in's answers (the declarative feature): JSON for tokens, declaration-items and
    each declaration, None for a stored status report. Raises `russet.kernel.errors` kinds:
    Invalid or TooLarge for bad input (nothing stored), NotFound for a declaration not the device's."""

    def answer(self, device_id: str, endpoint: str, data: bytes | None) -> dict[str, Any] | None: ...
