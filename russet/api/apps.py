"""Admin REST API for the app catalogue, under /api/v1/apps (next to the Apps and Books installs
of `russet/api/vpp.py`): Apps and Books apps by adamId, enterprise apps by an uploaded package or
manifest. All logic is in `russet.apps.service` (`russet.apps`), shared with the CLI.

`POST /api/v1/apps/upload?name=&filename=` takes the file itself as the body (an `.ipa`, a
`.pkg` with `bundle_id` and `version`, or a manifest `.plist`), streamed to a spool file, so a
large package is never held in memory whole.
"""

from __future__ import annotations

import tempfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from russet.api.models import AdamId, ApiModel, Name
from russet.apps.packages import MAX_MANIFEST_BYTES
from russet.kernel.errors import TooLarge
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/apps", tags=["apps"])

BundleId = Annotated[str, Field(min_length=1, max_length=255)]
SPOOL_IN_MEMORY = 1024 * 1024


class NewVppApp(ApiModel):
    name: Name = Field(description="The catalogue's name of the app (blueprints name it so)")
    adam_id: AdamId = Field(description="The App Store id, among a connected location's assets")
    bundle_id: BundleId = Field(
        description="Its bundle id (ManagedApplicationList and RemoveApplication use it)"
    )
    location: Name | None = Field(None, description="The Apps and Books location, if several hold it")
    pricing: Literal["STDQ", "PLUS"] | None = None
    title: str | None = Field(None, max_length=255)


@router.get("", summary="The app catalogue")
def list_apps(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).apps.list_apps()


@router.post("", status_code=201, summary="Add an Apps and Books app (by adamId) to the catalogue")
def add_vpp(request: Request, caller: Caller, body: NewVppApp) -> dict[str, Any]:
    return _russet(request).apps.add_vpp(
        body.name,
        body.adam_id,
        body.bundle_id,
        location=body.location,
        pricing=body.pricing,
        title=body.title,
        created_by=caller,
    )


@router.post(
    "/upload",
    status_code=201,
    summary="Add an enterprise app: the .ipa/.pkg (hosted by Russet) or a manifest .plist as the body",
)
async def upload(
    request: Request,
    caller: Caller,
    name: Annotated[str, Query(min_length=1, max_length=100)],
    filename: Annotated[
        str, Query(min_length=1, max_length=255, description="app.ipa, app.pkg or manifest.plist")
    ],
    bundle_id: Annotated[str | None, Query(max_length=255, description="Needed for a .pkg")] = None,
    version: Annotated[str | None, Query(max_length=100, description="Needed for a .pkg")] = None,
) -> dict[str, Any]:
    catalogue = _russet(request).apps
    if filename.lower().endswith(".plist"):
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_MANIFEST_BYTES:
                raise TooLarge(f"a manifest is at most {MAX_MANIFEST_BYTES // 1024} KiB")
        return await run_in_threadpool(catalogue.add_manifest, name, bytes(data), created_by=caller)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        return await run_in_threadpool(
            lambda: catalogue.add_package(
                name, filename, spool, bundle_id=bundle_id, version=version, created_by=caller
            )
        )


@router.get("/{ident}", summary="One app, by id or name")
def show(request: Request, _: Caller, ident: str) -> dict[str, Any]:
    return _russet(request).apps.get(ident)


@router.delete("/{ident}", summary="Delete an app (refused while a blueprint names it)")
def delete(request: Request, _: Caller, ident: str) -> dict[str, Any]:
    return _russet(request).apps.delete(ident)
