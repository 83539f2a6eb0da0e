"""Admin REST API for APNs pushes, under /api/v1/push.

Pushing on demand is `async`: it runs on the server's event loop, where the pusher keeps its
HTTP/2 connections to APNs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from russet.access.roles import Role
from russet.api.models import ApiModel, EnrollmentId
from russet.apns.certificate import ApnsCertificateConflict
from russet.kernel.errors import Conflict
from russet.web.deps import Caller, needs
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/push", tags=["apns"])
MAX_CERTIFICATE_CHARS = 64 * 1024  # a certificate and Apple's intermediates are a few kilobytes


class PushRequest(ApiModel):
    devices: list[EnrollmentId] = Field(min_length=1, description="Enrollment ids (UDID or EnrollmentID)")


@router.post(
    "", summary="Push these devices now; returns each device's outcome", dependencies=[needs(Role.OPERATOR)]
)
async def push(request: Request, _: Caller, body: PushRequest) -> dict[str, Any]:
    return await _russet(request).push.push_devices(body.devices)


class CertificateUpload(ApiModel):
    certificate: str = Field(
        max_length=MAX_CERTIFICATE_CHARS,
        description="The MDM push certificate Apple issued for Russet's CSR, as PEM (with intermediates)",
    )
    force: bool = Field(
        False, description="Allow a topic change or a certificate that expires before the installed one"
    )


@router.put(
    "/certificate",
    summary="Install the push certificate Apple issued; its topic applies at once, without a restart",
)
def import_certificate(request: Request, _: Caller, body: CertificateUpload) -> dict[str, Any]:
    try:
        result = _russet(request).push.import_certificate(body.certificate.encode(), force=body.force)
    except ApnsCertificateConflict as exc:  # a topic change or an earlier expiry
        raise Conflict(str(exc).replace("pass --force", 'send "force": true')) from None
    return {
        "topic": result.topic,
        "not_after": result.not_after.isoformat(),
        "fingerprint": result.fingerprint,
        "previous_topic": result.previous_topic,
        "unchanged": result.unchanged,
        "warnings": result.warnings,
    }


@router.get("/status", summary="Push certificate, whether pushing runs (or why not), outcome counts")
def status(request: Request, _: Caller) -> dict[str, Any]:
    return _russet(request).push.push_status()
