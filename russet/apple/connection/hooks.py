"""What disconnect and purge do to a feature's connection, declared as data.

A feature names its connection table (`root`, keyed by `name`), the sealed columns to wipe on
disconnect, the tables whose rows belong to a connection (`owner` column) and what is left to do
on Apple's side; `connection_hooks` makes the registry's `ServiceHooks` of it. A purge deletes the
children in the order given, then the root row; each row is named in the receipt by its primary
key without the owner (`serial_number`, `adam_id:pricing_param`), or by the owner when that is
the whole key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial, reduce
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table

from russet.apple.connections import ServiceHooks, count_owned, delete_owned, destroy_sealed


def receipt_key(table: Table, owner: str) -> ColumnElement[Any]:
    """How a purge receipt names a row: its primary key without the owner, joined by ':'."""
    rest = [c for c in table.primary_key.columns if c.name != owner] or [table.c[owner]]
    return reduce(lambda left, right: left + ":" + right, rest)


def connection_hooks(
    service: str,
    root: Table,
    sealed: Mapping[str, str],
    also_clear: tuple[str, ...],
    owner: str,
    children: Sequence[Table],
    apple_side: Callable[[str], list[str]],
) -> ServiceHooks:
    """Hooks that wipe `sealed` (column -> what the receipt calls it) and `also_clear` on
    disconnect, and delete `children` (by their `owner` column) then the root row on purge."""
    owned = tuple((t, t.c[owner], receipt_key(t, owner)) for t in children)
    owned += ((root, root.c.name, root.c.name),)

    def purge(conn: Connection, name: str) -> dict[str, list[str]]:
        return delete_owned(conn, name, owned)

    def traces(conn: Connection, name: str) -> dict[str, int]:
        return count_owned(conn, name, owned)

    return ServiceHooks(
        service=service,
        destroy_credentials=partial(_destroy, root, dict(sealed), also_clear),
        purge=purge,
        apple_side=apple_side,
        traces=traces,
    )


def _destroy(
    root: Table, sealed: dict[str, str], also_clear: tuple[str, ...], conn: Connection, name: str
) -> dict[str, list[str]]:
    return destroy_sealed(conn, root, name, sealed, also_clear=also_clear)
