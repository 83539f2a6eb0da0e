"""The console's sign-in limiter table, owned by `russet.console.ratelimit`.

Shared by every worker and node, so that the limit holds for all of them together.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
)

from russet.infra.metadata import metadata

login_failures = Table(
    "login_failures",
    metadata,
    # Failed console sign-ins per bucket (`addr:<client address>` or `key:<API key prefix>`) in the
    # current window, shared by every worker and node so the limit holds for all of them together.
    Column("bucket", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
)
