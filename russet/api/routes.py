"""Admin REST API routes for devices, commands, the ledger and connections (`russet.api.router`
includes them with the others).

Handlers are plain `def`s (FastAPI runs them in its threadpool, where the synchronous
storage belongs) and delegate to `russet.operations`, which the CLI shares.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from russet import operations
from russet.api.models import ApiModel
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet


class CommandRequest(ApiModel):
    devices: list[str] = Field(
        min_length=1,
        description="Enrollment ids: UDID or EnrollmentID for a device channel, "
        "`<device id>:<user id or short name>` for a user channel",
    )
    command: dict[str, Any] = Field(description='The Command dict: {"RequestType": ..., parameters...}')


router = APIRouter(prefix="/api/v1")


@router.get("/devices", summary="List enrolled devices (keyset pagination)")
def list_devices(
    request: Request,
    _: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    return operations.list_devices(_russet(request), limit=limit, after=after, search=search)


@router.get("/devices/{device_id}", summary="One device: enrollment state, inventory, last seen")
def show_device(request: Request, _: Caller, device_id: str) -> dict[str, Any]:
    return operations.show_device(_russet(request), device_id)


@router.get("/devices/{device_id}/commands", summary="Commands queued for a device, newest first")
def device_commands(
    request: Request, _: Caller, device_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    return operations.device_commands(_russet(request), device_id, limit)


@router.post("/commands", status_code=201, summary="Queue a command for one or more devices")
def send_command(request: Request, caller: Caller, body: CommandRequest) -> dict[str, Any]:
    return operations.send_command(_russet(request), body.devices, body.command, created_by=caller)


@router.get("/commands/{command_uuid}", summary="A command's status and result, with its sibling deliveries")
def show_command(request: Request, _: Caller, command_uuid: str, reveal: bool = False) -> dict[str, Any]:
    # Secrets in the result (UnlockToken...) are redacted unless ?reveal=true (no roles yet: any key may).
    return operations.show_command(_russet(request), command_uuid, reveal=reveal)


@router.get(
    "/ledger/report", summary="Every catalogue field: times exchanged with Apple, subjects, first/last"
)
def ledger_report(
    request: Request, _: Caller, since: str | None = None, service: str | None = None
) -> list[dict[str, Any]]:
    return operations.ledger_report(_russet(request), since=since, service=service)


@router.get(
    "/ledger/subjects/{identifier}", summary="What Apple was told about a device or person, when and why"
)
def ledger_subject(request: Request, _: Caller, identifier: str) -> dict[str, Any]:
    return operations.ledger_subject(_russet(request), identifier)


@router.get("/connections", summary="Connections to Apple's services")
def list_connections(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).connections.all()


class DisconnectRequest(ApiModel):
    purge: bool = Field(False, description="Also delete every datum obtained from or tied to the connection")


@router.post(
    "/connections/{service}/{name}/disconnect",
    summary="Stop traffic to a connection, destroy its credentials, optionally purge; returns the receipt",
)
def disconnect(
    request: Request, _: Caller, service: str, name: str, body: DisconnectRequest
) -> dict[str, Any]:
    return operations.disconnect(_russet(request), service, name, purge=body.purge)


@router.get("/connections/receipts", summary="Receipts of past disconnects and purges")
def receipts(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).connections.receipts()


@router.get("/health", summary="Liveness (no authentication)")
def health() -> dict[str, str]:
    return {"status": "ok"}
