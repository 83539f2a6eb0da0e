"""The device endpoint for data a declaration serves (an asset's data, a legacy profile):
`GET /mdm/ddm/data/<device>/<identifier>/<token>`.

The URL is handed only inside the declaration the device fetched over its authenticated DDM
check-in, and its token is the device's own (keyed by a server secret), so one device's URL does
not open another's data. Any refusal is a 404 that does not say which part was wrong; never 401.
"""

from __future__ import annotations

import logging

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from russet.declarative.service import DeclarativeService
from russet.kernel.errors import NotFound

log = logging.getLogger("russet.declarative")
DATA_PATH = "/mdm/ddm/data/{device}/{identifier}/{token}"
TOKEN_SEGMENT = ("/mdm/ddm/data/", 6)  # the data token's place in the path, for the access log


def data_routes(service: DeclarativeService) -> list[Route]:
    async def serve(request: Request) -> Response:
        params = request.path_params
        try:
            body, content_type = await anyio.to_thread.run_sync(
                service.data, params["device"], params["identifier"], params["token"]
            )
        except NotFound:
            log.warning(  # never the token: it is the capability
                "declaration data refused: device %s, declaration %s",
                params["device"][:64],
                params["identifier"][:128],
            )
            return PlainTextResponse("not found\n", status_code=404)
        return Response(body, media_type=content_type)

    return [Route(DATA_PATH, serve, methods=["GET"])]
