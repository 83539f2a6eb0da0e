"""Apps and Books operations shared by the CLI and the REST API, so both behave the same.

Calls that reach Apple are coroutines: the API awaits them on the server's event loop (where the
gateway keeps its connections); the CLI runs them with `Russet.run()`. Results are JSON-ready dicts;
errors are `VppError`s with a message for people.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from russet import __version__
from russet.apple import connection as kit
from russet.runtime import Russet
from russet.vpp import installs, licences, users
from russet.vpp.client import DEFAULT_PER_SECOND, VppClient
from russet.vpp.errors import TakeoverNeeded, TokenExpired, VppConflict, VppError, VppUpstreamFailed
from russet.vpp.notify import notification_url
from russet.vpp.store import VppStore, secret_hash
from russet.vpp.sync import refresh_limits, sync_assets
from russet.vpp.token import expiry_warning, parse_token

log = logging.getLogger("russet.vpp")
NAME = kit.NAME
NOTIFICATION_TYPES = ["ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT"]
MDM_NAME = "Russet"


NOT_CONNECTED = "Apps and Books location {name} is not connected; load its token with `russet vpp add`"
apple_errors = kit.AppleErrors(VppConflict, VppUpstreamFailed, NOT_CONNECTED).translate


def open_store(russet: Russet) -> VppStore:
    return kit.open_sealed(russet, VppStore)


def client_for(russet: Russet, store: VppStore, name: str) -> VppClient:
    location = store.require(name)
    if location["taken_over_by"]:
        raise VppConflict(
            f"Apps and Books location {name!r} is managed by another MDM "
            f"({location['taken_over_by'].get('name')!r}); Russet stopped using it. Run "
            f"`russet vpp add {name} FILE.vpptoken --take-over` to manage it from Russet again",
        )
    token = store.token(name)
    kit.refuse_expired(  # Apple would only answer 401 (9621)
        token.expires_at,
        TokenExpired,
        f"the content token of location {name!r} expired on {{expiry}}; download a new one from "
        f"Apple Business/School Manager and load it with `russet vpp add {name} FILE`",
    )
    per_second = location["limits"].get("maxRequestPerSecond") or DEFAULT_PER_SECOND
    return VppClient(
        russet.gateway,
        name,
        token,
        russet.settings.vpp_url,
        owner_id=location["mdm_id"],
        per_second=float(per_second),
        on_takeover=lambda owner: _taken_over(store, name, owner),
    )


def _taken_over(store: VppStore, name: str, owner: dict[str, Any]) -> None:
    log.warning(
        "Apps and Books %r is now managed by another MDM (%r): Russet stops using it", name, owner.get("name")
    )
    store.save_config(name, {"taken_over_by": owner})


# -- locations ---------------------------------------------------------------------------------------


async def add(russet: Russet, name: str, data: bytes, *, take_over: bool = False) -> dict[str, Any]:
    """Load a location's content token: store it sealed, make Russet the location's MDM (asking
    before taking it over from another one), register the notification URL, read the assets.

    Until Russet is the location's MDM nothing is kept: a refusal puts everything back."""
    if not NAME.match(name):
        raise VppError(
            "a location name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    token = parse_token(data)
    store = open_store(russet)
    existing = store.location(name)
    mdm_id = existing["mdm_id"] if existing else str(uuid.uuid4())
    snapshot = store.store_token(name, token, mdm_id, russet.connections)
    public = russet.settings.public_url
    url = notification_url(public, name) if public.startswith("https://") else None
    secret = secrets.token_urlsafe(32) if url else None
    try:
        with apple_errors(name):
            client = VppClient(russet.gateway, name, token, russet.settings.vpp_url)
            limits = await refresh_limits(store, client)
            per_second = limits.get("maxRequestPerSecond") or DEFAULT_PER_SECOND
            client = VppClient(
                russet.gateway, name, token, russet.settings.vpp_url, per_second=float(per_second)
            )
            before = await client.client_config()  # who manages the location now
            owner = before.get("mdmInfo") if isinstance(before.get("mdmInfo"), dict) else None
            if owner and owner.get("id") != mdm_id and not take_over:
                raise TakeoverNeeded(name, owner)
            info = {"id": mdm_id, "name": MDM_NAME, "metadata": f"Russet {__version__} at {public}"[:255]}
            config = await client.set_client_config(info, url, secret, NOTIFICATION_TYPES)
    except BaseException:
        store.restore(name, snapshot, russet.connections)
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
        "notifications": "registered" if url else "off: RUSSET_PUBLIC_URL is not https, events are polled",
        "sync": None,
        "sync_error": None,
    }
    try:
        out["sync"] = await sync_now(russet, name)
    except VppError as exc:  # the location is set up; the listing can be read again later
        out["sync_error"] = str(exc)
    return out


