"""Admin REST API for device actions (`russet.mdm.actions`, issue #15 item 7): Lost Mode, erase,
lock, Shared iPad users and OS updates, one endpoint each under
`/api/v1/devices/{device}/actions/...` with a typed body, and their answers.

Each queues one command (201 with its CommandUUID) or refuses it with the reason (400 bad input,
403 a device that cannot run it) with nothing queued. The device's answer is read at
`GET /api/v1/actions/{command_uuid}` (parsed: rows or fields) and the latest of each at
`GET /api/v1/devices/{device}/actions`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from russet.access.roles import Role
from russet.api.models import ApiModel
from russet.mdm.actions import ACTIONS, choices
from russet.web.deps import Caller, mutations
from russet.web.deps import russet_of as _russet

# Device actions are commands: an operator may run them (issue #19 roles).
router = APIRouter(prefix="/api/v1", tags=["device actions"], dependencies=[mutations(Role.OPERATOR)])

_PIN = Field(None, pattern=r"^[0-9]{6}$", description="The 6-digit Find My PIN (a Mac)")


def _enum(action: str, name: str) -> dict[str, Any]:
    """The schema's allowed values of an input, for the OpenAPI document."""
    return {"enum": list(choices(action, name) or ())}


class LostMode(ApiModel):
    message: str | None = Field(None, min_length=1, max_length=500, description="Shown on the Lock screen")
    phone_number: str | None = Field(
        None, min_length=1, max_length=500, description="Shown on the Lock screen"
    )
    footnote: str | None = Field(
        None, min_length=1, max_length=500, description="Shown at the bottom of the Lock screen"
    )


class Erase(ApiModel):
    pin: str | None = _PIN
    preserve_data_plan: bool | None = Field(None, description="iOS: keep the cellular data plan")
    disallow_proximity_setup: bool | None = Field(None, description="iOS: no Quick Start after the erase")
    obliteration_behavior: str | None = Field(
        None,
        description="macOS 12+: when to obliterate",
        json_schema_extra=_enum("erase", "obliteration_behavior"),
    )


class Lock(ApiModel):
    message: str | None = Field(None, min_length=1, max_length=500, description="Shown on the Lock screen")
    phone_number: str | None = Field(
        None, min_length=1, max_length=500, description="Shown on the Lock screen"
    )
    pin: str | None = _PIN


class DeleteUser(ApiModel):
    user_name: str | None = Field(
        None, min_length=1, max_length=500, description="The user's short name (UserList's UserName)"
    )
    force_deletion: bool | None = Field(None, description="Delete even with data not yet synced")


class OsUpdateScan(ApiModel):
    force: bool | None = Field(None, description="Scan even when a scan ran recently")


class ScheduleOsUpdate(ApiModel):
    product_key: str | None = Field(None, min_length=1, max_length=500, description="From AvailableOSUpdates")
    product_version: str | None = Field(
        None, min_length=1, max_length=500, description="e.g. 17.5.1 (instead of a product key)"
    )
    install_action: str = Field(
        description="What to do", json_schema_extra=_enum("schedule-os-update", "install_action")
    )
    max_user_deferrals: int | None = Field(None, ge=0, le=1000, description="macOS, InstallLater only")
    priority: str | None = Field(
        None, description="macOS 12.3+", json_schema_extra=_enum("schedule-os-update", "priority")
    )


def _run(
    request: Request, caller: str, device_id: str, action: str, body: ApiModel | None = None
) -> dict[str, Any]:
    values = body.model_dump() if body is not None else None
    return _russet(request).actions.run(device_id, action, values, by=caller)


def _summary(action: str) -> str:
    return f"{ACTIONS[action].summary} ({ACTIONS[action].request_type})"


@router.post("/devices/{device_id}/actions/lost-mode", status_code=201, summary=_summary("lost-mode"))
def lost_mode(request: Request, caller: Caller, device_id: str, body: LostMode) -> dict[str, Any]:
    return _run(request, caller, device_id, "lost-mode", body)


@router.post(
    "/devices/{device_id}/actions/disable-lost-mode", status_code=201, summary=_summary("disable-lost-mode")
)
def disable_lost_mode(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _run(request, caller, device_id, "disable-lost-mode")


@router.post("/devices/{device_id}/actions/locate", status_code=201, summary=_summary("locate"))
def locate(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _run(request, caller, device_id, "locate")


@router.post("/devices/{device_id}/actions/play-sound", status_code=201, summary=_summary("play-sound"))
def play_sound(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _run(request, caller, device_id, "play-sound")


@router.post("/devices/{device_id}/actions/erase", status_code=201, summary=_summary("erase"))
def erase(request: Request, caller: Caller, device_id: str, body: Erase) -> dict[str, Any]:
    return _run(request, caller, device_id, "erase", body)


@router.post("/devices/{device_id}/actions/lock", status_code=201, summary=_summary("lock"))
def lock(request: Request, caller: Caller, device_id: str, body: Lock) -> dict[str, Any]:
    return _run(request, caller, device_id, "lock", body)


@router.post("/devices/{device_id}/actions/users", status_code=201, summary=_summary("users"))
def users(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _run(request, caller, device_id, "users")


@router.post("/devices/{device_id}/actions/log-out-user", status_code=201, summary=_summary("log-out-user"))
def log_out_user(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _run(request, caller, device_id, "log-out-user")


@router.post("/devices/{device_id}/actions/delete-user", status_code=201, summary=_summary("delete-user"))
def delete_user(request: Request, caller: Caller, device_id: str, body: DeleteUser) -> dict[str, Any]:
    return _run(request, caller, device_id, "delete-user", body)


@router.post(
    "/devices/{device_id}/actions/os-update-scan", status_code=201, summary=_summary("os-update-scan")
)
def os_update_scan(
    request: Request, caller: Caller, device_id: str, body: OsUpdateScan | None = None
) -> dict[str, Any]:
    return _run(request, caller, device_id, "os-update-scan", body)


@router.post("/devices/{device_id}/actions/os-updates", status_code=201, summary=_summary("os-updates"))
def os_updates(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _run(request, caller, device_id, "os-updates")


@router.post(
    "/devices/{device_id}/actions/schedule-os-update",
    status_code=201,
    summary=_summary("schedule-os-update"),
)
def schedule_os_update(
    request: Request, caller: Caller, device_id: str, body: ScheduleOsUpdate
) -> dict[str, Any]:
    return _run(request, caller, device_id, "schedule-os-update", body)


@router.post(
    "/devices/{device_id}/actions/os-update-status", status_code=201, summary=_summary("os-update-status")
)
def os_update_status(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _run(request, caller, device_id, "os-update-status")


@router.get("/devices/{device_id}/actions", summary="The device's latest location, users and OS updates")
def latest(request: Request, _: Caller, device_id: str) -> dict[str, Any]:
    return _russet(request).actions.latest(device_id)


@router.get("/actions/{command_uuid}", summary="An action's command with the device's answer, parsed")
def answer(request: Request, _: Caller, command_uuid: str) -> dict[str, Any]:
    return _russet(request).actions.answer(command_uuid)
