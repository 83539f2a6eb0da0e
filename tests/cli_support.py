"""Running the `russet` CLI in the test's process, against a test's settings (the fixtures
`invoke_cli` and `run` in conftest.py use it; modules with settings of their own call it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from click.testing import CliRunner, Result

from russet.config import Settings


def cli_invoker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, extra_env: Mapping[str, str] | None = None
) -> Callable[..., Result]:
    """`invoke(*args)` runs `russet ARGS…` with the environment naming `settings` (and
    `extra_env`): the click Result. An exception other than click's exit fails the test (a
    command answers with one line, never a traceback)."""
    from russet.cli.main import cli

    for name, value in {
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": settings.public_url,
        "RUSSET_PUSH_TOPIC": settings.push_topic or "",
        **(extra_env or {}),
    }.items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str) -> Result:
        result = CliRunner().invoke(cli, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke
