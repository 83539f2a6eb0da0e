"""Admin REST API for devices and their commands (`russet.devices`): listing and showing devices,
queueing commands and reading their results, and a device's identity (open re-enrollment, forget,
refused takeovers).

Handlers are plain `def`s (FastAPI runs them in its threadpool, where the synchronous storage
belongs): they parse, call the service the CLI and the console share, and return its answer.
Queueing a command, the call fleets and scripts make most, is the exception: it says where its
service call runs (`russet.web.offload`), on the event loop when that is cheaper.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from russet.access.roles import Role
from russet.api.models import ApiModel
from russet.mdm.admin import DEFAULT_OPENING
from russet.web.deps import Caller, audit_note, mutations, offload_of, require
from russet.web.deps import russet_of as _russet

# Operators manage devices and send commands: every route here that changes something is theirs.
router = APIRouter(prefix="/api/v1", tags=["devices"], dependencies=[mutations(Role.OPERATOR)])
# A command for at most this many devices is light work (russet.web.offload); more is a long write.
LIGHT_COMMAND_TARGETS = 20


class CommandRequest(ApiModel):
    devices: list[str] = Field(
        min_length=1,
        description="Enrollment ids: UDID or EnrollmentID for a device channel, "
        "`<device id>:<user id or short name>` for a user channel",
    )
    command: dict[str, Any] = Field(description='The Command dict: {"RequestType": ..., parameters...}')


class ReenrollRequest(ApiModel):
    for_: str = Field(
        DEFAULT_OPENING, alias="for", max_length=20, description="How long it stays open: 30m, 24h, 7d"
    )


# -- devices and commands ---------------------------------------------------------------------------


@router.get("/devices", summary="List enrolled devices (keyset pagination)")
def list_devices(
    request: Request,
    _: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    return _russet(request).devices.list_devices(limit=limit, after=after, search=search)


@router.get("/devices/{device_id}", summary="One device: enrollment state, inventory, last seen")
def show_device(request: Request, _: Caller, device_id: str) -> dict[str, Any]:
    russet = _russet(request)
    data = russet.devices.show_device(device_id)
    if data["channel"] == "device":  # an ADE device's way out of Setup Assistant (blueprints)
        data["setup"] = russet.blueprints.setup_of(device_id)
    return data


@router.get("/devices/{device_id}/commands", summary="Commands queued for a device, newest first")
def device_commands(
    request: Request, _: Caller, device_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    return _russet(request).devices.device_commands(device_id, limit)


@router.post("/commands", status_code=201, summary="Queue a command for one or more devices")
async def send_command(request: Request, caller: Caller, body: CommandRequest) -> dict[str, Any]:
    request_type = body.command.get("RequestType")
    audit_note(request.scope, target=f"{request_type} to {', '.join(body.devices[:20])}"[:1000])
    # The commonest admin call: for a few devices a few statements (light), for many a long write.
    offload = offload_of(request)
    run = offload.run if len(body.devices) <= LIGHT_COMMAND_TARGETS else offload.run_heavy
    return await run(_russet(request).devices.send_command, body.devices, body.command, created_by=caller)


@router.get("/commands/{command_uuid}", summary="A command's status and result, with its sibling deliveries")
def show_command(request: Request, _: Caller, command_uuid: str, reveal: bool = False) -> dict[str, Any]:
    # Secrets in the result (UnlockToken...) are redacted unless ?reveal=true, which only an admin may ask.
    if reveal:
        require(request, Role.ADMIN, "revealing a command's secrets")
    return _russet(request).devices.show_command(command_uuid, reveal=reveal)


# -- a device's identity ----------------------------------------------------------------------------


@router.post(
    "/devices/{device_id}/allow-reenroll",
    summary="Accept one enrollment of this device with another identity certificate, until it expires",
)
def allow_reenroll(
    request: Request, _: Caller, device_id: str, body: ReenrollRequest | None = None
) -> dict[str, Any]:
    return _russet(request).devices.allow_reenroll(device_id, body.for_ if body else None)


@router.post(
    "/devices/{device_id}/forget",
    summary="Forget a device: its next request is told ErrorUnrecognizedDevice, and it unenrolls",
)
def forget(request: Request, _: Caller, device_id: str) -> dict[str, Any]:
    return _russet(request).devices.forget(device_id)


@router.get("/refusals", summary="Refused re-enrollments (another identity for an enrolled device)")
def refusals(
    request: Request,
    _: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    device: str | None = None,
) -> list[dict[str, Any]]:
    return _russet(request).devices.refusals(limit, device)
