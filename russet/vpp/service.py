"""The Apps and Books use cases, shared by the REST API, the CLI, Apple's notifications and the
server's periodic work.

`VppService` is built once by the composition root (`russet.runtime`) with what it needs: the
store (engine and secret box), the gateway, the connection registry, the MDM core's ports for app
installs (`russet.vpp.ports`), and the configured URLs and intervals. Calls that reach Apple are
coroutines: the API awaits them on the server's event loop (where the gateway keeps its
connections); the CLI runs them with `Russet.run()`. Results are JSON-ready dicts; errors are
`VppError`s with a message for people.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine

from russet import __version__
from russet.apple.connection import admin as kit
from russet.apple.connections import ConnectionRegistry
from russet.apple.gateway import AppleGateway, Call
from russet.kernel.errors import Invalid, Refused, Unavailable
from russet.kernel.tasks import PeriodicTask
from russet.vpp import licences, signed_in, users
from russet.vpp.client import DEFAULT_PER_SECOND, VppClient
from russet.vpp.errors import (
    ProtocolError,
    TakeoverNeeded,
    TokenExpired,
    VppConflict,
    VppError,
    apple_errors,
)
from russet.vpp.installs import Installs
from russet.vpp.ports import CommandSender, DeviceLookup, SignedInPeople
from russet.vpp.records import notification_url, parse_notification
from russet.vpp.store import NotYet, VppStore, secret_hash
from russet.vpp.sync import refresh_limits, sync_assets
from russet.vpp.token import expiry_warning, parse_token

log = logging.getLogger("russet.vpp")
NOTIFICATION_TYPES = ["ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT"]
MDM_NAME = "Russet"


class NotificationRefused(Refused):
    """A notification for an unknown or disconnected location, or with the wrong secret."""


class VppService(kit.ConnectionService[VppStore]):
    def __init__(
        self,
        store: VppStore,
        gateway: AppleGateway,
        connections: ConnectionRegistry,
        devices: DeviceLookup,
        commands: CommandSender,
        *,
        engine: Engine,
        config: kit.ConnectionConfig,
        poll_seconds: int,
        people: SignedInPeople | None = None,
    ) -> None:
        super().__init__(store, gateway, connections, config)
        self._engine = engine
        self._people = people  # who signed in before enrollment (sync_people)
        self._devices = devices  # and, through the same port, which devices left
        self._every = timedelta(seconds=poll_seconds)
        self.installs = Installs(engine, store, self.client_for, devices, commands, poll_every=self._every)

    def client_for(self, name: str) -> VppClient:
        """The location's client, refusing a location taken over or an expired token first."""
        location = self.store.require(name)
        if location["taken_over_by"]:
            raise VppConflict(
                f"Apps and Books location {name!r} is managed by another MDM "
                f"({location['taken_over_by'].get('name')!r}); Russet stopped using it. Run "
                f"`russet vpp add {name} FILE.vpptoken --take-over` to manage it from Russet again",
            )
        token = self.store.token(name)
        kit.refuse_expired(  # Apple would only answer 401 (9621)
            token.expires_at,
            TokenExpired,
            f"the content token of location {name!r} expired on {{expiry}}; download a new one from "
            f"Apple Business/School Manager and load it with `russet vpp add {name} FILE`",
        )
        per_second = location["limits"].get("maxRequestPerSecond") or DEFAULT_PER_SECOND
        return VppClient(
            self._gateway,
            name,
            token,
            self._base_url,
            owner_id=location["mdm_id"],
            per_second=float(per_second),
            on_takeover=partial(self._taken_over, name),
        )

    def _taken_over(self, name: str, owner: dict[str, Any]) -> None:
        log.warning(
            "Apps and Books %r is now managed by another MDM (%r): Russet stops using it",
            name,
            owner.get("name"),
        )
        self.store.save_config(name, {"taken_over_by": owner})

    # -- locations -----------------------------------------------------------------------------------

    async def add(self, name: str, data: bytes, *, take_over: bool = False) -> dict[str, Any]:
        """Load a location's content token: store it sealed, make Russet the location's MDM (asking
        before taking it over from another one), register the notification URL, read the assets.

        Until Russet is the location's MDM nothing is kept: a refusal puts everything back."""
        kit.check_name(name, "location")
        token = parse_token(data)
        store = self.store
        existing = store.location(name)
        mdm_id = existing["mdm_id"] if existing else str(uuid.uuid4())
        snapshot = store.store_token(name, token, mdm_id, self._connections)
        public = self._public_url
        url = notification_url(public, name) if public.startswith("https://") else None
        secret = secrets.token_urlsafe(32) if url else None
        try:
            with apple_errors(name):
                client = VppClient(self._gateway, name, token, self._base_url)
                limits = await refresh_limits(store, client)
                per_second = limits.get("maxRequestPerSecond") or DEFAULT_PER_SECOND
                client = VppClient(self._gateway, name, token, self._base_url, per_second=float(per_second))
                before = await client.client_config()  # who manages the location now
                owner = before.get("mdmInfo") if isinstance(before.get("mdmInfo"), dict) else None
                if owner and owner.get("id") != mdm_id and not take_over:
                    raise TakeoverNeeded(name, owner)
                info = {"id": mdm_id, "name": MDM_NAME, "metadata": f"Russet {__version__} at {public}"[:255]}
                config = await client.set_client_config(info, url, secret, NOTIFICATION_TYPES)
        except BaseException:
            store.restore(name, snapshot, self._connections)
            raise
        store.save_config(
            name,
            {
                "location_name": _text(config.get("locationName")),
                "country": _text(config.get("countryISO2ACode"), 10),
                "uid": _text(config.get("uId"), 100),
                "default_platform": _text(config.get("defaultPlatform"), 40),
                "website_url": _text(config.get("websiteURL")),
                "limits": limits,
                "taken_over_by": None,
                "notify_secret_hash": secret_hash(secret) if secret else None,
                "notification_url": url,
            },
        )
        out: dict[str, Any] = {
            "name": name,
            "org_name": token.org_name,
            "location_name": config.get("locationName"),
            "token_expires_at": kit.iso(token.expires_at),
            "warning": expiry_warning(token.expires_at),
            "took_over_from": owner if owner and owner.get("id") != mdm_id else None,
            "notification_url": url,
            "notifications": "registered"
            if url
            else "off: RUSSET_PUBLIC_URL is not https, events are polled",
            "sync": None,
            "sync_error": None,
        }
        try:
            out["sync"] = await self.sync_now(name)
        except VppError as exc:  # the location is set up; the listing can be read again later
            out["sync_error"] = str(exc)
        return out

    def _summary(self, name: str, connections: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
        location = self.store.require(name)
        return {
            "name": name,
            **kit.registry_state(connections, "vpp", name, absent="disconnected"),
            "org_name": location["org_name"],
            "location_name": location["location_name"],
            "token_expires_at": kit.iso(location["token_expires_at"]),
            "warning": expiry_warning(location["token_expires_at"]) if location["has_token"] else None,
            "notifications": bool(location["notification_url"]),
            **self.store.counts(name),
            "last_sync_at": kit.iso(location["last_sync_at"]),
            "last_error": location["last_error"],
        }

    def list_locations(self) -> list[dict[str, Any]]:
        return self._summaries(self.store.names())

    def show(self, name: str) -> dict[str, Any]:
        out = self._shown(name)
        location = self.store.require(name)
        out.update(
            {
                "has_token": location["has_token"],
                "token_stored_at": kit.iso(location["token_stored_at"]),
                "mdm_id": location["mdm_id"],
                "notification_url": location["notification_url"],
                "country": location["country"],
                "uid": location["uid"],
                "default_platform": location["default_platform"],
                "website_url": location["website_url"],
                "limits": location["limits"],
                "assets_version": location["assets_version"],
                "taken_over_by": location["taken_over_by"],
                "last_attempt_at": kit.iso(location["last_attempt_at"]),
            }
        )
        return out

    async def sync_now(self, name: str) -> dict[str, Any]:
        with apple_errors(name):
            report = await sync_assets(self._connections, self.store, self.client_for(name))
        report["warning"] = expiry_warning(self.store.require(name)["token_expires_at"])
        return report

    def assets(self, name: str) -> dict[str, Any]:
        self.store.require(name)
        return {"location": name, "assets": [kit.jsonable(a) for a in self.store.assets(name)]}

    # -- people --------------------------------------------------------------------------------------

    def list_users(self, name: str) -> dict[str, Any]:
        self.store.require(name)
        return {"location": name, "users": [kit.jsonable(u) for u in self.store.users(name)]}

    async def create_user(
        self, name: str, *, email: Any = None, managed_apple_id: Any = None
    ) -> dict[str, Any]:
        with apple_errors(name):
            client = self.client_for(name)
            created = await users.create(self.store, client, email=email, managed_apple_id=managed_apple_id)
        return kit.jsonable(created)

    async def sync_people(self, name: str) -> dict[str, Any]:
        """Register as users of the location the people who signed in before enrollment (by
        email) and are not users yet: what was created, skipped (and why), failed, and how many
        are left for another run."""
        self.client_for(name)  # an unknown, taken-over or expired location is refused first
        emails = [] if self._people is None else self._people.emails(signed_in.MAX_PEOPLE)
        todo = signed_in.plan(emails, self.store.users(name))
        created: list[dict[str, Any]] = []
        failed: list[dict[str, str]] = []
        for email in todo.create:
            try:
                made = await self.create_user(name, email=email)
            except VppError as exc:  # this person only: Apple refused them, or they were just added
                failed.append({"email": email, "reason": str(exc)})
                continue
            created.append(
                {"email": email, "client_user_id": made["client_user_id"], "event_id": made["event_id"]}
            )
        return {
            "location": name,
            "created": created,
            "skipped": todo.skipped,
            "failed": failed,
            "remaining": todo.remaining,
        }

    async def update_user(
        self, name: str, client_user_id: str, *, email: Any = None, managed_apple_id: Any = None
    ) -> dict[str, Any]:
        with apple_errors(name):
            client = self.client_for(name)
            updated = await users.update(
                self.store, client, client_user_id, email=email, managed_apple_id=managed_apple_id
            )
        return kit.jsonable(updated)

    async def retire_user(self, name: str, client_user_id: str) -> dict[str, Any]:
        with apple_errors(name):
            return kit.jsonable(await users.retire(self.store, self.client_for(name), client_user_id))

    # -- licences and events -------------------------------------------------------------------------

    def list_licences(
        self, name: str, *, adam_id: str | None = None, subject: str | None = None
    ) -> dict[str, Any]:
        self.store.require(name)
        rows = self.store.licences(name, adam_id=adam_id, subject=subject)
        return {"location": name, "licences": [kit.jsonable(r) for r in rows]}

    async def assign(
        self, name: str, adam_id: Any, *, serials: Any = (), users: Any = (), pricing: str | None = None
    ) -> dict[str, Any]:
        """Assign an asset's licences to devices and people (all or none are reserved)."""
        asset, cleaned, people = self._licence_request(name, adam_id, serials, users, pricing, "to license")
        with apple_errors(name):
            return await licences.assign(self.store, self.client_for(name), asset, cleaned, people)

    async def unassign(
        self, name: str, adam_id: Any, *, serials: Any = (), users: Any = (), pricing: str | None = None
    ) -> dict[str, Any]:
        """Take an asset's licences back from devices and people."""
        asset, cleaned, people = self._licence_request(
            name, adam_id, serials, users, pricing, "whose licences to take back"
        )
        with apple_errors(name):
            return await licences.unassign(self.store, self.client_for(name), asset, cleaned, people)

    def _licence_request(
        self, name: str, adam_id: Any, serials: Any, users: Any, pricing: str | None, purpose: str
    ) -> tuple[dict[str, Any], list[str], list[str]]:
        """The asset and the checked serial numbers and client user ids of a licence request."""
        self.store.require(name)
        asset = licences.find_asset(self.store, name, adam_id, pricing)
        cleaned = licences.clean_serials(list(serials))
        people = _user_ids(users)
        if not cleaned and not people:
            raise VppError(f"name serial numbers and/or client user ids {purpose}")
        return asset, cleaned, people

    def list_events(self, name: str, *, pending_only: bool = False) -> dict[str, Any]:
        self.store.require(name)
        events = self.store.events(name, pending_only=pending_only)
        return {"location": name, "events": [kit.jsonable(e) for e in events]}

    async def poll_now(self, name: str) -> dict[str, Any]:
        """Ask Apple about every pending event of the location now."""
        with apple_errors(name):
            client = self.client_for(name)
            polled = await licences.poll_events(self.store, client, every=self._every, force=True)
        moved = self.installs.advance()
        return {"location": name, "events": polled, "installs": moved}

    # -- Apple's notifications -----------------------------------------------------------------------

    def receive_notification(self, name: str, secret: str, body: bytes) -> dict[str, Any]:
        """Check, record and apply one notification Apple posted for a location.

        Refused: unknown location or wrong secret; Invalid: malformed (nothing changes);
        Unavailable: about an event not known yet (Apple delivers it again)."""
        store = self.store
        if (
            not secret
            or not self._connections.is_active("vpp", name)
            or not store.verify_secret(name, secret)
        ):
            raise NotificationRefused("unknown location or wrong notification secret")
        try:
            note = parse_notification(body)
        except ProtocolError as exc:
            log.warning("Apps and Books %r: malformed notification refused: %s", name, exc)
            raise Invalid(f"malformed notification: {exc}") from None
        self._gateway.record(
            Call(
                "vpp", name, "POST /vpp/notify (from Apple)", "Apple's news about licences, users or counts"
            ),
            200,
            None,
            note.data,
        )
        try:
            summary = store.apply_notification(name, note)
        except NotYet as exc:
            log.info(
                "Apps and Books %r: notification about event %s not known yet; Apple will retry", name, exc
            )
            raise Unavailable(f"event {exc} is not known yet; deliver the notification again") from None
        if summary is None:
            return {"notification": note.notification_id, "duplicate": True}
        if note.notification_type == "ASSET_MANAGEMENT" and summary.get("applied"):
            self.installs.advance()  # installs waiting for this licence can go on at once
        return {"notification": note.notification_id, **summary}

    # -- the server's periodic work ------------------------------------------------------------------

    def tasks(self) -> list[PeriodicTask]:
        """The server's periodic work (`vpp.tick`, every RUSSET_VPP_POLL_SECONDS), for the root's runner."""
        return [
            self.connection_task(
                "vpp.tick",
                self._every.total_seconds(),
                self.tick,
                "Apps and Books: poll unanswered events, revoke licences of departed devices, re-read "
                "assets when due, move app installs on",
            )
        ]

    async def tick(self) -> dict[str, Any]:
        """Poll events no notification answered, take back licences of devices that left, re-read
        assets when due, and move app installs on. Each location's trouble is its own."""
        outcome: dict[str, Any] = {}
        for name in self.store.active_names():
            done: dict[str, Any] = {}
            try:
                await self._tick_location(name, done)
            except Exception as exc:
                log.warning("Apps and Books %r: %s", name, exc)
                done["error"] = str(exc)
            outcome[name] = done
        outcome["installs"] = self.installs.advance()
        return outcome

    async def _tick_location(self, name: str, done: dict[str, Any]) -> None:
        store = self.store
        with apple_errors(name):
            store.expire_reservations(name, licences.STALE_RESERVATION)
            client = self.client_for(name)
            done["events"] = len(await licences.poll_events(store, client, every=self._every))
            held = licences.assigned_devices(self._engine, name)
            departed = self._devices.departed(held) if held else {}
            if departed:
                done["revoked"] = await licences.revoke_devices(store, client, departed)
            location = store.require(name)
            last = location["last_sync_at"]
            if last is None or datetime.now(UTC) - last >= self.config.sync_every:
                done["sync"] = await sync_assets(self._connections, store, client)
        warning = expiry_warning(location["token_expires_at"])
        if warning:
            log.warning("Apps and Books %r: %s", name, warning)

    # -- installs ------------------------------------------------------------------------------------

    def list_installs(self, *, device: str | None = None, status: str | None = None) -> dict[str, Any]:
        self.installs.advance()  # show the newest state the stored results allow
        return {"installs": self.installs.listing(device=device, status=status)}


def _text(value: Any, limit: int = 500) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _user_ids(values: Any) -> list[str]:
    out = []
    for value in values:
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= 64:
            raise VppError(f"{value!r} is not a client user id")
        out.append(value.strip())
    return list(dict.fromkeys(out))
