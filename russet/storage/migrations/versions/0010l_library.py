"""The profile library: profiles and their versions (content sealed at rest).

Revision ID: 0010l_library
Revises: 0009c
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010l_library"
down_revision = "0010g_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "library_profiles",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_library_profiles"),
        sa.UniqueConstraint("name", name="uq_library_profiles_name"),
        sa.UniqueConstraint("identifier", name="uq_library_profiles_identifier"),
    )
    op.create_table(
        "library_profile_versions",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload_uuid", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("payload_types", sa.Text(), nullable=False),
        sa.Column("payloads", sa.Text(), nullable=False),
        sa.Column("variables", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sealed_content", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.Text(), nullable=True),
        sa.Column("signer_fp", sa.String(64), nullable=True),
        sa.Column("uploaded_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["library_profiles.id"],
            name="fk_library_profile_versions_profile_id_library_profiles",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_library_profile_versions"),
        sa.UniqueConstraint(
            "profile_id", "version", name="uq_library_profile_versions_profile_id_version"
        ),
    )


def downgrade() -> None:
    op.drop_table("library_profile_versions")
    op.drop_table("library_profiles")
