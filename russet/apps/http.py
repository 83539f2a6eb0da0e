"""Hosted app downloads for devices: `GET /apps/download/{token}/manifest.plist` and
`.../package.{ipa,pkg}`, the device-facing adapter of `AppCatalogue.manifest`/`package`.

A device-front route (no API key: the app installer fetches it without Russet's identity); the
token in the path is the credential (`russet.apps.tokens`). A bad or expired token is a 403, never
a 401 (nothing under a device prefix answers 401), an unknown app a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from russet.kernel.errors import NotFound, Refused, RussetError

if TYPE_CHECKING:  # only the type: the runtime hands the service in
    from russet.apps.service import AppCatalogue

MANIFEST_PATH = "/apps/download/{token}/manifest.plist"
PACKAGE_PATH = "/apps/download/{token}/package.{kind}"
TOKEN_SEGMENT = ("/apps/download/", 3)  # the download token's place in the path, for the access log


def _refusal(exc: RussetError) -> Response:
    status = 403 if isinstance(exc, Refused) else 404 if isinstance(exc, NotFound) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)


def app_download_routes(catalogue: AppCatalogue) -> list[Route]:
    async def manifest(request: Request) -> Response:
        try:
            body = await run_in_threadpool(catalogue.manifest, request.path_params["token"])
        except RussetError as exc:
            return _refusal(exc)
        return Response(body, media_type="application/xml")

    async def package(request: Request) -> Response:
        try:
            path, name = await run_in_threadpool(catalogue.package, request.path_params["token"])
        except RussetError as exc:
            return _refusal(exc)
        if request.path_params["kind"] != path.suffix.lstrip("."):
            return JSONResponse({"detail": "no such package"}, status_code=404)
        return FileResponse(path, media_type="application/octet-stream", filename=name)

    return [
        Route(MANIFEST_PATH, manifest, methods=["GET"]),
        Route(PACKAGE_PATH, package, methods=["GET"]),
    ]
