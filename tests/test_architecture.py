"""The import contracts of docs/architecture.md (pyproject.toml, `[tool.importlinter]`) hold.

import-linter reads the whole import graph, function-level imports included: the kernel imports
nothing from Russet, nothing below the surfaces imports them, each layer imports only those below
it, and Russet's top-level packages import each other without cycles. No contract lists an
exception (`ignore_imports`): issue #12 moved the code that needed them.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def _lint(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    here = Path.cwd()
    # import-linter configures logging as it runs, which disables every logger that exists then
    # (Russet's included): later tests reading their log lines (caplog) would find nothing.
    loggers = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    disabled = [lg.disabled for lg in loggers]
    os.chdir(ROOT)  # import-linter finds `russet` on the path from the project folder
    try:
        code = lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    finally:
        os.chdir(here)
        for lg, was in zip(loggers, disabled, strict=True):
            lg.disabled = was
    return code, capsys.readouterr().out


def test_the_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _lint(ROOT / "pyproject.toml", capsys)
    assert code == 0, out
    assert "4 kept, 0 broken" in out


def test_no_contract_has_an_exception() -> None:
    """The contracts hold as written: none ignores an import (the rule is the code's, not a list's)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["id"] for c in contracts} == {"kernel", "surfaces", "layers", "acyclic"}
    excepted = {c["id"]: c["ignore_imports"] for c in contracts if c.get("ignore_imports")}
    assert excepted == {}


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
