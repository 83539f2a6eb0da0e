"""Admin REST API for the profile library, under /api/v1/profiles.

Upload takes the `.mobileconfig` itself as the body (any content type but multipart), or as the
`file` part of a multipart/form-data form (with an optional `name` part); `?name=` names it either
way. All logic is in `russet.library` (`russet.library` on the running Russet), shared with the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import Field

from russet.access.roles import Role
from russet.api.models import MAX_DB_INT, ApiModel, EnrollmentId
from russet.kernel.errors import Invalid
from russet.web import multipart
from russet.web.deps import Caller, needs
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])

PROFILE_TYPE = "application/x-apple-aspen-config"
ProfileRef = Annotated[
    str, Path(min_length=1, max_length=255, description="The profile's name or identifier")
]
Version = Annotated[int | None, Query(ge=1, le=MAX_DB_INT, description="A version; the latest if absent")]

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string"},
                    },
                    "required": ["file"],
                }
            },
        },
    }
}


class InstallRequest(ApiModel):
    devices: list[EnrollmentId] = Field(
        min_length=1, description="Enrollment ids: UDID, EnrollmentID, or <device>:<user> for a user channel"
    )
    version: int | None = Field(None, ge=1, le=MAX_DB_INT, description="The version; the latest if absent")


@router.post(
    "",
    status_code=201,
    summary="Upload a .mobileconfig (signed or not): a new profile, or a new version of one",
    openapi_extra=_UPLOAD_BODY,
    responses={200: {"description": "The content is the latest version's already: nothing was added"}},
)
def upload(
    request: Request,
    response: Response,
    caller: Caller,
    data: Annotated[bytes, Body(media_type="application/octet-stream")],
    name: Annotated[str | None, Query(min_length=1, max_length=200, description="The profile's name")] = None,
) -> dict[str, Any]:
    # `data` is the raw body (read under the /api/ limit by BodyLimit), multipart or not.
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        parts = multipart.parts(data, content_type)
        if "file" not in parts:
            raise Invalid("the multipart form has no `file` part")
        data = parts["file"]
        if name is None and parts.get("name"):
            name = parts["name"].decode("utf-8", "replace")
    if name is not None and "\x00" in name:
        raise Invalid("name: NUL characters are not allowed")
    result = _russet(request).library.add(data, name=name, uploaded_by=caller)
    if not result["created"]:
        response.status_code = 200
    return result


@router.get("", summary="Profiles in the library with their latest version")
def list_profiles(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).library.list_profiles()


@router.get("/{profile}", summary="A profile: its payloads and every version")
def show(request: Request, _: Caller, profile: ProfileRef) -> dict[str, Any]:
    return _russet(request).library.show(profile)


@router.get("/{profile}/versions", summary="A profile's versions, newest first")
def versions(request: Request, _: Caller, profile: ProfileRef) -> list[dict[str, Any]]:
    return _russet(request).library.versions(profile)


@router.get(
    "/{profile}/download",
    summary="A version as stored (XML, unsigned), or with ?device= as that device receives it (signed)",
    response_class=Response,
    responses={200: {"content": {PROFILE_TYPE: _BINARY}, "description": "The .mobileconfig"}},
)
def download(
    request: Request,
    _: Caller,
    profile: ProfileRef,
    version: Version = None,
    device: Annotated[
        str | None, Query(min_length=1, max_length=300, description="Render for this enrollment id")
    ] = None,
) -> Response:
    filename, content = _russet(request).library.download(profile, version, device)
    return Response(
        content,
        media_type=PROFILE_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.post(
    "/{profile}/install",
    dependencies=[needs(Role.OPERATOR)],  # InstallProfile commands: an operator's
    status_code=201,
    summary="Queue InstallProfile with this profile (variables substituted per device, signed by Russet)",
)
def install(request: Request, caller: Caller, profile: ProfileRef, body: InstallRequest) -> dict[str, Any]:
    return _russet(request).library.install(profile, body.devices, version=body.version, created_by=caller)


@router.delete("/{profile}", summary="Delete a profile and its versions, unless something uses it")
def delete(request: Request, _: Caller, profile: ProfileRef) -> dict[str, Any]:
    return _russet(request).library.delete(profile)
