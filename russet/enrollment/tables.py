"""Enrollment URLs: OTA enrollment tokens and a record of each profile handed out (OTA and ADE),
owned by `enrollment.tokens`, which `/mdm/enroll` uses.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from russet.infra.metadata import BigId, metadata

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256; never the token
    Column("prefix", String(16), nullable=False),  # shown to people to tell tokens apart
    Column("note", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("max_uses", Integer, nullable=True),  # NULL: any number until it expires
    Column("uses", Integer, nullable=False, default=0),  # counted in the UPDATE that admits a fetch
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


enrollment_requests = Table(
    "enrollment_requests",
    metadata,
    # One row per enrollment profile handed out by /mdm/enroll.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    # How the profile was asked for (METHODS in enrollment.tokens): ota (token), ade (signed
    # MachineInfo), ade_signin (MachineInfo, then a person signed in on configuration_web_url),
    # account (account-driven enrollment, after a person signed in).
    Column("method", String(20), nullable=False),
    Column("token_id", BigInteger, ForeignKey("enrollment_tokens.id"), nullable=True),
    # From a verified MachineInfo (ADE only); IMEI, MEID and language are not kept.
    Column("udid", String(255), nullable=True),
    Column("serial_number", String(64), nullable=True),
    Column("product", String(100), nullable=True),
    Column("build_version", String(50), nullable=True),
    Column("os_version", String(50), nullable=True),
    # Who signed in, for ade_signin and account (the issuer's subject or a local account name, and
    # what the provider said of them): personal data, listed by the ledger's subject look-up.
    Column("person_id", String(255), nullable=True),
    Column("person_email", String(320), nullable=True),
    Column("person_name", String(255), nullable=True),
    # The SCEP challenge in the profile: joins to scep_challenges.issued_fp, the identity it bought.
    Column("challenge_hash", String(64), nullable=True),
    Index("ix_enrollment_requests_serial_number", "serial_number"),
    Index("ix_enrollment_requests_at", "at"),
    Index("ix_enrollment_requests_person_id", "person_id"),
    Index("ix_enrollment_requests_challenge_hash", "challenge_hash"),  # how a device enrolled
    Index("ix_enrollment_requests_udid", "udid"),  # ADE look-ups (device facts, re-enrollment)
)


# Account-driven enrollment (russet/enrollment/account.py): the organisation's domains whose
# people may enroll by signing in (/.well-known/com.apple.remotemanagement answers only for them),
# and the one-use bearer tokens a sign-in buys (hashed; the person is kept until the token is
# used or expires, then pruned by housekeeping).
enrollment_domains = Table(
    "enrollment_domains",
    metadata,
    Column("domain", String(253), primary_key=True),  # lower case, as in user@domain
    Column("mode", String(10), nullable=False),  # user (User Enrollment, mdm-byod) | device (mdm-adde)
    Column("created_at", DateTime(timezone=True), nullable=False),
)

enrollment_account_tokens = Table(
    "enrollment_account_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256; never the token
    Column("mode", String(10), nullable=False),  # the enrollment it was signed in for: user | device
    Column("person_id", String(255), nullable=False),
    Column("person_email", String(320), nullable=False),
    Column("person_name", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),  # set by the one UPDATE that spends it
    Index("ix_enrollment_account_tokens_expires_at", "expires_at"),
)
