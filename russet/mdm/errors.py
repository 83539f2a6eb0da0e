"""Errors a device request can end in, each with the HTTP status Apple's protocol calls for.

The base and the two every device endpoint shares (400, 413) live beside the bounded body reader
in `russet/bodylimit.py`; they are named here too, so the MDM core imports its errors from one place.
"""

from __future__ import annotations

from russet.bodylimit import BadRequest as BadRequest
from russet.bodylimit import DeviceRequestError as DeviceRequestError
from russet.bodylimit import PayloadTooLarge as PayloadTooLarge


class Unauthenticated(DeviceRequestError):
    """No device identity at all (400, as NanoMDM answers): never 401, which unenrolls a device."""

    status = 400


class Forbidden(DeviceRequestError):
    """An identity that Russet does not accept for this enrollment (403)."""

    status = 403


class UnknownEnrollment(DeviceRequestError):
    """A device Russet has no enrollment for (403). Apple suggests 401 here, but a 401 makes the
    device remove its MDM profile, so a lost or restored database would unenroll a whole fleet;
    unenrolling is only ever asked for on purpose (`UnrecognizedDevice`)."""

    status = 403


UNRECOGNIZED_DEVICE_CODE = "com.apple.unrecognized.device"


class UnrecognizedDevice(DeviceRequestError):
    """Apple's ErrorUnrecognizedDevice (iOS 17+, macOS 14+): a 403 with this JSON body makes the
    device unenroll. Sent only to a device an admin chose to forget (`russet device forget`)."""

    status = 403

    def json_body(self) -> dict[str, str]:
        return {
            "code": UNRECOGNIZED_DEVICE_CODE,
            "description": self.reason,
            "message": "This device is no longer managed by this server.",
        }


class NotFound(DeviceRequestError):
    """Something the device asked for that this server does not have (404)."""

    status = 404


class Gone(DeviceRequestError):
    """410: for UserAuthenticate, "this server does not manage this user" (Apple §a.4.4)."""

    status = 410
