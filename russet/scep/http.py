"""The `/scep` endpoint (GET and POST), as RFC 8894 §4 lays out its operations.

GET ?operation=GetCACaps | GetCACert | PKIOperation&message=<base64>, POST ?operation=PKIOperation
with the DER pkiMessage as body. A readable request always gets a CertRep (200), refusals
included; only input with no transaction to answer gets 400, and an oversized one 413.
"""

from __future__ import annotations

import base64
import binascii
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from russet.bodylimit import BadRequest, DeviceRequestError, PayloadTooLarge, read_body
from russet.pki.authority import Authority
from russet.scep.challenges import ChallengeStore
from russet.scep.message import Malformed
from russet.scep.responder import ScepResponder

log = logging.getLogger("russet.scep")

# A pkiMessage holds one CSR and one or two certificates: a few KiB. Far more is not SCEP.
MAX_MESSAGE_BYTES = 64 * 1024
PKI_MESSAGE_TYPE = "application/x-pki-message"
CA_CERT_TYPE = "application/x-x509-ca-cert"


def _message_param(request: Request) -> bytes:
    """The GET form's `message`: base64, whose `+` a URL query may have turned into a space."""
    message = request.query_params.get("message")
    if not message:
        raise BadRequest("PKIOperation by GET needs a message parameter (base64 pkiMessage)")
    if len(message) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise PayloadTooLarge(f"message is over the {MAX_MESSAGE_BYTES}-byte limit")
    text = message.replace(" ", "+").replace("-", "+").replace("_", "/").strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("message is not base64") from None


def scep_routes(authority: Authority, challenges: ChallengeStore) -> list[Route]:
    """/scep, issuing with Russet's CA (`authority`) against the one-time `challenges`."""
    responder = ScepResponder(authority, challenges)

    async def serve(request: Request) -> Response:
        operation = request.query_params.get("operation", "")
        try:
            if operation == "GetCACaps":
                return PlainTextResponse(responder.capabilities())
            if operation == "GetCACert":
                return Response(responder.ca_certificate(), media_type=CA_CERT_TYPE)
            if operation != "PKIOperation":
                raise BadRequest(f"unknown SCEP operation {operation!r}")
            der = (
                await read_body(request, MAX_MESSAGE_BYTES)
                if request.method == "POST"
                else _message_param(request)
            )
            if not der:
                raise BadRequest("empty pkiMessage")
            try:
                outcome = await run_in_threadpool(responder.pki_operation, der)
            except Malformed as exc:
                raise BadRequest(str(exc)) from None
        except DeviceRequestError as exc:
            log.warning(
                "SCEP %s refused (%d) from %s: %s",
                operation or "request",
                exc.status,
                _peer(request),
                exc.reason,
            )
            return PlainTextResponse(exc.reason + "\n", status_code=exc.status)
        return Response(outcome.body, media_type=PKI_MESSAGE_TYPE)

    return [Route("/scep", serve, methods=["GET", "POST"])]


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
