"""The MDM core's admin use cases: devices, their commands, and who they are.

`DeviceService` is what every surface (API, CLI, console) and other features (Apps and Books
installs, through their own port) call to list and show devices, queue commands and read their
results. It takes typed input, raises `russet.kernel.errors` kinds with a message for people,
and returns plain JSON-ready dicts; it knows nothing of HTTP or click.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from russet import plists
from russet.commands import CommandError, build_command, render_command_plist
from russet.commands.inventory import jsonable
from russet.commands.secrets import escrowed_keys, redact, secret_keys
from russet.commands.support import DeviceFacts
from russet.commands.targets import CommandRefused, check_target
from russet.kernel.errors import Invalid, NotFound
from russet.mdm.admin import IdentityAdmin
from russet.mdm.bootstrap import BootstrapTokenStore
from russet.mdm.enrollments import EnrollmentStore
from russet.mdm.ports import DevicePushes, EnrollmentOrigins
from russet.mdm.queue import UUID_PLACEHOLDER, CommandQueue, UnknownDevices
from russet.mdm.reenroll import ReenrollmentStore
from russet.mdm.signatures import SeenSignatures
from russet.storage.db import utcnow

MAX_DEVICES_PER_COMMAND = 100_000
MAX_REASONS_SHOWN = 20  # a refusal names this many targets and counts the rest


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


ENROLLMENT_STATES = ("enrolled", "awaiting configuration", "unenrolled")


def device_summary(row: dict[str, Any]) -> dict[str, Any]:
    """A device as listings show it."""
    return {
        "id": row["id"],
        "serial_number": row["serial_number"],
        "device_name": row["device_name"],
        "model": row["model"] or row["product_name"],
        "os_version": row["os_version"],
        "enrollment_type": row["enrollment_type"],
        "enrolled": bool(row["enabled"]),
        "last_seen_at": _iso(row["last_seen_at"]),
    }


def _delivery(row: dict[str, Any], with_result: bool, reveal: bool = False) -> dict[str, Any]:
    out = {
        "command_uuid": row["command_uuid"],
        "device": row["enrollment_id"],
        "request_type": row["request_type"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "attempts": row["attempts"],
        "notnow_count": row["notnow_count"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "sent_at": _iso(row["sent_at"]),
        "reported_at": _iso(row["reported_at"]),
    }
    if with_result:
        out["result"] = None
        if row["result"] is not None:
            try:  # bounded: the device's bytes, and maybe cut at RUSSET_MAX_RESULT_BYTES
                out["result"] = jsonable(plists.loads(row["result"]))
            except plists.PlistRejected as exc:
                out["result_error"] = f"the stored result cannot be shown: {exc}"
        if not reveal:  # secrets in the answer (an UnlockToken...) only when asked for
            out["result"] = redact(out["result"], secret_keys(row["request_type"]))
        else:  # escrowed secrets only through `russet secret show` (permission, reason, record)
            out["result"] = redact(out["result"], escrowed_keys(row["request_type"]))
    return out


class DeviceService:
    """Devices, commands and device identities, over the MDM core's own stores."""

    def __init__(
        self,
        enrollments: EnrollmentStore,
        queue: CommandQueue,
        bootstrap: BootstrapTokenStore,
        reenrollment: ReenrollmentStore,
        signatures: SeenSignatures,
        pushes: DevicePushes,
        origins: EnrollmentOrigins | None = None,
    ) -> None:
        self._enrollments = enrollments
        self._queue = queue
        self._bootstrap = bootstrap
        self._signatures = signatures
        self._pushes = pushes
        self._origins = origins
        self._identity = IdentityAdmin(reenrollment, pushes)

    # -- devices ---------------------------------------------------------------------------------

    def list_devices(
        self, *, limit: int = 100, after: str | None = None, search: str | None = None
    ) -> dict[str, Any]:
        """One page of devices (keyset on the enrollment id); `next` continues after it."""
        if not 1 <= limit <= 1000:
            raise Invalid("limit must be between 1 and 1000")
        rows = self._enrollments.page(limit=limit, after=after, search=search)
        return {
            "devices": [device_summary(r) for r in rows],
            "next": rows[-1]["id"] if len(rows) == limit else None,
        }

    def fleet_counts(self) -> tuple[int, dict[str, int]]:
        """Devices enrolled now, and deliveries of commands by status (queued, sent, notnow,
        acknowledged, ...): two aggregate queries, read by the metrics at each scrape."""
        return self._enrollments.enrolled_count(), self._queue.counts_by_status()

    def enrollment_states(self) -> dict[str, int]:
        """Devices by enrollment state, every state present (0 when none): "enrolled",
        "awaiting configuration" (Setup Assistant still waiting for us) and "unenrolled" (checked
        out or removed, their rows kept). One aggregate query, for the console's dashboard."""
        states = dict.fromkeys(ENROLLMENT_STATES, 0)
        for (enabled, waiting), count in self._enrollments.state_counts().items():
            state = ("awaiting configuration" if waiting else "enrolled") if enabled else "unenrolled"
            states[state] += count
        return states

    def show_device(self, device_id: str) -> dict[str, Any]:
        """A device or user channel: enrollment and push state, inventory, its user channels."""
        row = self._enrollments.get(device_id)
        if row is None:
            raise NotFound(f"no device with id {device_id!r}")
        summary = device_summary(row)
        method, enrolled_by = self._origin(row["identity_fp"])
        summary.update(
            {
                "enrollment_method": method,
                "enrolled_by": enrolled_by,
                "channel": row["channel"],
                "model_name": row["model_name"],
                "product_name": row["product_name"],
                "build_version": row["build_version"],
                "topic": row["topic"],
                "push_token_present": row["sealed_push"] is not None,
                "awaiting_configuration": bool(row["awaiting_configuration"]),
                "authenticated_at": _iso(row["authenticated_at"]),
                "token_updated_at": _iso(row["token_updated_at"]),
                "checked_out_at": _iso(row["checked_out_at"]),
                "created_at": _iso(row["created_at"]),
                "inventory": row["inventory"],
                "push": self._pushes.device_state(device_id),
            }
        )
        if row["channel"] == "user":
            summary.update(
                {
                    "device": row["device_id"],
                    "user_id": row["user_id"],
                    "user_short_name": row["user_short_name"],
                    "user_long_name": row["user_long_name"],
                }
            )
        else:
            escrowed = self._bootstrap.escrowed_at(device_id)  # present/absent, never the token
            summary["bootstrap_token"] = {"escrowed": escrowed is not None, "escrowed_at": _iso(escrowed)}
            summary["user_channels"] = [
                {
                    "id": u["id"],
                    "user_short_name": u["user_short_name"],
                    "user_long_name": u["user_long_name"],
                    "enrollment_type": u["enrollment_type"],
                    "enrolled": bool(u["enabled"]),
                    "last_seen_at": _iso(u["last_seen_at"]),
                }
                for u in self._enrollments.user_channels(device_id)
            ]
        return summary

    def _origin(self, identity_fp: str | None) -> tuple[str | None, str | None]:
        """How the identity was enrolled (ota, ade, ade_signin, account) and who signed in for it;
        None, None when not known (a profile from `russet enrollment profile`, no identity yet)."""
        if self._origins is None or not identity_fp:
            return None, None
        found = self._origins.origins([identity_fp]).get(identity_fp)
        return (None, None) if found is None else found

    def aliases(self, identifier: str) -> set[str]:
        """The device's other identifiers (UDID <-> serial number), for the ledger's subject view."""
        return self._enrollments.aliases(identifier)

    def subject_links(self, identifier: str) -> list[tuple[str, str]]:
        """Identifiers linked to a device or user (kind, value), for the ledger's subject look-up."""
        return self._enrollments.subject_links(identifier)

    def find_device(self, device: str) -> dict[str, Any] | None:
        """The device channel a UDID or serial number names (the enrolled one, then the most
        recently seen, when several match): its enrollment row, or None."""
        rows = [self._enrollments.get(i) for i in self._enrollments.aliases(device.strip())]
        found = sorted(
            (r for r in rows if r is not None and r["channel"] == "device"),
            key=lambda r: (bool(r["enabled"]), r["last_seen_at"] is not None, r["last_seen_at"] or 0),
            reverse=True,
        )
        return found[0] if found else None

    # -- commands --------------------------------------------------------------------------------

    def resolve_targets(self, targets: list[str]) -> list[str]:
        """Enrollment ids for command targets: a device id, or a user channel written
        `<device id>:<user id>`, where the user may also be named by short name (`<UDID>:alex`)."""
        named_users = [t for t in targets if ":" in t]
        if not named_users:
            return targets
        known = self._enrollments.existing(named_users)
        resolved = []
        for target in targets:
            if ":" in target and target not in known:
                device_id, _, user = target.rpartition(":")
                target = self._enrollments.user_channel_named(device_id, user) or target
            resolved.append(target)
        return resolved

    def send_command(self, targets: list[str], command: dict[str, Any], *, created_by: str) -> dict[str, Any]:
        """Validate a command and queue it once per target; returns the CommandUUID per device.

        The push requests are written in the enqueue's transaction, then this process's pusher is
        woken (others find the requests when they poll).
        """
        built, resolved = self.check_command(targets, command)
        template = render_command_plist(UUID_PLACEHOLDER, built)
        try:
            uuids = self._queue.enqueue(
                built["RequestType"],
                template,
                resolved,
                created_by,
                in_transaction=self._pushes.request_in,
            )
        except UnknownDevices as exc:
            raise NotFound(str(exc)) from None
        self._pushes.wake()
        return {
            "request_type": built["RequestType"],
            "commands": [{"device": d, "command_uuid": u} for d, u in uuids.items()],
        }

    def check_command(
        self, targets: list[str], command: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """Everything `send_command` checks before queueing, without queueing: the command
        validated (plist-ready) and its targets resolved, or the refusal with its reasons."""
        if not targets:
            raise Invalid("name at least one device")
        if len(targets) > MAX_DEVICES_PER_COMMAND:
            raise Invalid(f"at most {MAX_DEVICES_PER_COMMAND} devices per command")
        if not all(isinstance(d, str) and d for d in targets):
            raise Invalid("device ids must be non-empty strings")
        try:
            built = build_command(command)
        except CommandError as exc:
            raise Invalid(str(exc)) from None
        resolved = self.resolve_targets(targets)
        self._check_targets(built["RequestType"], command, resolved)
        return built, resolved

    def _check_targets(self, request_type: str, command: dict[str, Any], targets: list[str]) -> None:
        """Refuse the command, for every target at once, when a target's platform, OS version,
        supervision, enrollment or channel rules it out (`russet.commands.check_target`); what
        is not known yet (no DeviceInformation answer) never refuses. Unknown targets are left to
        the queue, which names them."""
        verdicts: dict[DeviceFacts, list[str]] = {}
        refused: list[str] = []
        for target, found in self._enrollments.command_targets(targets).items():
            facts = DeviceFacts.from_inventory(
                found.inventory,
                channel="user" if found.channel == "user" else "device",
                user_enrollment=True if found.enrollment_type == "user_enrollment" else None,
            )
            if facts not in verdicts:  # a fleet has few distinct kinds of device
                try:
                    check_target(request_type, facts, command)
                    verdicts[facts] = []
                except CommandRefused as exc:
                    verdicts[facts] = exc.reasons
            refused += [f"{target}: {why}" for why in verdicts[facts]]
        if refused:
            shown = refused[:MAX_REASONS_SHOWN]
            more = len(refused) - len(shown)
            raise CommandRefused(shown + ([f"and {more} more"] if more else []))

    def command_status(self, command_uuid: str) -> dict[str, Any] | None:
        """A queued command's delivery row (status, status_reason, the device's result), or None."""
        return self._queue.by_uuid(command_uuid)

    def show_command(self, command_uuid: str, *, reveal: bool = False) -> dict[str, Any]:
        """A command's status and result; the result's secret keys are redacted unless `reveal`."""
        row = self._queue.by_uuid(command_uuid)
        if row is None:
            raise NotFound(f"no command with uuid {command_uuid!r}")
        out = _delivery(row, with_result=True, reveal=reveal)
        out["deliveries"] = [_delivery(r, with_result=False) for r in self._queue.siblings(command_uuid)]
        return out

    def device_commands(self, device_id: str, limit: int = 100) -> dict[str, Any]:
        """Commands queued for a device, newest first."""
        if not self._enrollments.existing([device_id]):
            raise NotFound(f"no device with id {device_id!r}")
        rows = self._queue.for_enrollment(device_id, limit)
        return {"device": device_id, "commands": [_delivery(r, with_result=False) for r in rows]}

    # -- identities (russet.mdm.admin) ------------------------------------------------------------

    def allow_reenroll(self, device_id: str, duration: str | None = None) -> dict[str, Any]:
        """Accept one enrollment of this device with another identity, until `duration` passes."""
        return self._identity.allow_reenroll(device_id, duration)

    def forget(self, device_id: str) -> dict[str, Any]:
        """Forget the device: its next request is told ErrorUnrecognizedDevice, and it unenrolls."""
        return self._identity.forget(device_id)

    def refusals(self, limit: int = 100, device_id: str | None = None) -> list[dict[str, Any]]:
        """Refused re-enrollments, newest first."""
        return self._identity.refusals(limit, device_id)

    # -- housekeeping ----------------------------------------------------------------------------

    def prune_seen_signatures(self) -> int:
        """Check-in signature digests whose signing time has left the replay window."""
        return self._signatures.prune(utcnow())

    def prune_refusals(self) -> int:
        """Refused re-enrollments older than 90 days."""
        return self._identity.prune_refusals()
