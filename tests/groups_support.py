"""Devices written straight into the MDM core's tables, with the facts groups test."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from russet.abm.tables import abm_devices
from russet.enrollment.tables import enrollment_requests
from russet.mdm.tables import enrollments, inventory
from russet.runtime import Russet
from russet.storage.db import utcnow


def add_device(
    russet: Russet,
    udid: str,
    *,
    serial: str | None = None,
    product: str = "iPhone15,2",
    os_version: str | None = "17.4",
    supervised: bool | None = None,
    seen_ago: timedelta | None = timedelta(minutes=5),
    enrollment_type: str = "device",
    enabled: bool = True,
    device_name: str | None = None,
    **extra: Any,
) -> str:
    now = utcnow()
    row = {
        "id": udid,
        "device_id": udid,
        "channel": "device",
        "enrollment_type": enrollment_type,
        "enabled": enabled,
        "awaiting_configuration": False,
        "serial_number": serial,
        "product_name": product,
        "model": product,
        "os_version": os_version,
        "device_name": device_name,
        "created_at": now,
        "last_seen_at": None if seen_ago is None else now - seen_ago,
        **extra,
    }
    with russet.storage.engine.begin() as conn:
        conn.execute(insert(enrollments).values(**row))
        if supervised is not None:
            conn.execute(
                insert(inventory).values(
                    enrollment_id=udid,
                    section="DeviceInformation",
                    data=json.dumps({"IsSupervised": supervised, "OSVersion": os_version}),
                    updated_at=now,
                )
            )
    return udid


def add_user_channel(russet: Russet, udid: str, user: str) -> None:
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(enrollments).values(
                id=f"{udid}:{user}",
                device_id=udid,
                channel="user",
                enrollment_type="user",
                enabled=True,
                awaiting_configuration=False,
                created_at=utcnow(),
            )
        )


def list_in_abm(russet: Russet, connection: str, serial: str) -> None:
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(abm_devices).values(
                connection=connection, serial_number=serial, generation=1, updated_at=utcnow()
            )
        )


def served_ade_profile(russet: Russet, udid: str, serial: str) -> None:
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(enrollment_requests).values(at=utcnow(), method="ade", udid=udid, serial_number=serial)
        )


def set_seen(russet: Russet, udid: str, when: datetime) -> None:
    from sqlalchemy import update

    with russet.storage.engine.begin() as conn:
        conn.execute(update(enrollments).where(enrollments.c.id == udid).values(last_seen_at=when))
