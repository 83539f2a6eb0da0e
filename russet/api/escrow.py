"""Admin REST API for the secrets Russet escrows for devices (`russet.escrow`):
`/api/v1/devices/{device}/secrets/...` and the FileVault profile and Activation Lock connections
under `/api/v1/secrets/...`.

Showing a secret is a POST (it is recorded and rotates the secret) with a required reason; the
viewer is the API key, `api:<name>`, which the service's SecretViewer decides on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from russet.api.models import ApiModel
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1", tags=["secrets"])


class ViewRequest(ApiModel):
    reason: str = Field(min_length=1, max_length=500, description="Why you need to see it (recorded)")


class ClearActivationLock(ApiModel):
    connection: str = Field("default", min_length=1, max_length=100, description="Activation Lock connection")


class ActivationLockConnection(ApiModel):
    org_name: str = Field(min_length=1, max_length=200, description="Organisation name Apple is told")


@router.get("/devices/{device_id}/secrets", summary="What is escrowed for a device (never the values)")
def list_secrets(request: Request, _: Caller, device_id: str) -> dict[str, Any]:
    return _russet(request).escrow.secrets(device_id)


@router.post(
    "/devices/{device_id}/secrets/clear-passcode",
    status_code=201,
    summary="Queue ClearPasscode with the device's escrowed UnlockToken",
)
def clear_passcode(request: Request, caller: Caller, device_id: str) -> dict[str, Any]:
    return _russet(request).escrow.clear_passcode(device_id, by=caller)


@router.post(
    "/devices/{device_id}/secrets/{kind}/rotate",
    status_code=201,
    summary="Set a new Recovery Lock / firmware password, or rotate the FileVault recovery key",
)
def rotate(request: Request, caller: Caller, device_id: str, kind: str) -> dict[str, Any]:
    return _russet(request).escrow.rotate(device_id, kind, by=caller)


@router.post(
    "/devices/{device_id}/secrets/{kind}/fetch",
    status_code=201,
    summary="Ask the device for its FileVault key (SecurityInfo) or Activation Lock bypass code",
)
def fetch(request: Request, caller: Caller, device_id: str, kind: str) -> dict[str, Any]:
    return _russet(request).escrow.fetch(device_id, kind, by=caller)


@router.post(
    "/devices/{device_id}/secrets/{kind}/view",
    summary="Show an escrowed secret: needs the permission and a reason, is recorded, then rotated",
)
def view(request: Request, caller: Caller, device_id: str, kind: str, body: ViewRequest) -> dict[str, Any]:
    return _russet(request).escrow.view(device_id, kind, viewer=f"api:{caller}", reason=body.reason)


@router.get("/devices/{device_id}/secrets/views", summary="Who was shown this device's secrets, and why")
def views(
    request: Request, _: Caller, device_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return _russet(request).escrow.views(device_id, limit)


@router.post(
    "/devices/{device_id}/secrets/bypass-code/clear-activation-lock",
    summary="Send the escrowed bypass code to Apple's Activation Lock service",
)
async def clear_activation_lock(
    request: Request, caller: Caller, device_id: str, body: ClearActivationLock
) -> dict[str, Any]:
    return await _russet(request).escrow.clear_activation_lock(
        device_id, by=caller, connection=body.connection
    )


@router.get(
    "/devices/{device_id}/secrets/activation-lock-clears", summary="Requests to clear Activation Lock"
)
def activation_lock_clears(request: Request, _: Caller, device_id: str) -> list[dict[str, Any]]:
    return _russet(request).escrow.activation_lock_clears(device_id)


PROFILE_TYPE = "application/x-apple-aspen-config"


@router.get(
    "/secrets/filevault-profile",
    summary="The FileVault profile escrowing recovery keys to Russet",
    response_class=Response,
    responses={200: {"content": {PROFILE_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
def filevault_profile(request: Request, _: Caller) -> Response:
    return Response(_russet(request).escrow.filevault_profile(), media_type=PROFILE_TYPE)


@router.get("/secrets/activation-lock", summary="Connections to Apple's Activation Lock service")
def activation_lock_connections(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).escrow.activation_lock_connections()


@router.put("/secrets/activation-lock/{name}", summary="Add (or re-activate) an Activation Lock connection")
def connect_activation_lock(
    request: Request, _: Caller, name: str, body: ActivationLockConnection
) -> dict[str, Any]:
    return _russet(request).escrow.connect_activation_lock(name, body.org_name)
