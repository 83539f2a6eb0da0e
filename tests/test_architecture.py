"""The import contracts of docs/architecture.md (pyproject.toml, `[tool.importlinter]`) hold.

import-linter reads the whole import graph, function-level imports included: the kernel imports
nothing from Russet, nothing below the surfaces imports them, each layer imports only those below
it, and Russet's top-level packages import each other without cycles — apart from today's listed
exceptions, which fail the check as soon as they no longer occur.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def _lint(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    here = Path.cwd()
    os.chdir(ROOT)  # import-linter finds `russet` on the path from the project folder
    try:
        code = lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    finally:
        os.chdir(here)
    return code, capsys.readouterr().out


def test_the_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _lint(ROOT / "pyproject.toml", capsys)
    assert code == 0, out
    assert "4 kept, 0 broken" in out


def test_a_broken_contract_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check is not vacuous: a contract today's code breaks (the composition root builds the
    MDM core, so it imports it) is reported broken."""
    config = tmp_path / "broken.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "russet"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "runtime imports no feature"\ntype = "forbidden"\n'
        'source_modules = ["russet.runtime"]\nforbidden_modules = ["russet.mdm"]\n'
    )
    code, out = _lint(config, capsys)
    assert code != 0
    assert "runtime imports no feature BROKEN" in out and "russet.runtime -> russet.mdm" in out
