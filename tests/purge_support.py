"""The purge check of issue #16: walk every table Russet has and look for identifiers in it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, LargeBinary, String, select

from russet.storage.db import reading
from russet.tables import metadata  # every feature's tables registered


def find_identifiers(engine: Engine, identifiers: Iterable[str]) -> dict[str, set[str]]:
    """Which of `identifiers` occur in which `table.column`, searching every text and binary
    column of every table (text as is, bytes as UTF-8 substrings: command plists are XML)."""
    wanted = [i for i in identifiers if i]
    found: dict[str, set[str]] = {}
    with reading(engine) as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | LargeBinary)]
            if not columns:
                continue
            for row in conn.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    haystack = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    for ident in wanted:
                        if ident.encode() in haystack:
                            found.setdefault(f"{table.name}.{column.name}", set()).add(ident)
    return found


def all_found(found: dict[str, set[str]]) -> set[str]:
    return set().union(*found.values()) if found else set()