def _text(value: Any, limit: int = 500) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _summary(
    store: VppStore, name: str, connections: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    location = store.require(name)
    return {
        "name": name,
        **kit.registry_state(connections, "vpp", name, absent="disconnected"),
        "org_name": location["org_name"],
        "location_name": location["location_name"],
        "token_expires_at": kit.iso(location["token_expires_at"]),
        "warning": expiry_warning(location["token_expires_at"]) if location["has_token"] else None,
        "notifications": bool(location["notification_url"]),
        **store.counts(name),
        "last_sync_at": kit.iso(location["last_sync_at"]),
        "last_error": location["last_error"],
    }


def list_locations(russet: Russet) -> list[dict[str, Any]]:
    return kit.summaries(russet, open_store(russet), VppStore.names, _summary)


def show(russet: Russet, name: str) -> dict[str, Any]:
    store = open_store(russet)
    out = _summary(store, name, kit.registry_index(russet))
    location = store.require(name)
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


async def sync_now(russet: Russet, name: str) -> dict[str, Any]:
    store = open_store(russet)
    with apple_errors(name):
        report = await sync_assets(russet, store, client_for(russet, store, name))
    report["warning"] = expiry_warning(store.require(name)["token_expires_at"])
    return report


def assets(russet: Russet, name: str) -> dict[str, Any]:
    store = open_store(russet)
    store.require(name)
    return {"location": name, "assets": [kit.jsonable(a) for a in store.assets(name)]}


# -- users -------------------------------------------------------------------------------------------


def list_users(russet: Russet, name: str) -> dict[str, Any]:
    store = open_store(russet)
    store.require(name)
    return {"location": name, "users": [kit.jsonable(u) for u in store.users(name)]}


async def create_user(
    russet: Russet, name: str, *, email: Any = None, managed_apple_id: Any = None
) -> dict[str, Any]:
    store = open_store(russet)
    with apple_errors(name):
        return kit.jsonable(
            await users.create(
                store, client_for(russet, store, name), email=email, managed_apple_id=managed_apple_id
            )
        )


async def update_user(
    russet: Russet, name: str, client_user_id: str, *, email: Any = None, managed_apple_id: Any = None
) -> dict[str, Any]:
    store = open_store(russet)
    with apple_errors(name):
        return kit.jsonable(
            await users.update(
                store,
                client_for(russet, store, name),
                client_user_id,
                email=email,
                managed_apple_id=managed_apple_id,
            )
        )


async def retire_user(russet: Russet, name: str, client_user_id: str) -> dict[str, Any]:
    store = open_store(russet)
    with apple_errors(name):
        return kit.jsonable(await users.retire(store, client_for(russet, store, name), client_user_id))


# -- licences and events -----------------------------------------------------------------------------


def list_licences(
    russet: Russet, name: str, *, adam_id: str | None = None, subject: str | None = None
) -> dict[str, Any]:
    store = open_store(russet)
    store.require(name)
    rows = store.licences(name, adam_id=adam_id, subject=subject)
    return {"location": name, "licences": [kit.jsonable(r) for r in rows]}


async def assign(
    russet: Russet, name: str, adam_id: Any, *, serials: Any = (), users: Any = (), pricing: str | None = None
) -> dict[str, Any]:
    store = open_store(russet)
    store.require(name)
    asset = licences.find_asset(store, name, adam_id, pricing)
    cleaned = licences.clean_serials(list(serials))
    people = _user_ids(users)
    if not cleaned and not people:
        raise VppError("name serial numbers and/or client user ids to license")
    with apple_errors(name):
        return await licences.assign(store, client_for(russet, store, name), asset, cleaned, people)


async def unassign(
    russet: Russet, name: str, adam_id: Any, *, serials: Any = (), users: Any = (), pricing: str | None = None
) -> dict[str, Any]:
    store = open_store(russet)
    store.require(name)
    asset = licences.find_asset(store, name, adam_id, pricing)
    cleaned = licences.clean_serials(list(serials))
    people = _user_ids(users)
    if not cleaned and not people:
        raise VppError("name serial numbers and/or client user ids whose licences to take back")
    with apple_errors(name):
        return await licences.unassign(store, client_for(russet, store, name), asset, cleaned, people)


def _user_ids(values: Any) -> list[str]:
    out = []
    for value in values:
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= 64:
            raise VppError(f"{value!r} is not a client user id")
        out.append(value.strip())
    return list(dict.fromkeys(out))


def list_events(russet: Russet, name: str, *, pending_only: bool = False) -> dict[str, Any]:
    store = open_store(russet)
    store.require(name)
    events = store.events(name, pending_only=pending_only)
    return {"location": name, "events": [kit.jsonable(e) for e in events]}


async def poll_now(russet: Russet, name: str) -> dict[str, Any]:
    """Ask Apple about every pending event of the location now."""
    store = open_store(russet)
    with apple_errors(name):
        polled = await licences.poll_events(
            store,
            client_for(russet, store, name),
            every=timedelta(seconds=russet.settings.vpp_poll_seconds),
            force=True,
        )
    moved = installs.advance(russet)
    return {"location": name, "events": polled, "installs": moved}


# -- the server's periodic work ------------------------------------------------------------------------


async def tick(russet: Russet) -> dict[str, Any]:
    """Poll events no notification answered, take back licences of devices that left, re-read
    assets when due, and move app installs on. Each location's trouble is its own."""
    store = open_store(russet)
    every = timedelta(seconds=russet.settings.vpp_poll_seconds)
    outcome: dict[str, Any] = {}
    for name in store.active_names():
        done: dict[str, Any] = {}
        try:
            with apple_errors(name):
                store.expire_reservations(name, licences.STALE_RESERVATION)
                client = client_for(russet, store, name)
                done["events"] = len(await licences.poll_events(store, client, every=every))
                departed = licences.departed_devices(russet.storage.engine, name)
                if departed:
                    done["revoked"] = await licences.revoke_devices(store, client, departed)
                location = store.require(name)
                last = location["last_sync_at"]
                if last is None or datetime.now(UTC) - last >= timedelta(
                    minutes=russet.settings.vpp_sync_minutes
                ):
                    done["sync"] = await sync_assets(russet, store, client)
            warning = expiry_warning(location["token_expires_at"])
            if warning:
                log.warning("Apps and Books %r: %s", name, warning)
        except Exception as exc:
            log.warning("Apps and Books %r: %s", name, exc)
            done["error"] = str(exc)
        outcome[name] = done
    outcome["installs"] = installs.advance(russet)
    return outcome


# -- installs ------------------------------------------------------------------------------------------


async def install_app(
    russet: Russet,
    device: str,
    adam_id: Any,
    *,
    location: str | None = None,
    pricing: str | None = None,
    management_flags: int | None = 1,
    created_by: str | None = None,
) -> dict[str, Any]:
    store = open_store(russet)
    with apple_errors(location or "?"):
        return await installs.install(
            russet,
            store,
            lambda name: client_for(russet, store, name),
            device,
            adam_id,
            location=location,
            pricing=pricing,
            management_flags=management_flags,
            created_by=created_by,
        )


def list_installs(russet: Russet, *, device: str | None = None, status: str | None = None) -> dict[str, Any]:
    installs.advance(russet)  # show the newest state the stored results allow
    return {"installs": installs.listing(russet, device=device, status=status)}
