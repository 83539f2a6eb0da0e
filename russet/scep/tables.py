"""SCEP's tables: one-time enrollment challenges and identity renewals (`scep.challenges`).

Both point at `certificates` (infrastructure) by fingerprint; the foreign keys are named by string.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from russet.infra.metadata import BigId, metadata

scep_challenges = Table(
    "scep_challenges",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("challenge_hash", String(64), nullable=False, unique=True),  # SHA-256; never the challenge
    Column("subject", Text, nullable=True),  # RFC 4514 subject the CSR must carry, if bound to one
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("consumed_at", DateTime(timezone=True), nullable=True),
    # The certificate it was redeemed for, written in the transaction that consumes it.
    Column("issued_fp", String(64), ForeignKey("certificates.fingerprint"), nullable=True),
    Index("ix_scep_challenges_issued_fp", "issued_fp"),  # the challenge an identity was bought with
)


scep_renewals = Table(
    "scep_renewals",
    metadata,
    # A certificate issued by a SCEP RenewalReq, and the one whose holder asked for it: lets the
    # enrollment bound to the old certificate move to the new one.
    Column("new_fp", String(64), ForeignKey("certificates.fingerprint"), primary_key=True),
    Column("old_fp", String(64), ForeignKey("certificates.fingerprint"), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Index("ix_scep_renewals_old_fp", "old_fp"),
)
