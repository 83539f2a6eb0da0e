"""Admin REST API for Apps and Books, under /api/v1/vpp, and app installs under /api/v1/apps.

Handlers that reach Apple are `async` so they run on the server's event loop, where the gateway
keeps its connections; the others are plain `def`s. All logic is in `russet.vpp.service` (`russet.vpp`),
shared with the CLI. Apple's notifications arrive on `POST /vpp/notify/{location}` (see russet.vpp.notify).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from russet.api.models import AdamId, ApiModel, ClientUserId, EnrollmentId, Name, Serial
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/vpp", tags=["vpp"])
apps = APIRouter(prefix="/api/v1/apps", tags=["vpp"])


class TokenUpload(ApiModel):
    token: str = Field(description="The content token file (.vpptoken) downloaded from ABM/ASM, as text")
    take_over: bool = Field(
        False, description="Confirm taking the location over when another MDM manages it (409 otherwise)"
    )


class NewUser(ApiModel):
    email: str | None = Field(None, description="The person's email")
    managed_apple_id: str | None = Field(None, description="The person's Managed Apple Account")


class Licences(ApiModel):
    adam_id: AdamId = Field(description="The App Store id of the app or book")
    pricing: Literal["STDQ", "PLUS"] | None = Field(None, description="Needed only when both qualities exist")
    serial_numbers: list[Serial] = Field(default_factory=list, description="Devices to license")
    client_user_ids: list[ClientUserId] = Field(default_factory=list, description="People to license")


class Install(ApiModel):
    device: EnrollmentId = Field(description="The device's enrollment id (UDID) or serial number")
    adam_id: AdamId = Field(description="The App Store id of the app")
    location: Name | None = Field(None, description="The Apps and Books location, if several hold the app")
    pricing: Literal["STDQ", "PLUS"] | None = None
    remove_with_mdm: bool = Field(True, description="Remove the app when the device leaves management")


@router.get("", summary="Apps and Books locations: token expiry, counts, last sync")
def list_locations(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).vpp.list_locations()


@router.post("/{name}", summary="Load a location's content token (.vpptoken) and make Russet its MDM")
async def add(request: Request, _: Caller, name: str, body: TokenUpload) -> dict[str, Any]:
    return await _russet(request).vpp.add(name, body.token.encode(), take_over=body.take_over)


@router.get("/{name}", summary="One location: token, notifications, limits, counts")
def show(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return _russet(request).vpp.show(name)


@router.post("/{name}/sync", summary="Read the location's assets from Apple now (also done on a schedule)")
async def sync(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return await _russet(request).vpp.sync_now(name)


@router.get("/{name}/assets", summary="Apps and books of the location with their licence counts")
def assets(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return _russet(request).vpp.assets(name)


@router.get("/{name}/users", summary="People registered for user-based licences")
def users(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return _russet(request).vpp.list_users(name)


@router.post("/{name}/users", status_code=201, summary="Register a person (Apple answers asynchronously)")
async def create_user(request: Request, _: Caller, name: str, body: NewUser) -> dict[str, Any]:
    return await _russet(request).vpp.create_user(
        name, email=body.email, managed_apple_id=body.managed_apple_id
    )


@router.post(
    "/{name}/users/from-enrollments",
    summary="Register the people who signed in before enrollment who are not users yet (by email)",
)
async def users_from_enrollments(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return await _russet(request).vpp.sync_people(name)


@router.patch("/{name}/users/{client_user_id}", summary="Change a person's email or Managed Apple ID")
async def update_user(
    request: Request, _: Caller, name: str, client_user_id: str, body: NewUser
) -> dict[str, Any]:
    return await _russet(request).vpp.update_user(
        name, client_user_id, email=body.email, managed_apple_id=body.managed_apple_id
    )


@router.delete("/{name}/users/{client_user_id}", summary="Retire a person; their revocable licences go back")
async def retire_user(request: Request, _: Caller, name: str, client_user_id: str) -> dict[str, Any]:
    return await _russet(request).vpp.retire_user(name, client_user_id)


@router.get("/{name}/licences", summary="Licences held by devices and people, with their state")
def licences(
    request: Request, _: Caller, name: str, adam_id: str | None = None, subject: str | None = None
) -> dict[str, Any]:
    return _russet(request).vpp.list_licences(name, adam_id=adam_id, subject=subject)


@router.post("/{name}/licences", summary="Assign licences (all or none are reserved; Apple answers later)")
async def assign(request: Request, _: Caller, name: str, body: Licences) -> dict[str, Any]:
    return await _licences(_russet(request).vpp.assign, name, body)


@router.delete("/{name}/licences", summary="Take licences back from devices and people")
async def unassign(request: Request, _: Caller, name: str, body: Licences) -> dict[str, Any]:
    return await _licences(_russet(request).vpp.unassign, name, body)


async def _licences(
    change: Callable[..., Awaitable[dict[str, Any]]], name: str, body: Licences
) -> dict[str, Any]:
    """Assign or take back: the same request body either way."""
    return await change(
        name, body.adam_id, serials=body.serial_numbers, users=body.client_user_ids, pricing=body.pricing
    )


@router.get("/{name}/events", summary="Apple's asynchronous events and how they ended")
def events(request: Request, _: Caller, name: str, pending: bool = False) -> dict[str, Any]:
    return _russet(request).vpp.list_events(name, pending_only=pending)


@router.post("/{name}/events/poll", summary="Ask Apple about every pending event now")
async def poll(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return await _russet(request).vpp.poll_now(name)


@apps.post("/install", status_code=201, summary="License an app to a device and install it (VPP)")
async def install(request: Request, caller: Caller, body: Install) -> dict[str, Any]:
    return await _russet(request).vpp.installs.install(
        body.device,
        body.adam_id,
        location=body.location,
        pricing=body.pricing,
        management_flags=1 if body.remove_with_mdm else None,
        created_by=caller,
    )


@apps.get(
    "/installs", summary="App installs and their state (licensing, queued, installing, installed, failed)"
)
def list_installs(
    request: Request, _: Caller, device: str | None = None, status: str | None = None
) -> dict[str, Any]:
    return _russet(request).vpp.list_installs(device=device, status=status)
