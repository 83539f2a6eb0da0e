"""The console's push certificate page (issue #19 item 5): the installed APNs certificate (topic,
expiry shaded amber from 30 days and red from 7, fingerprint), and a form that uploads the
certificate Apple issued. Renewing is uploading a new certificate for the same topic: Russet
pairs it with the installed key (or the pending one from `russet apns csr`).

The upload calls `russet.push.import_certificate`, as `PUT /api/v1/push/certificate` and
`russet apns import` do; every check runs before anything is written, so a refusal (not a
certificate, a key that matches no CSR, another topic, an earlier expiry) leaves the installed
certificate as it was and is shown on the page with the API's status.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.access.roles import Role
from russet.console.common import (
    Admin,
    Flash,
    Refusal,
    Signed,
    Upload,
    attempt,
    call,
    checked_upload,
    done,
    expiry_class,
    page,
)
from russet.web.deps import needs
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/push", include_in_schema=False)
FORCE_HINT = 'tick "Install anyway"'  # what the service's "pass --force" means on this form


def _show(request: Request, admin: Admin, status: int = 200, *, flash: Flash | None = None) -> HTMLResponse:
    cert = call(_russet(request).push.certificate_status)
    shade = expiry_class(cert["not_after"]) if cert["installed"] else ""
    return page(request, "push.html", admin, status, flash=flash, cert=cert, expiry_class=shade)


@router.get("")
def certificate(request: Request, admin: Signed) -> HTMLResponse:
    return _show(request, admin)


@router.post("/certificate", dependencies=[needs(Role.ADMIN)])
def upload(request: Request, admin: Signed, parts: Upload) -> Response:
    """Install (or renew with) the push certificate Apple issued, PEM or DER."""
    checked_upload(admin, parts)
    data = parts.get("certificate", b"")
    force = parts.get("force", b"") == b"on"
    try:
        if not data:
            raise Refusal(Flash("error", "choose the push certificate file Apple issued (.pem)"), 400)
        result = attempt(_russet(request).push.import_certificate, data, force=force)
    except Refusal as refused:
        text = refused.flash.text.replace("pass --force", FORCE_HINT)
        return _show(request, admin, refused.status, flash=Flash("error", text))
    if result.unchanged:
        message = f"This push certificate ({result.topic}) was already installed; nothing changed."
    else:
        message = f"Push certificate installed for {result.topic}; it expires {result.not_after.isoformat()}."
    return done(request, "/console/push", message + "".join(f" {w}." for w in result.warnings))
