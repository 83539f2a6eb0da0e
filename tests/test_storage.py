"""Storage: migrations produce the declared schema; the authority survives restarts."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import make_engine, migrate
from russet.tables import metadata


def test_migrations_create_exactly_the_declared_schema(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    migrate(engine)
    migrate(engine)  # running again on start is harmless
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_ca_is_created_once_and_kept(settings: Settings) -> None:
    first = Russet.open(settings)
    first.close()
    second = Russet.open(settings)
    try:
        assert second.authority.ca_certificate == first.authority.ca_certificate
        assert second.authority.signer_certificate == first.authority.signer_certificate
        assert second.storage.certificates.count("ca") == 1
    finally:
        second.close()


def test_wrong_master_key_is_a_clear_error(settings: Settings) -> None:
    import base64
    import dataclasses

    import pytest

    from russet.storage.secretbox import SecretError

    Russet.open(settings).close()
    other = dataclasses.replace(settings, master_key=base64.b64encode(b"k" * 32).decode())
    with pytest.raises(SecretError, match="wrong master key"):
        Russet.open(other)


def test_migrations_form_one_line_of_history() -> None:
    """Branches from parallel work must be chained: one head, each revision revising the one before."""
    from alembic.script import ScriptDirectory

    from russet.storage.db import MIGRATIONS_DIR

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert script.get_heads() == [script.get_current_head()]
    revisions = list(script.walk_revisions())
    assert [r.down_revision for r in revisions[:-1]] == [r.revision for r in revisions[1:]]
    assert revisions[-1].down_revision is None


def test_the_head_read_without_alembic_is_alembics() -> None:
    """Opening a migrated database does not import Alembic; its head must still be Alembic's."""
    from alembic.script import ScriptDirectory

    from russet.storage.db import MIGRATIONS_DIR, head_revision

    assert head_revision() == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
