"""`AppCatalogue`: the apps an admin can assign, their hosted downloads, and the Apps and Books
licences the reconciler asks for.

Two kinds of app:
- `vpp`: an Apps and Books app, named by its adamId (it must be among a connected location's
  synced assets) and its bundle id (what ManagedApplicationList and RemoveApplication use; Apple's
  asset listing does not give it). InstallApplication names it by `iTunesStoreID` with
  PurchaseMethod 1, after a device licence is associated.
- `enterprise`: an uploaded `.ipa`/`.pkg` Russet hosts, or an uploaded manifest (its package URLs
  the admin's). InstallApplication gets a ManifestURL with a per-device, expiring token
  (`russet.apps.tokens`); the device fetches it from `/apps/download/...` (`russet.apps.http`).

Licences: the reconciler runs synchronously in its pass and Apple answers asynchronously, so the
reconciler only *asks* (`licence_for`, `return_licence`: rows in `app_licence_requests`), and the
`apps.licences` task (`work_licences`) talks to Apple through the Apps and Books port, then names
the devices whose licence changed so the reconciler looks at them again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from russet.apps.packages import (
    MAX_PACKAGE_BYTES,
    check_bundle_id,
    hosted_manifest,
    read_manifest,
    read_package,
)
from russet.apps.ports import AppsAndBooks, AppUsers, Asset, DeviceLookup
from russet.apps.store import AppStore
from russet.apps.tokens import DownloadTokens
from russet.kernel.errors import Conflict, Invalid, NotFound, RussetError, TooLarge
from russet.storage.db import utcnow

log = logging.getLogger("russet.apps")
RESERVED = frozenset({"install", "installs", "upload"})  # paths of /api/v1/apps
ADAM_ID_DIGITS = 20
RELEASING = ("disassociating", "revoking")
READY, WAITING, FAILED = "ready", "waiting", "failed"
DOWNLOAD_PREFIX = "/apps/download/"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 100 or not name.isprintable():
        raise Invalid("name: 1 to 100 printable characters")
    if name.strip() != name or name.isdigit() or name.lower() in RESERVED:
        raise Invalid(
            f"name {name!r}: no leading or trailing spaces, not only digits, not {sorted(RESERVED)}"
        )
    return name


def _ident(ref: str | int) -> int | str:
    if isinstance(ref, int):
        return ref
    return int(ref) if ref.isdigit() and len(ref) < 19 else ref


class AppCatalogue:
    def __init__(
        self,
        engine: Engine,
        package_dir: Path,
        tokens: DownloadTokens,
        public_url: str,
        vpp: AppsAndBooks,
        devices: DeviceLookup,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = AppStore(engine)
        self.package_dir = package_dir
        self.tokens = tokens
        self.public_url = public_url.rstrip("/")
        self.vpp = vpp
        self.devices = devices
        self.clock = clock
        self._users: list[AppUsers] = []

    def add_users(self, users: AppUsers) -> None:
        self._users.append(users)

    # -- the catalogue -------------------------------------------------------------------------

    def list_apps(self) -> list[dict[str, Any]]:
        return [_out(a) for a in self.store.all()]

    def get(self, ident: int | str) -> dict[str, Any]:
        return _out(self.store.get(_ident(ident)))

    def add_vpp(
        self,
        name: str,
        adam_id: Any,
        bundle_id: Any,
        *,
        location: str | None = None,
        pricing: str | None = None,
        title: str | None = None,
        created_by: str,
    ) -> dict[str, Any]:
        """An Apps and Books app: it must be among a connected location's assets, device-assignable."""
        _check_name(name)
        adam = str(adam_id)
        if isinstance(adam_id, bool) or not adam.isdigit() or len(adam) > ADAM_ID_DIGITS:
            raise Invalid(f"adam_id {adam_id!r} is not an App Store id (digits)")
        check_bundle_id(bundle_id)
        if pricing not in (None, "STDQ", "PLUS"):
            raise Invalid("pricing: STDQ or PLUS")
        asset = self.vpp.asset(adam, location=location, pricing=pricing)  # NotFound: not licensed anywhere
        if asset.product_type == "Book":
            raise Invalid(f"adamId {adam} is a book; the catalogue holds apps")
        if not asset.device_assignable:
            raise Invalid(f"app {adam} cannot be licensed to devices (Apple: not device-assignable)")
        values = {
            "name": name,
            "kind": "vpp",
            "bundle_id": bundle_id,
            "title": (title or None) and title[:255],
            "adam_id": adam,
            "pricing": pricing,
            "location": location,
            "content_hash": hashlib.sha256(f"vpp:{adam}:{bundle_id}".encode()).hexdigest(),
            "created_by": created_by[:100],
            "created_at": self.clock(),
        }
        return self.get(self.store.add(values))

    def add_manifest(self, name: str, data: bytes, *, created_by: str) -> dict[str, Any]:
        """An enterprise app by its manifest (the package is hosted elsewhere, over https)."""
        _check_name(name)
        canonical, facts = read_manifest(data)
        values = {
            "name": name,
            "kind": "enterprise",
            "bundle_id": facts.bundle_id,
            "version": facts.version,
            "title": facts.title,
            "manifest": canonical.decode(),
            "content_hash": hashlib.sha256(canonical).hexdigest(),
            "created_by": created_by[:100],
            "created_at": self.clock(),
        }
        return self.get(self.store.add(values))

    def add_package(
        self,
        name: str,
        filename: str,
        stream: IO[bytes],
        *,
        bundle_id: str | None = None,
        version: str | None = None,
        created_by: str,
    ) -> dict[str, Any]:
        """An enterprise app Russet hosts: the `.ipa`/`.pkg` is copied (bounded), read, and kept
        under its SHA-256; nothing is kept when anything is wrong."""
        _check_name(name)
        if bundle_id is not None:
            check_bundle_id(bundle_id)
        self.package_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.package_dir, prefix=".upload-")
        tmp = Path(tmp_name)
        final: Path | None = None
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(1024 * 1024):
                    size += len(chunk)
                    if size > MAX_PACKAGE_BYTES:
                        raise TooLarge(f"the package is larger than {MAX_PACKAGE_BYTES // (1024 * 1024)} MiB")
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise Invalid("the package is empty")
            facts = read_package(tmp, filename, bundle_id, version)
            sha = digest.hexdigest()
            final = self.package_dir / f"{sha}.{facts.kind}"
            existed = final.exists()
            os.replace(tmp, final)
            values = {
                "name": name,
                "kind": "enterprise",
                "bundle_id": facts.bundle_id,
                "version": facts.version,
                "title": facts.title,
                "package_sha256": sha,
                "package_size": size,
                "package_kind": facts.kind,
                "content_hash": sha,
                "created_by": created_by[:100],
                "created_at": self.clock(),
            }
            try:
                new_id = self.store.add(values)
            except RussetError:
                if not existed and not self.store.package_in_use(sha):
                    final.unlink(missing_ok=True)
                raise
        finally:
            tmp.unlink(missing_ok=True)
        return self.get(new_id)

    def delete(self, ident: int | str) -> dict[str, Any]:
        app = self.store.get(_ident(ident))
        users = [u for users in self._users for u in users.uses_of_app(app["name"])]
        if users:
            raise Conflict(f"app {app['name']!r} is used by {', '.join(users)}; take it out of them first")
        self.store.delete(app["id"])
        self.store.forget_wishes(app["id"])
        sha = app["package_sha256"]
        if sha and not self.store.package_in_use(sha):
            (self.package_dir / f"{sha}.{app['package_kind']}").unlink(missing_ok=True)
        return {"deleted": app["id"], "name": app["name"]}

    # -- what blueprints use ---------------------------------------------------------------------

    def resolve(self, ref: str | int) -> dict[str, Any]:
        """The app a blueprint names (by name or id); NotFound when the catalogue has none."""
        return self.store.get(_ident(ref))

    def install_command(
        self, ref: str, device_id: str, configuration: dict[str, Any] | None
    ) -> dict[str, Any]:
        """InstallApplication for one device: by adamId for an Apps and Books app, by a ManifestURL
        carrying this device's download token for an enterprise app. ManagementFlags 1: the app
        goes when the device leaves management."""
        app = self.store.get(_ident(ref))
        command: dict[str, Any] = {"RequestType": "InstallApplication", "ManagementFlags": 1}
        if app["kind"] == "vpp":
            command.update({"iTunesStoreID": int(app["adam_id"]), "Options": {"PurchaseMethod": 1}})
        else:
            token = self.tokens.make(app["id"], device_id, self.clock())
            command["ManifestURL"] = f"{self.public_url}{DOWNLOAD_PREFIX}{token}/manifest.plist"
        if configuration:
            command["Configuration"] = configuration
        return command

    def shortfall(self, ref: str, device_ids: Sequence[str]) -> str | None:
        """Why the app cannot be licensed to all these devices now (too few licences left), or None.
        Devices already holding a licence need none."""
        app = self.store.get(_ident(ref))
        if app["kind"] != "vpp" or not device_ids:
            return None
        asset = self._asset(app)
        serials = [s for s in (self._serial(d) for d in device_ids) if s]
        need = len(set(serials) - self.vpp.device_licences(asset, serials))
        if need > asset.available:
            return (
                f"app {app['name']!r} (adamId {asset.adam_id}): {need} devices in scope need a licence, "
                f"location {asset.location!r} has {asset.available} left; buy more or narrow the scope"
            )
        return None

    def licence_for(self, device_id: str, ref: str, *, retry: bool = False) -> tuple[str, str | None]:
        """Whether the device may be sent the app's InstallApplication: ("ready", None), ("waiting",
        why) while a licence is being assigned (asked here when missing), ("failed", why)."""
        app = self.store.get(_ident(ref))
        if app["kind"] != "vpp":
            return READY, None
        serial = self._serial(device_id)
        if not serial:
            return FAILED, "the device has not told its serial number; a device licence needs it"
        try:
            asset = self._asset(app)
        except RussetError as exc:
            return FAILED, str(exc)
        licence = self.vpp.licence(asset, serial)
        if licence is not None and licence.status == "assigned":
            return READY, None
        wish = self.store.wish(app["id"], serial)
        if licence is not None and licence.status == "failed" and not retry:
            return FAILED, f"Apple refused the licence: {licence.error or 'no reason given'}"
        if wish is not None and wish["action"] == "assign":
            if wish["state"] == FAILED and not retry:
                return FAILED, wish["error"]
            if wish["state"] != FAILED:
                return WAITING, "waiting for Apple to assign the licence"
        if licence is None and asset.available < 1:
            return FAILED, (
                f"app {app['name']!r} (adamId {asset.adam_id}): no licence left in location "
                f"{asset.location!r}"
            )
        self.store.request(app["id"], serial, device_id, "assign", self.clock())
        return WAITING, "a licence is asked of Apple"

    def return_licence(self, device_id: str, ref: str) -> None:
        """The app left the device (or never got there): give its device licence back."""
        try:
            app = self.store.get(_ident(ref))
        except NotFound:
            return
        if app["kind"] != "vpp":
            return
        serial = self._serial(device_id)
        if serial:
            self.store.request(app["id"], serial, device_id, "return", self.clock())

    def _serial(self, device_id: str) -> str | None:
        found = self.devices.find_device(device_id)
        return found.serial_number.upper() if found is not None and found.serial_number else None

    def _asset(self, app: dict[str, Any]) -> Asset:
        return self.vpp.asset(app["adam_id"], location=app["location"], pricing=app["pricing"])

    # -- the licence task ------------------------------------------------------------------------

    async def work_licences(self) -> dict[str, Any]:
        """Move licence requests on with Apple; the devices whose licence changed, for the reconciler."""
        done = {"assigned": 0, "returned": 0, "failed": 0}
        changed: set[str] = set()
        for wish in self.store.open_wishes():
            try:
                outcome = await self._work(wish)
            except RussetError as exc:
                log.warning("app licence for %s: %s", wish["serial"], exc)
                self.store.move(wish, state=FAILED, error=str(exc)[:500], now=self.clock())
                outcome = FAILED
            if outcome in done:
                done[outcome] += 1
            if outcome is not None:
                changed.add(wish["device_id"])
        return {**done, "devices": sorted(changed)}

    async def _work(self, wish: dict[str, Any]) -> str | None:
        now = self.clock()
        try:
            app = self.store.get(wish["app_id"])
        except NotFound:
            self.store.move(wish, state=None, error=None, now=now)
            return None
        asset = self._asset(app)
        licence = self.vpp.licence(asset, wish["serial"])
        status = licence.status if licence is not None else None
        if wish["action"] == "assign":
            if status == "assigned":
                return "assigned" if self.store.move(wish, state=None, error=None, now=now) else None
            if wish["state"] == "todo":
                if status in RELEASING:
                    return None  # a licence being taken back: assign once it is gone
                if status != "associating":
                    await self.vpp.assign(asset, wish["serial"])
                self.store.move(wish, state="sent", error=None, now=now)
                return None
            if status == "failed" or status is None:
                why = (licence.error if licence else None) or "Apple did not assign the licence"
                self.store.move(wish, state=FAILED, error=f"Apple refused the licence: {why}"[:500], now=now)
                return FAILED
            return None
        if status is None or (wish["state"] == "sent" and status not in RELEASING):
            return "returned" if self.store.move(wish, state=None, error=None, now=now) else None
        if wish["state"] == "todo" and status not in RELEASING:
            await self.vpp.unassign(asset, wish["serial"])
            self.store.move(wish, state="sent", error=None, now=now)
        return None

    # -- downloads (the device side) -------------------------------------------------------------

    def manifest(self, token: str) -> bytes:
        """The manifest a device's ManifestURL names; Refused for a bad or expired token."""
        grant = self.tokens.check(token, self.clock())
        app = self.store.get(grant.app_id)
        if app["manifest"] is not None:
            return str(app["manifest"]).encode()
        url = f"{self.public_url}{DOWNLOAD_PREFIX}{token}/package.{app['package_kind']}"
        return hosted_manifest(
            url,
            app["package_kind"],
            app["bundle_id"],
            app["version"],
            app["title"] or app["name"],
            app["package_sha256"],
            app["package_size"],
        )

    def package(self, token: str) -> tuple[Path, str]:
        """The hosted package file and its download name; Refused for a bad or expired token."""
        grant = self.tokens.check(token, self.clock())
        app = self.store.get(grant.app_id)
        if not app["package_sha256"]:
            raise NotFound("this app's package is not hosted by Russet")
        path = self.package_dir / f"{app['package_sha256']}.{app['package_kind']}"
        if not path.is_file():
            raise NotFound("the package file is missing from the data directory")
        return path, f"{app['bundle_id']}.{app['package_kind']}"


def _out(app: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in app.items() if k not in ("manifest", "content_hash")}
    out["created_at"] = _iso(app["created_at"])
    out["hosted"] = bool(app["package_sha256"])
    out["from_manifest"] = app["manifest"] is not None
    return out
