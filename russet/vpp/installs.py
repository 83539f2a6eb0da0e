"""App installs with Apps and Books licences: `russet app install DEVICE ADAMID` (§f.14, §b.5).

An install first makes sure the device's serial number holds a licence for the app (assigning
one if needed), then queues InstallApplication with `iTunesStoreID` and `PurchaseMethod` 1 (VPP),
then asks the device's ManagedApplicationList until the app is `Managed` or has failed. Every
step is read back from stored command results (the command queue keeps each report), so a
restart loses nothing, and each transition is a conditional UPDATE, so several server processes
advancing installs at once queue each command only once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, or_, select, update

from russet import plists
from russet.kernel.errors import RussetError
from russet.storage.db import as_utc, reading, utcnow
from russet.vpp import licences
from russet.vpp.client import VppClient
from russet.vpp.errors import VppConflict, VppError, VppNotFound, apple_errors
from russet.vpp.ports import CommandSender, DeviceLookup
from russet.vpp.store import RELEASING, VppStore
from russet.vpp.tables import vpp_installs, vpp_licences

log = logging.getLogger("russet.vpp")
ACTIVE = ("licensing", "queued", "installing")
INSTALLED_STATES = frozenset({"Managed"})
FAILED_STATES = frozenset(
    {
        "Failed",
        "UserRejected",
        "UpdateRejected",
        "ManagementRejected",
        "NeedsRedemption",  # a VPP licence should never need a redemption code
        "ManagedButUninstalled",
        "UserInstalledApp",
    }
)

GIVE_UP_AFTER = timedelta(hours=24)
CREATED_BY = "russet app install"


def require_device(devices: DeviceLookup, device: str) -> tuple[str, str]:
    """The enrolled device channel named by its enrollment id (UDID) or serial number, with the
    serial number a device licence is for."""
    found = devices.find_device(device)
    if found is None:
        raise VppNotFound(f"no device with id or serial number {device!r}")
    if not found.enrolled:
        raise VppConflict(f"device {found.id} is not enrolled (it checked out or has not finished enrolling)")
    if not found.serial_number:
        raise VppConflict(f"device {found.id} has not told its serial number; a device licence needs it")
    return found.id, found.serial_number


def locate_asset(
    store: VppStore, adam_id: Any, location: str | None, pricing: str | None, active: list[str]
) -> tuple[str, dict[str, Any]]:
    if location is not None:
        store.require(location)
        return location, licences.find_asset(store, location, adam_id, pricing)
    holders = [name for name in active if store.assets(name, str(adam_id))]
    if not holders:
        raise VppNotFound(
            f"no connected Apps and Books location has licences for adamId {adam_id}; "
            "buy them in Apple Business/School Manager and run `russet vpp sync NAME`",
        )
    if len(holders) > 1:
        raise VppError(
            f"adamId {adam_id} is in several locations ({', '.join(holders)}): name one with --location"
        )
    return holders[0], licences.find_asset(store, holders[0], adam_id, pricing)


class Installs:
    """App installs: started by an admin, moved on by stored results, notifications and the tick."""

    def __init__(
        self,
        engine: Engine,
        store: VppStore,
        client_for: Callable[[str], VppClient],
        devices: DeviceLookup,
        commands: CommandSender,
        *,
        poll_every: timedelta,
    ) -> None:
        self._engine = engine
        self._store = store
        self._client_for = client_for  # the location's client, refusing an expired or taken-over one
        self._devices = devices
        self._commands = commands
        self._every = poll_every  # how often a device is asked for its ManagedApplicationList

    async def install(
        self,
        device: str,
        adam_id: Any,
        *,
        location: str | None = None,
        pricing: str | None = None,
        management_flags: int | None = 1,
        created_by: str | None = None,
    ) -> dict[str, Any]:
        """License the app to the device (by serial number) if needed, then queue its install."""
        with apple_errors(location or "?"):
            return await self._install(device, adam_id, location, pricing, management_flags, created_by)

    async def _install(
        self,
        device: str,
        adam_id: Any,
        location: str | None,
        pricing: str | None,
        management_flags: int | None,
        created_by: str | None,
    ) -> dict[str, Any]:
        store = self._store
        device_id, serial = require_device(self._devices, device)
        name, asset = locate_asset(store, adam_id, location, pricing, store.active_names())
        if asset["product_type"] == "Book":
            raise VppError(f"adamId {asset['adam_id']} is a book; InstallApplication installs apps")
        if not asset["device_assignable"]:
            raise VppError(
                f"app {asset['adam_id']} cannot be licensed to devices (Apple: not device-assignable)"
            )
        i = vpp_installs.c
        with reading(self._engine) as conn:
            running = conn.execute(
                select(i.id).where(
                    i.enrollment_id == device_id, i.adam_id == asset["adam_id"], i.status.in_(ACTIVE)
                )
            ).scalar()
        if running is not None:
            return {
                **self.show(running),
                "note": "an install of this app on this device is already under way",
            }
        held = [
            lic
            for lic in store.licences(name, adam_id=asset["adam_id"], subject=serial)
            if lic["subject_type"] == "device" and lic["pricing_param"] == asset["pricing_param"]
        ]
        licence = None
        if not held or held[0]["status"] == "failed":
            licence = await licences.assign(
                store,
                self._client_for(name),
                asset,
                [serial],
                [],
                reason=f"app install on {device_id}",
            )
        elif held[0]["status"] in RELEASING:
            raise VppConflict(
                f"the device's licence for {asset['adam_id']} is being taken back; try again once it is"
            )
        now = utcnow()
        with self._engine.begin() as conn:
            install_id = conn.execute(
                insert(vpp_installs)
                .values(
                    location=name,
                    enrollment_id=device_id,
                    serial_number=serial,
                    adam_id=asset["adam_id"],
                    pricing_param=asset["pricing_param"],
                    status="licensing",
                    management_flags=management_flags,
                    created_by=created_by,
                    created_at=now,
                    updated_at=now,
                )
                .returning(i.id)
            ).scalar_one()
        self.advance(only=install_id)
        out = self.show(install_id)
        if licence is not None:
            out["licence_events"] = licence["events"]
        return out

    def advance(self, *, only: int | None = None, force: bool = False) -> dict[str, int]:
        """Move every unfinished install on as far as stored results allow; queue what is next.

        `force` asks devices for their ManagedApplicationList again without waiting the poll interval.
        """
        i = vpp_installs.c
        query = select(vpp_installs).where(i.status.in_(ACTIVE))
        if only is not None:
            query = query.where(i.id == only)
        with reading(self._engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.order_by(i.id))]
        moved: dict[str, int] = {}
        every = self._every
        for row in rows:
            try:
                outcome = self._advance_one(row, every, force)
            except Exception:  # one install's trouble does not stop the others
                log.exception("could not advance app install %s", row["id"])
                continue
            if outcome:
                moved[outcome] = moved.get(outcome, 0) + 1
        return moved

    def _advance_one(self, row: dict[str, Any], every: timedelta, force: bool) -> str | None:
        now = utcnow()
        created = as_utc(row["created_at"])
        assert created is not None
        if row["status"] == "licensing":
            return self._after_licence(row)
        if row["status"] == "queued":
            command = self._commands.command_status(row["install_command_uuid"] or "")
            if command is None:
                return self._finish(row, "failed", reason="the InstallApplication command is gone")
            if command["status"] in ("acknowledged", "error", "format_error", "cancelled", "undeliverable"):
                return self._after_install_command(row, command)
        elif row["status"] == "installing":
            listed = (
                self._commands.command_status(row["list_command_uuid"]) if row["list_command_uuid"] else None
            )
            if listed is not None and listed["status"] == "acknowledged" and listed["result"]:
                status = _app_status(listed["result"], row["bundle_id"])
                if status in INSTALLED_STATES:
                    return self._finish(row, "installed", state=status)
                if status in FAILED_STATES:
                    return self._finish(row, "failed", state=status, reason=f"the device reports {status}")
                if status is not None and status != row["state"]:
                    self._set(row["id"], state=status)
            waiting = listed is not None and listed["status"] in ("queued", "sent", "notnow")
            if not waiting and now - created < GIVE_UP_AFTER:
                return self._ask_list(row, now, every, force)
        if now - created >= GIVE_UP_AFTER:
            return self._finish(
                row,
                "failed",
                reason=f"not installed within {GIVE_UP_AFTER}; last state {row['state'] or 'unknown'}",
            )
        return None

    def _after_licence(self, row: dict[str, Any]) -> str | None:
        lc = vpp_licences.c
        with reading(self._engine) as conn:
            licence = conn.execute(
                select(lc.status, lc.error_message).where(
                    lc.location == row["location"],
                    lc.adam_id == row["adam_id"],
                    lc.pricing_param == row["pricing_param"],
                    lc.subject_type == "device",
                    lc.subject == row["serial_number"],
                )
            ).first()
        if licence is None:
            return self._finish(
                row, "failed", reason="the device's licence was taken back before the install"
            )
        if licence.status == "failed":
            return self._finish(row, "failed", reason=f"Apple refused the licence: {licence.error_message}")
        if licence.status != "assigned":
            return None  # still being assigned (or taken back): wait for Apple's answer
        i = vpp_installs.c
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(vpp_installs)
                .where(i.id == row["id"], i.status == "licensing")
                .values(status="queued", updated_at=utcnow())
            ).rowcount
        if not claimed:
            return None  # another process got here first
        command: dict[str, Any] = {
            "RequestType": "InstallApplication",
            "iTunesStoreID": int(row["adam_id"]),
            "Options": {"PurchaseMethod": 1},
        }
        if row["management_flags"]:
            command["ManagementFlags"] = row["management_flags"]
        try:
            sent = self._commands.send_command([row["enrollment_id"]], command, created_by=CREATED_BY)
        except RussetError as exc:
            return self._finish(row, "failed", reason=f"could not queue InstallApplication: {exc}")
        self._set(row["id"], install_command_uuid=sent["commands"][0]["command_uuid"])
        return "queued"

    def _after_install_command(self, row: dict[str, Any], command: dict[str, Any]) -> str:
        result = _plist(command["result"])
        state = result.get("State") if isinstance(result.get("State"), str) else None
        bundle = result.get("Identifier") if isinstance(result.get("Identifier"), str) else None
        if command["status"] != "acknowledged":
            why = result.get("RejectionReason") or command["status_reason"] or command["status"]
            return self._finish(row, "failed", state=state, reason=f"InstallApplication: {why}")
        if state in INSTALLED_STATES:
            return self._finish(row, "installed", state=state, bundle_id=bundle)
        if state in FAILED_STATES:
            return self._finish(
                row, "failed", state=state, bundle_id=bundle, reason=f"the device reports {state}"
            )
        # The first ManagedApplicationList is asked one poll interval from now: the app needs time.
        self._set(row["id"], status="installing", state=state, bundle_id=bundle, list_asked_at=utcnow())
        return "installing"

    def _ask_list(self, row: dict[str, Any], now: Any, every: timedelta, force: bool) -> str | None:
        i = vpp_installs.c
        due = i.list_asked_at.is_(None) | (i.list_asked_at <= now - every)
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(vpp_installs)
                .where(i.id == row["id"], i.status == "installing", *(() if force else (due,)))
                .values(list_asked_at=now, updated_at=now)
            ).rowcount
        if not claimed:
            return None
        try:
            sent = self._commands.send_command(
                [row["enrollment_id"]], {"RequestType": "ManagedApplicationList"}, created_by=CREATED_BY
            )
        except RussetError as exc:
            return self._finish(row, "failed", reason=f"could not queue ManagedApplicationList: {exc}")
        self._set(row["id"], list_command_uuid=sent["commands"][0]["command_uuid"])
        return "asked"

    def _set(self, install_id: int, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(vpp_installs)
                .where(vpp_installs.c.id == install_id)
                .values(**values, updated_at=utcnow())
            )

    def _finish(self, row: dict[str, Any], status: str, **values: Any) -> str:
        i = vpp_installs.c
        values = {k: (v[:500] if isinstance(v, str) else v) for k, v in values.items()}
        with self._engine.begin() as conn:
            conn.execute(
                update(vpp_installs)
                .where(i.id == row["id"], i.status.in_(ACTIVE))
                .values(status=status, updated_at=utcnow(), **values)
            )
        return status

    def show(self, install_id: int) -> dict[str, Any]:
        with reading(self._engine) as conn:
            row = conn.execute(select(vpp_installs).where(vpp_installs.c.id == install_id)).first()
        if row is None:
            raise VppNotFound(f"no app install {install_id}")
        return _out(dict(row._mapping))

    def listing(
        self, *, device: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        i = vpp_installs.c
        query = select(vpp_installs)
        if device is not None:
            query = query.where(or_(i.enrollment_id == device, func.upper(i.serial_number) == device.upper()))
        if status is not None:
            query = query.where(i.status == status)
        with reading(self._engine) as conn:
            return [_out(dict(r._mapping)) for r in conn.execute(query.order_by(i.id.desc()).limit(limit))]


def _app_status(raw: bytes, bundle_id: str | None) -> str | None:
    apps = _plist(raw).get("ManagedApplicationList")
    if not isinstance(apps, dict) or not bundle_id:
        return None
    entry = apps.get(bundle_id)
    status = entry.get("Status") if isinstance(entry, dict) else None
    return status if isinstance(status, str) else None


def _plist(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = plists.loads(raw)  # bounded: a stored report is the device's bytes
    except plists.PlistRejected:  # unreadable (or cut at RUSSET_MAX_RESULT_BYTES): it tells nothing
        return {}
    return value if isinstance(value, dict) else {}


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _iso(value: datetime) -> str:
    when = as_utc(value)
    assert when is not None
    return when.isoformat()
