"""Admin REST API for Apple Business / School Manager, under /api/v1/abm.

Handlers that reach Apple are `async` so they run on the server's event loop, where the gateway
keeps its connections; the others are plain `def`s (FastAPI runs them in its threadpool). All
logic is in `russet.abm.service`, shared with the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from russet.api.models import ApiModel, Serial, Uuid
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/abm", tags=["abm"])


class TokenUpload(ApiModel):
    token: str = Field(description="The server token file (.p7m) downloaded from ABM/ASM, as text")
    fetch_account: bool = Field(True, description="Read GET /account from Apple once the token is stored")


class SyncRequest(ApiModel):
    full: bool = Field(False, description="List every device again instead of fetching changes")


class ProfileDefinition(ApiModel):
    profile: dict[str, Any] = Field(description="Apple's profile fields; url defaults to Russet's ADE URL")
    default: bool = Field(False, description="Assign it automatically to newly added devices")
    blueprint: str | None = Field(
        None,
        max_length=100,
        description="The blueprint (name or id) for the devices it enrolls: their items first, "
        "then DeviceConfigured releases them from Setup Assistant",
    )
    sign_in: bool = Field(
        False,
        description="The person signs in during Setup Assistant (OpenID Connect or a local account) "
        "on Russet's /mdm/enroll/signin, set as configuration_web_url; the device enrolls as theirs",
    )


class ProfileBlueprint(ApiModel):
    blueprint: str | None = Field(max_length=100, description="A blueprint's name or id, or null for none")


class Serials(ApiModel):
    devices: list[Serial] = Field(min_length=1, description="Serial numbers (sent to Apple 1000 at a time)")


class DefaultProfile(ApiModel):
    profile_uuid: Uuid | None = Field(description="A profile defined through this connection, or null")


@router.get("", summary="ABM/ASM connections: state, token expiry, devices, last sync")
def list_connections(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).abm.list_connections()


@router.post(
    "/{name}", status_code=201, summary="Create a connection: key pair and the certificate to upload"
)
def create(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return _russet(request).abm.create(name)


@router.get("/{name}", summary="One connection: account, token expiry, sync state, certificate")
def show(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return _russet(request).abm.show(name)


@router.put("/{name}/token", summary="Load the server token (.p7m); it is decrypted and stored sealed")
async def load_token(request: Request, _: Caller, name: str, body: TokenUpload) -> dict[str, Any]:
    return await _russet(request).abm.load_token(name, body.token.encode(), fetch_account=body.fetch_account)


@router.post("/{name}/account", summary="Read the account from Apple again (GET /account)")
async def refresh_account(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return await _russet(request).abm.refresh_account(name)


@router.post("/{name}/sync", summary="Sync the devices now (also done on a schedule)")
async def sync(request: Request, _: Caller, name: str, body: SyncRequest | None = None) -> dict[str, Any]:
    return await _russet(request).abm.sync_now(name, full=bool(body and body.full))


@router.get(
    "/{name}/devices", summary="Devices ABM assigns to this server, joined with enrollments by serial"
)
def devices(
    request: Request,
    _: Caller,
    name: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    return _russet(request).abm.devices(name, limit=limit, after=after, search=search)


@router.get("/{name}/devices/{serial}", summary="One ABM device with its enrollment and last profile result")
def device(request: Request, _: Caller, name: str, serial: str) -> dict[str, Any]:
    return _russet(request).abm.device(name, serial)


@router.get("/{name}/profiles", summary="Enrollment profiles defined through this connection")
def profiles(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return _russet(request).abm.list_profiles(name)


@router.post("/{name}/profiles", status_code=201, summary="Define an ADE enrollment profile (checked first)")
async def define_profile(request: Request, _: Caller, name: str, body: ProfileDefinition) -> dict[str, Any]:
    return await _russet(request).abm.define_profile(
        name, body.profile, default=body.default, blueprint=body.blueprint, sign_in=body.sign_in
    )


@router.put(
    "/{name}/profiles/{profile_uuid}/blueprint",
    summary="The blueprint for the devices a profile enrolls (or none); Russet's side only",
)
def profile_blueprint(
    request: Request, _: Caller, name: str, profile_uuid: str, body: ProfileBlueprint
) -> dict[str, Any]:
    return _russet(request).abm.set_profile_blueprint(name, profile_uuid, body.blueprint)


@router.put("/{name}/default-profile", summary="The profile given to newly added devices (or none)")
def default_profile(request: Request, _: Caller, name: str, body: DefaultProfile) -> dict[str, Any]:
    return _russet(request).abm.set_default_profile(name, body.profile_uuid)


@router.post("/{name}/profiles/{profile_uuid}/devices", summary="Assign a profile; Apple's result per device")
async def assign(request: Request, _: Caller, name: str, profile_uuid: str, body: Serials) -> dict[str, Any]:
    return await _russet(request).abm.assign_profile(name, profile_uuid, body.devices)


@router.delete("/{name}/profiles/devices", summary="Remove profile assignments; Apple's result per device")
async def remove(request: Request, _: Caller, name: str, body: Serials) -> dict[str, Any]:
    return await _russet(request).abm.remove_profile(name, body.devices)
