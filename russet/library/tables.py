"""The profile library's tables: profiles (a name and the PayloadIdentifier devices know them by)
and their versions (every change a new one, old ones kept), owned by `library.store`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from russet.infra.metadata import BigId, metadata

library_profiles = Table(
    "library_profiles",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    # The top-level PayloadIdentifier: what a device's ProfileList and RemoveProfile name it by.
    Column("identifier", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


library_profile_versions = Table(
    "library_profile_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("profile_id", BigInteger, ForeignKey("library_profiles.id"), nullable=False),
    Column("version", Integer, nullable=False),  # 1, 2, ... per profile
    Column("payload_uuid", String(255), nullable=False),  # the top-level PayloadUUID
    Column("display_name", String(255), nullable=True),
    Column("payload_types", Text, nullable=False),  # JSON list, in payload order
    Column("payloads", Text, nullable=False),  # JSON: [{type, identifier, uuid, display_name}]
    Column("variables", Text, nullable=False),  # JSON list of the $VARIABLES it uses
    # SHA-256 of the canonical XML plist (sorted keys), unsigned and before substitution.
    Column("content_sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    # SecretBox (purpose library-profile:<sha256>): profiles carry Wi-Fi passwords and identities.
    Column("sealed_content", LargeBinary, nullable=False),
    Column("signer", Text, nullable=True),  # subject of the certificate that signed the upload
    Column("signer_fp", String(64), nullable=True),  # its SHA-256
    Column("uploaded_by", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("profile_id", "version"),
)
