"""Admin REST API for declarative device management, under /api/v1/declarations: declarations
(validated against Apple's schemas), their assignments to devices and groups, and what devices
report: per device, per declaration across the fleet, a fleet summary, software updates."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from russet.api.models import ApiModel
from russet.declarative.service import MAX_TARGETS
from russet.kernel.errors import Invalid
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/declarations", tags=["declarations"])

Identifier = Annotated[str, Field(min_length=1, max_length=64)]
Ref = Annotated[str, Field(min_length=1, max_length=300)]


class DeclarationBody(ApiModel):
    payload: dict[str, Any] = Field(
        description="The declaration's Payload, as Apple's schema for its Type says"
    )
    data_base64: str | None = Field(
        None,
        max_length=800_000,
        description="Data to serve at a per-device URL: an asset's data (its Reference is filled "
        "in) or a legacy profile (its ProfileURL)",
    )
    content_type: str | None = Field(None, max_length=128, description="The data's media type")
    profile: str | None = Field(
        None, min_length=1, max_length=255, description="A legacy declaration: the library profile it wraps"
    )
    profile_version: int | None = Field(
        None, ge=1, le=1_000_000, description="Its version (default: the latest, pinned)"
    )


class DeclarationCreate(DeclarationBody):
    type: str = Field(
        min_length=1, max_length=128, description="e.g. com.apple.configuration.passcode.settings"
    )
    identifier: Identifier | None = Field(None, description="Default: a new UUID")


class Targets(ApiModel):
    devices: list[Ref] = Field(default_factory=list, max_length=MAX_TARGETS, description="UDIDs or serials")
    groups: list[Ref] = Field(default_factory=list, max_length=MAX_TARGETS, description="Group names or ids")


def _data(body: DeclarationBody) -> bytes | None:
    if body.data_base64 is None:
        return None
    try:
        return base64.b64decode(body.data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("data_base64: not base64") from None


@router.get("", summary="Every declaration: identifier, kind, type, server token, version, assignments")
def list_declarations(request: Request, _: Caller) -> dict[str, Any]:
    return _russet(request).declarations.list_declarations()


@router.post("", status_code=201, summary="Create a declaration (refused with Apple's schema's words)")
def create(request: Request, caller: Caller, body: DeclarationCreate) -> dict[str, Any]:
    return _russet(request).declarations.create(
        body.type,
        body.payload,
        identifier=body.identifier,
        data=_data(body),
        data_type=body.content_type,
        profile=body.profile,
        profile_version=body.profile_version,
        created_by=caller,
    )


@router.get("/summary", summary="The fleet: OS versions reported, each declaration's states and failures")
def summary(request: Request, _: Caller) -> dict[str, Any]:
    return _russet(request).declarations.summary()


@router.get("/software-updates", summary="Devices told to update: running, target, by when, state, done")
def software_updates(request: Request, _: Caller) -> dict[str, Any]:
    return _russet(request).declarations.software_updates()


@router.get("/devices/{device}", summary="A device's declarations, declared vs reported, and its status")
def device_state(request: Request, _: Caller, device: str) -> dict[str, Any]:
    return _russet(request).declarations.device_state(device)


@router.post("/refresh", summary="Recompute every device's set now; command the devices whose set changed")
def refresh(request: Request, _: Caller) -> dict[str, Any]:
    return _russet(request).declarations.refresh()


@router.get("/{identifier}", summary="A declaration: payload, versions, assignments")
def show(request: Request, _: Caller, identifier: str) -> dict[str, Any]:
    return _russet(request).declarations.show(identifier)


@router.put("/{identifier}", summary="Change a declaration: a new version and server token if it changed")
def update(request: Request, caller: Caller, identifier: str, body: DeclarationBody) -> dict[str, Any]:
    return _russet(request).declarations.update(
        identifier,
        body.payload,
        data=_data(body),
        data_type=body.content_type,
        profile=body.profile,
        profile_version=body.profile_version,
        created_by=caller,
    )


@router.delete("/{identifier}", summary="Delete a declaration (devices holding it are told to remove it)")
def delete(request: Request, _: Caller, identifier: str) -> dict[str, Any]:
    return _russet(request).declarations.delete(identifier)


@router.get("/{identifier}/status", summary="One declaration across the fleet: states, failures and why")
def declaration_status(request: Request, _: Caller, identifier: str) -> dict[str, Any]:
    return _russet(request).declarations.declaration_status(identifier)


@router.post(
    "/{identifier}/assignments", summary="Assign to devices and groups (their members as they change)"
)
def assign(request: Request, _: Caller, identifier: str, body: Targets) -> dict[str, Any]:
    return _russet(request).declarations.assign(identifier, devices=body.devices, groups=body.groups)


@router.delete("/{identifier}/assignments", summary="Remove assignments to devices and groups")
def unassign(request: Request, _: Caller, identifier: str, body: Targets) -> dict[str, Any]:
    return _russet(request).declarations.unassign(identifier, devices=body.devices, groups=body.groups)
