"""Console pages for the profile library (issue #13): the list, uploading a `.mobileconfig`
(refusals in the schema's words, as the API gives them), a profile's payloads and versions, a
version's download, and delete.

Every action calls `russet.library` (ProfileLibrary) as `russet/api/profiles.py` does.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from russet.console.common import (
    Admin,
    Flash,
    Form,
    Refusal,
    Signed,
    Upload,
    attempt,
    call,
    checked,
    checked_upload,
    done,
    page,
    text_part,
)
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/profiles", include_in_schema=False)
PROFILE_TYPE = "application/x-apple-aspen-config"


def _url(ref: str) -> str:
    return f"/console/profiles/{quote(ref, safe='')}"


def _list(
    request: Request, admin: Admin, status: int = 200, *, flash: Flash | None = None, name: str = ""
) -> HTMLResponse:
    profiles = call(_russet(request).library.list_profiles)
    return page(request, "profiles.html", admin, status, flash=flash, profiles=profiles, name=name)


def _show(
    request: Request, admin: Admin, ref: str, status: int = 200, *, flash: Flash | None = None
) -> HTMLResponse:
    profile = call(_russet(request).library.show, ref)
    return page(
        request, "profile.html", admin, status, flash=flash, profile=profile, url=_url(profile["name"])
    )


@router.get("")
def profiles(request: Request, admin: Signed) -> HTMLResponse:
    return _list(request, admin)


@router.post("")
def upload(request: Request, admin: Signed, parts: Upload) -> Response:
    checked_upload(admin, parts)
    name = text_part(parts, "name").strip()
    try:
        if not parts.get("file"):
            raise Refusal(Flash("error", "choose a .mobileconfig file to upload"), 400)
        added = attempt(
            _russet(request).library.add, parts["file"], name=name or None, uploaded_by=admin.name
        )
    except Refusal as refused:
        return _list(request, admin, refused.status, flash=refused.flash, name=name)
    profile = added["profile"]
    if added["created"]:
        message = f"Profile {profile['name']!r}: version {added['version']} added."
    else:
        message = (
            f"Profile {profile['name']!r}: the file is version {added['version']} already; nothing added."
        )
    if added["unknown_variables"]:
        message += " Unknown variables left as written: " + ", ".join(added["unknown_variables"]) + "."
    return done(request, _url(profile["name"]), message)


@router.get("/{ref}")
def show(request: Request, admin: Signed, ref: str) -> HTMLResponse:
    return _show(request, admin, ref)


@router.get("/{ref}/download")
def download(
    request: Request,
    admin: Signed,
    ref: str,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    filename, content = call(_russet(request).library.download, ref, version)
    return Response(
        content,
        media_type=PROFILE_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.post("/{ref}/delete")
def delete(request: Request, admin: Signed, form: Form, ref: str) -> Response:
    checked(admin, form)
    try:
        result = attempt(_russet(request).library.delete, ref)
    except Refusal as refused:
        return _show(request, admin, ref, refused.status, flash=refused.flash)
    return done(
        request,
        "/console/profiles",
        f"Profile {result['deleted']!r} and its {result['versions']} versions deleted.",
    )
