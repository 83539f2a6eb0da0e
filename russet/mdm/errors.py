"""Errors a device request can end in, each with the HTTP status Apple's protocol calls for."""

from __future__ import annotations


class DeviceRequestError(Exception):
    """A request Russet refuses; `reason` goes into the response body and the log."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(DeviceRequestError):
    """Malformed, oversized or incomplete input (400): the device retries, nothing is stored."""


class PayloadTooLarge(DeviceRequestError):
    status = 413


class Unauthenticated(DeviceRequestError):
    """No usable device identity at all (401)."""

    status = 401


class Forbidden(DeviceRequestError):
    """An identity that Russet does not accept for this enrollment (403)."""

    status = 403


class UnknownEnrollment(DeviceRequestError):
    """A device Russet does not manage. Apple asks for 401 here, which makes the device unenroll."""

    status = 401


class NotFound(DeviceRequestError):
    """Something the device asked for that this server does not have (404)."""

    status = 404


class Gone(DeviceRequestError):
    """410: for UserAuthenticate, "this server does not manage this user" (Apple §a.4.4)."""

    status = 410
