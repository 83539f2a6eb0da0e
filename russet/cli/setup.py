"""`russet migrate` (set the database up) and `russet secrets rotate` (a new master key)."""

from __future__ import annotations

import click

from russet.cli.common import handles_errors
from russet.config import Settings
from russet.runtime import set_up
from russet.storage.db import make_engine
from russet.storage.rotation import rotate
from russet.storage.secretbox import SecretBox
from russet.wiring.sealed import SEALED_COLUMNS
from russet.wiring.storage import Storage


@click.command("migrate")
@handles_errors
def migrate() -> None:
    """Bring the database to this version's schema and create the CA on first use (idempotent).

    Takes a lock that servers starting at the same time also take, so it runs once.
    """
    settings = Settings.from_env()
    box = SecretBox.load(settings.data_dir, settings.master_key)
    engine = make_engine(settings.database_url)
    try:
        done, _ = set_up(Storage.open(engine, box, max_attempts=1, inventory_hook=None), box)
    finally:
        engine.dispose()
    if done.applied:
        start = "an empty database" if done.before is None else f"revision {done.before}"
        click.echo(f"migrated from {start} to {done.after}: applied {', '.join(done.applied)}")
    else:
        click.echo(f"already at revision {done.after}: nothing to do")


@click.group("secrets")
def secrets() -> None:
    """The master key that seals Russet's secrets at rest."""


@secrets.command("rotate")
@click.confirmation_option(
    prompt="Stop every Russet server first (they hold the current key). Rotate the master key now?"
)
@handles_errors
def secrets_rotate() -> None:
    """Re-seal every secret under a new master key, in one transaction, then replace the key.

    With the key in the data directory, master.key is replaced once the transaction has
    committed (the new key waits in master.key.new, 0600, until then). With RUSSET_MASTER_KEY,
    the new key is printed once: put it in the environment of every server and CLI.
    """
    settings = Settings.from_env()

    def announce(key: str) -> None:
        click.echo(key)
        click.echo(
            "(the new master key, shown once: it takes effect only if the rotation commits, "
            "as the next line will say)",
            err=True,
        )

    done = rotate(settings, SEALED_COLUMNS, announce)
    total = sum(done.resealed.values())
    details = ", ".join(f"{label} {n}" for label, n in done.resealed.items() if n)
    click.echo(f"re-sealed {total} secrets ({details or 'none stored yet'})", err=done.new_key is not None)
    if done.new_key is not None:
        click.echo(
            "committed: set RUSSET_MASTER_KEY to the key printed above for every server and CLI "
            "command; the old key no longer opens anything",
            err=True,
        )
    else:
        click.echo(f"committed: {done.key_file} holds the new key; the old key no longer opens anything")
