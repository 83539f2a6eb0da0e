"""The ABM/ASM use cases, shared by the REST API, the CLI and the server's periodic sync.

`AbmService` is built once by the composition root (`russet.runtime`) with what it needs: the
store (engine and secret box), the gateway to Apple, the connection registry, the ledger and the
configured URLs and interval. Calls that reach Apple are coroutines: the API awaits them on the
server's event loop (where the gateway's connections live); the CLI runs them with
`Russet.run()`, which closes those connections in the same loop. Results are JSON-ready dicts;
errors are `AbmError`s with a message for people.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from russet.abm import profiles
from russet.abm.client import AbmClient, forget_session
from russet.abm.errors import AbmError, AbmNotFound, TokenExpired
from russet.abm.ports import BlueprintNames, EnrolledDevices
from russet.abm.store import AbmStore
from russet.abm.sync import LEASE, SyncReport, sync_connection, sync_due
from russet.abm.token import certificate_pem, decrypt_server_token, expiry_warning, make_key_pair
from russet.apple.connection import admin as kit
from russet.apple.connections import ConnectionRegistry
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Ledger
from russet.kernel.errors import NotFound
from russet.kernel.tasks import PeriodicTask

log = logging.getLogger("russet.abm")
MAX_TOKEN_BYTES = 64 * 1024
SYNC_CHECK_SECONDS = 60.0  # each connection is synced when RUSSET_ABM_SYNC_MINUTES have passed
NOT_CONNECTED = "ABM connection {name} is not connected; load its server token with `russet abm token`"
apple_errors = partial(kit.apple_errors, NOT_CONNECTED)


class AbmService(kit.ConnectionService[AbmStore]):
    def __init__(
        self,
        store: AbmStore,
        gateway: AppleGateway,
        connections: ConnectionRegistry,
        ledger: Ledger,
        config: kit.ConnectionConfig,
        enrolled: EnrolledDevices,
        blueprints: BlueprintNames | None = None,
    ) -> None:
        super().__init__(store, gateway, connections, config)
        self._ledger = ledger  # sync records what Apple said about each device
        self._enrolled = enrolled  # each device's enrollment, from the MDM core
        self._blueprints = blueprints  # names an ADE profile's blueprint (Russet's side only)

    def client_for(self, name: str) -> AbmClient:
        """The connection's client, refusing an expired token before Apple is asked."""
        token = self.store.token(name)
        kit.refuse_expired(
            token.access_token_expiry,
            TokenExpired,
            f"the server token of ABM connection {name!r} expired on {{expiry}}; download a renewed token "
            f"from ABM/ASM and load it with `russet abm token {name} FILE.p7m`",
        )
        return AbmClient(self._gateway, name, token, self._base_url)

    # -- connections -----------------------------------------------------------------------------

    def create(self, name: str) -> dict[str, Any]:
        """A key pair for a new connection; the certificate is what the admin uploads to ABM/ASM."""
        kit.check_name(name, "connection")
        key, cert = make_key_pair(name)
        self.store.create(name, cert, key)
        return {
            "name": name,
            "certificate_pem": certificate_pem(cert).decode(),
            "next": (
                "In Apple Business/School Manager, add an MDM server (Preferences, Your MDM Servers), "
                "upload this certificate, download the server token and load it with "
                f"`russet abm token {name} FILE.p7m`."
            ),
        }

    async def load_token(self, name: str, data: bytes, *, fetch_account: bool = True) -> dict[str, Any]:
        """Decrypt a token file with the connection's key, store it sealed, connect, read /account."""
        if len(data) > MAX_TOKEN_BYTES:
            raise AbmError(f"a server token file is a few kilobytes; this one is {len(data)} bytes")
        store = self.store
        cert, key = store.identity(name)
        token = decrypt_server_token(data, cert, key)
        store.store_token(name, token, self._connections)
        forget_session(self._gateway, name)  # a session opened with the previous token must not be reused
        out: dict[str, Any] = {
            "name": name,
            "access_token_expiry": kit.iso(token.access_token_expiry),
            "warning": expiry_warning(token.access_token_expiry),
            "account": None,
            "account_error": None,
        }
        if fetch_account:
            before = store.account(name)
            try:
                out["account"] = await self.refresh_account(name)
            except AbmError as exc:  # the token is stored; Apple's side can be checked again later
                out["account_error"] = str(exc)
            else:
                if (
                    before
                    and before["server_uuid"] != out["account"]["server_uuid"]
                    and store.sync_state(name)
                ):
                    # Another MDM server in ABM/ASM: its cursor means nothing here; list everything again.
                    store.start_full_fetch(name)
                    out["warning"] = (out["warning"] + "; " if out["warning"] else "") + (
                        f"this token is for another MDM server ({out['account']['server_name']!r}); "
                        "the next sync lists its devices afresh and drops the previous server's"
                    )
        return out

    async def refresh_account(self, name: str) -> dict[str, Any]:
        with apple_errors(name):
            account = await self.client_for(name).account()
        self.store.save_account(name, account)
        shown = self.store.account(name)
        assert shown is not None
        return {**shown, "fetched_at": kit.iso(shown["fetched_at"])}

    def _summary(self, name: str, connections: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
        server = self.store.require(name)
        account = self.store.account(name)
        state = self.store.sync_state(name)
        return {
            "name": name,
            **kit.registry_state(connections, "abm", name, absent="awaiting token"),
            "server_name": account["server_name"] if account else None,
            "org_name": account["org_name"] if account else None,
            "access_token_expiry": kit.iso(server["access_token_expiry"]),
            "warning": expiry_warning(server["access_token_expiry"]),
            "default_profile_uuid": server["default_profile_uuid"],
            "devices": sum(self.store.counts(name).values()),
            "last_sync_at": kit.iso(state.last_sync_at) if state else None,
            "last_error": state.last_error if state else None,
        }

    def list_connections(self) -> list[dict[str, Any]]:
        return self._summaries(self.store.names())

    def show(self, name: str) -> dict[str, Any]:
        out = self._shown(name)
        server = self.store.require(name)
        account = self.store.account(name)
        state = self.store.sync_state(name)
        out.update(
            {
                "certificate_pem": certificate_pem(server["certificate"]).decode(),
                "certificate_expiry": kit.iso(server["certificate"].not_valid_after_utc),
                "has_key": server["has_key"],
                "has_token": server["has_token"],
                "token_stored_at": kit.iso(server["token_stored_at"]),
                "account": None
                if account is None
                else {**account, "fetched_at": kit.iso(account["fetched_at"])},
                "profile_statuses": self.store.counts(name),
                "sync": None
                if state is None
                else {
                    "phase": state.phase,
                    "cursor_saved": state.cursor is not None,
                    "fetched_until": kit.iso(state.fetched_until),
                    "fetch_started_at": kit.iso(state.fetch_started_at),
                    "fetch_completed_at": kit.iso(state.fetch_completed_at),
                    "last_sync_at": kit.iso(state.last_sync_at),
                    "last_attempt_at": kit.iso(state.last_attempt_at),
                    "last_error": state.last_error,
                    "retry_at": kit.iso(state.retry_at),
                    "every_minutes": int(self.config.sync_every.total_seconds()) // 60,
                },
            }
        )
        return out

    # -- sync ------------------------------------------------------------------------------------

    async def sync_now(
        self, name: str, *, full: bool = False, progress: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Sync now; `progress`, if given, gets the report so far (as the result's dict) per page."""
        self.store.require(name)
        with apple_errors(name):
            client = self.client_for(name)
            report = await sync_connection(
                self._connections,
                self._ledger,
                self.store,
                client,
                full=full,
                progress=None if progress is None else partial(_tell, progress),
            )
        out = report.as_dict()
        out["warning"] = expiry_warning(self.store.require(name)["access_token_expiry"])
        return out

    def tasks(self) -> list[PeriodicTask]:
        """The server's periodic sync (`abm.sync`), for the composition root's task runner."""
        return [
            self.connection_task(
                "abm.sync",
                SYNC_CHECK_SECONDS,
                self.sync_scheduled,
                "sync the devices of each ABM/ASM connection due by RUSSET_ABM_SYNC_MINUTES",
            )
        ]

    async def sync_scheduled(self) -> dict[str, Any]:
        """The server's periodic task: every active connection whose interval has passed."""
        every = self.config.sync_every
        outcome = await sync_due(self._connections, self._ledger, self.store, self.client_for, every)
        for name in outcome:
            warning = expiry_warning(self.store.require(name)["access_token_expiry"])
            if warning:
                log.warning("ABM %r: %s", name, warning)
        return outcome

    # -- devices ---------------------------------------------------------------------------------

    def devices(
        self, name: str, *, limit: int = 100, after: str | None = None, search: str | None = None
    ) -> dict[str, Any]:
        if not 1 <= limit <= 1000:
            raise AbmError("limit must be between 1 and 1000")
        self.store.require(name)
        rows = self._with_enrollment(self.store.devices(name, limit=limit, after=after, search=search))
        return {
            "connection": name,
            "devices": [_device(r) for r in rows],
            "next": rows[-1]["serial_number"] if len(rows) == limit else None,
        }

    def device(self, name: str, serial: str) -> dict[str, Any]:
        self.store.require(name)
        row = self.store.device(name, serial)
        if row is None:
            raise AbmNotFound(f"no device with serial number {serial!r} in ABM connection {name!r}")
        return _device(self._with_enrollment([row])[0])

    def _with_enrollment(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each ABM device with the enrollment of the same serial number (the core's), or None."""
        enrolled = self._enrolled.by_serial([r["serial_number"] for r in rows]) if rows else {}
        return [{**r, "enrollment": enrolled.get(r["serial_number"])} for r in rows]

    # -- profiles --------------------------------------------------------------------------------

    def list_profiles(self, name: str) -> dict[str, Any]:
        server = self.store.require(name)
        rows = self.store.profiles(name)
        named = self._blueprint_names({p["blueprint_id"] for p in rows if p["blueprint_id"] is not None})
        return {
            "connection": name,
            "default_profile_uuid": server["default_profile_uuid"],
            "profiles": [
                {
                    **{k: v for k, v in p.items() if k != "blueprint_id"},
                    "created_at": kit.iso(p["created_at"]),
                    "default": p["profile_uuid"] == server["default_profile_uuid"],
                    "blueprint": _blueprint(p["blueprint_id"], named),
                }
                for p in rows
            ],
        }

    async def define_profile(
        self,
        name: str,
        spec: Any,
        *,
        default: bool = False,
        blueprint: str | None = None,
        sign_in: bool = False,
    ) -> dict[str, Any]:
        """Check the profile (and the blueprint it names, if any), define it at Apple, keep it;
        optionally make it the default. The blueprint is Russet's side only: Apple never sees it.
        `sign_in`: the person signs in during Setup Assistant on Russet's own page first
        (configuration_web_url is set to it), and the device enrolls as theirs."""
        self.store.require(name)
        if sign_in and isinstance(spec, dict):  # not a dict: validate_profile says so
            if spec.get("configuration_web_url") is not None:
                raise AbmError(
                    "configuration_web_url: set by sign-in (Russet's own page); give one or the other"
                )
            spec = {**spec, "configuration_web_url": profiles.signin_url(self._public_url)}
        profile = profiles.validate_profile(
            spec,
            default_url=profiles.ade_url(self._public_url),
            default_org_magic=f"russet:{name}",
        )
        named = None if blueprint is None else self._resolve_blueprint(blueprint)
        with apple_errors(name), self._connections.lease("abm", name, "define profile", ttl=LEASE):
            profile_uuid = await self.client_for(name).define_profile(profile)
            self.store.save_profile(name, profile_uuid, profile, None if named is None else named[0])
            if default:
                self.store.set_default_profile(name, profile_uuid)
        return {
            "connection": name,
            "profile_uuid": profile_uuid,
            "profile": profile,
            "default": default,
            "blueprint": None if named is None else {"id": named[0], "name": named[1]},
        }

    def set_profile_blueprint(self, name: str, profile_uuid: str, blueprint: str | None) -> dict[str, Any]:
        """Name the blueprint that applies to the devices a profile enrolls (None: no blueprint).
        Russet's side only, so it can change although the profile at Apple cannot."""
        if not isinstance(profile_uuid, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", profile_uuid):
            raise AbmError("profile_uuid should be the id Apple gave the profile")
        self.store.require(name)
        named = None if blueprint is None else self._resolve_blueprint(blueprint)
        if not self.store.set_profile_blueprint(name, profile_uuid, None if named is None else named[0]):
            raise AbmNotFound(f"no profile {profile_uuid!r} was defined through ABM connection {name!r}")
        return {
            "connection": name,
            "profile_uuid": profile_uuid,
            "blueprint": None if named is None else {"id": named[0], "name": named[1]},
        }

    def _resolve_blueprint(self, ref: Any) -> tuple[int, str]:
        if not isinstance(ref, str) or not ref.strip() or len(ref) > 100 or "\x00" in ref:
            raise AbmError("blueprint: name a blueprint by its name or id (at most 100 characters)")
        if self._blueprints is None:
            raise AbmError("blueprint: blueprints are not available in this server")
        try:
            return self._blueprints.resolve(ref)
        except NotFound:
            raise AbmError(
                f"blueprint {ref!r}: no such blueprint (see `russet blueprint list`); nothing was defined"
            ) from None

    def _blueprint_names(self, ids: set[int]) -> dict[int, str]:
        if not ids or self._blueprints is None:
            return {}
        return dict(self._blueprints.names(ids))

    def set_default_profile(self, name: str, profile_uuid: str | None) -> dict[str, Any]:
        self.store.require(name)
        if profile_uuid is not None and profile_uuid not in {
            p["profile_uuid"] for p in self.store.profiles(name)
        }:
            raise AbmNotFound(f"no profile {profile_uuid!r} was defined through ABM connection {name!r}")
        self.store.set_default_profile(name, profile_uuid)
        return {"connection": name, "default_profile_uuid": profile_uuid}

    async def assign_profile(self, name: str, profile_uuid: str, serials: Any) -> dict[str, Any]:
        if not isinstance(profile_uuid, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", profile_uuid):
            raise AbmError("profile_uuid should be the id Apple gave the profile")
        cleaned = profiles.clean_serials(serials)
        self.store.require(name)
        with apple_errors(name), self._connections.lease("abm", name, "assign profile", ttl=LEASE):
            return await profiles.assign(self.client_for(name), self.store, name, profile_uuid, cleaned)

    async def remove_profile(self, name: str, serials: Any) -> dict[str, Any]:
        cleaned = profiles.clean_serials(serials)
        self.store.require(name)
        lease = self._connections.lease("abm", name, "remove profile", ttl=timedelta(hours=1))
        with apple_errors(name), lease:
            return await profiles.remove(self.client_for(name), self.store, name, cleaned)


def _blueprint(blueprint_id: int | None, names: dict[int, str]) -> dict[str, Any] | None:
    if blueprint_id is None:
        return None
    return {"id": blueprint_id, "name": names.get(blueprint_id), "deleted": blueprint_id not in names}


def _device(row: dict[str, Any]) -> dict[str, Any]:
    out = kit.jsonable(row)
    if out["enrollment"]:
        out["enrollment"] = {**out["enrollment"], "last_seen_at": kit.iso(out["enrollment"]["last_seen_at"])}
    if out["last_profile_result"]:
        out["last_profile_result"] = {
            **out["last_profile_result"],
            "at": kit.iso(out["last_profile_result"]["at"]),
        }
    return out


def _tell(progress: Callable[[dict[str, Any]], None], so_far: SyncReport) -> None:
    progress(so_far.as_dict())
