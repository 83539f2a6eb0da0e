"""Resolving a message's identity keys into one enrollment id (Apple protocol §a.2).

The device channel is keyed by UDID (or EnrollmentID for User Enrollment); a user channel by
"<device id>:<user id>", where the user id is UserShortName on Shared iPad (whose UserID is
the constant all-F GUID), else UserID, else EnrollmentUserID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from russet.mdm.errors import BadRequest

SHARED_IPAD_USER_ID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"
_MAX_ID = 255
MAX_CHANNEL_ID = 300  # enrollments.id


@dataclass(frozen=True, slots=True)
class Channel:
    enrollment_id: str
    device_id: str
    is_user: bool
    enrollment_type: str  # device | user_enrollment | user | shared_ipad
    user_id: str | None = None
    user_short_name: str | None = None
    user_long_name: str | None = None


def _opt_str(msg: dict[str, Any], key: str) -> str | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        raise BadRequest(f"{key} must be a non-empty string of at most {_MAX_ID} characters")
    if "\x00" in value:  # PostgreSQL text refuses NUL; the same input gets the same answer on both
        raise BadRequest(f"{key} contains a NUL character")
    return value


def resolve_channel(msg: dict[str, Any]) -> Channel:
    udid = _opt_str(msg, "UDID")
    enrollment_id = _opt_str(msg, "EnrollmentID")
    device_id = udid or enrollment_id
    if device_id is None:
        raise BadRequest("the message has neither UDID nor EnrollmentID")
    device_type = "device" if udid else "user_enrollment"
    user_id = _opt_str(msg, "UserID")
    short = _opt_str(msg, "UserShortName")
    long_name = _opt_str(msg, "UserLongName")
    enrollment_user_id = _opt_str(msg, "EnrollmentUserID")
    if user_id is None and enrollment_user_id is None:
        return Channel(device_id, device_id, False, device_type)
    if user_id is not None and user_id.upper() == SHARED_IPAD_USER_ID:
        if short is None:
            raise BadRequest("a Shared iPad user channel needs UserShortName")
        uid, kind = short, "shared_ipad"
    elif user_id is not None:
        uid, kind = user_id, "user"
    else:
        assert enrollment_user_id is not None
        uid, kind = enrollment_user_id, "user_enrollment"
    channel_id = f"{device_id}:{uid}"
    if len(channel_id) > MAX_CHANNEL_ID:
        raise BadRequest(f"the user channel id (device:user) is over {MAX_CHANNEL_ID} characters")
    return Channel(channel_id, device_id, True, kind, uid, short, long_name)
