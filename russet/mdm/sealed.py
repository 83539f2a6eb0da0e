"""What the MDM core seals at rest, for key rotation (`russet.storage.rotation`): unlock and
bootstrap tokens, push credentials, and the bodies and results of commands that carry secrets."""

from __future__ import annotations

from russet.mdm.enrollments import push_purpose
from russet.mdm.queue import body_purpose, result_purpose
from russet.mdm.tables import bootstrap_tokens, command_queue, commands, enrollments
from russet.storage.rotation import SealedColumn

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(enrollments, "sealed_unlock_token", lambda r: f"unlock-token:{r.device_id}"),
    SealedColumn(enrollments, "sealed_push", lambda r: push_purpose(r.id)),
    SealedColumn(bootstrap_tokens, "sealed_token", lambda r: f"bootstrap-token:{r.device_id}"),
    SealedColumn(commands, "body_template", lambda r: body_purpose(r.id), may_be_clear=True),
    SealedColumn(command_queue, "result", lambda r: result_purpose(r.command_uuid), may_be_clear=True),
)
