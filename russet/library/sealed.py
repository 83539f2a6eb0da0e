"""What the profile library seals at rest, for key rotation (`russet.storage.rotation`): profile contents."""

from __future__ import annotations

from russet.library.store import content_purpose
from russet.library.tables import library_profile_versions
from russet.storage.rotation import SealedColumn

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(library_profile_versions, "sealed_content", lambda r: content_purpose(r.content_sha256)),
)
