"""The ledger for a privacy officer (`russet.ledger_privacy`, issue #16 items 1, 2 and 5): the
report laid out as Microsoft's "Data Intune sends to Apple" with its chart over time, a subject's
right-of-access export and erasure, and retention per service.

Every surface (CLI, API, console) calls these and renders the JSON-ready dicts they return
(`russet.apple.documents` makes CSV, text, SVG and PDF of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.ledger import Ledger
from russet.apple.ports import SubjectErasure, SubjectLinks
from russet.apple.report import LedgerReports, intune_table, reference_source, summary
from russet.apple.retention import LedgerRetention
from russet.apple.subjects import SubjectLookup
from russet.kernel.errors import Invalid
from russet.storage.db import utcnow


class LedgerPrivacy:
    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        links: Sequence[SubjectLinks],
        erasures: Sequence[SubjectErasure] = (),
    ) -> None:
        self.reports = LedgerReports(engine, ledger)
        self.retention = LedgerRetention(engine, ledger)
        self.subjects = SubjectLookup(engine, ledger, links, erasures)

    def table(
        self, *, since: datetime | None = None, service: str | None = None, days: int = 30
    ) -> dict[str, Any]:
        """The Intune-shaped table with Russet's counts, the differences, retention and the
        timeline of the last `days` days."""
        if service is not None and service not in SERVICE_NAMES:
            raise Invalid(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
        rows = intune_table(self.reports.totals(since=since, service=service), service=service)
        return {
            "generated_at": utcnow().isoformat(),
            "since": since.isoformat() if since else None,
            "service": service,
            "reference": reference_source(),
            "rows": rows,
            "summary": summary(rows),
            "retention": self.retention.policies(),
            "timeline": self.reports.timeline(days),
        }

    def subject(self, query: str) -> dict[str, Any]:
        return self.subjects.export(query)

    def erase(self, query: str, *, by: str | None = None, reason: str | None = None) -> dict[str, Any]:
        return self.subjects.erase(query, by=by, reason=reason)

    def erasures(self) -> list[dict[str, Any]]:
        return self.subjects.erasures()

    def retention_policies(self) -> list[dict[str, Any]]:
        return self.retention.policies()

    def set_retention(self, service: str, days: int, *, by: str | None = None) -> dict[str, Any]:
        return self.retention.set_policy(service, days, by=by)

    def apply_retention(self) -> dict[str, int]:
        return self.retention.apply()
