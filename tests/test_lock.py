"""requirements.lock pins what CI and the quick start install: every dependency pyproject.toml names
(with its test extras) must be pinned there, to one exact version, or a fresh clone would pick up
whatever PyPI has that day."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_is_pinned_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"requirements.lock: {line!r} is not NAME==VERSION"
        pins[name.lower().replace("_", "-")] = version
    missing = sorted(wanted - pins.keys())
    assert not missing, f"requirements.lock does not pin {missing}: refresh it (see its first lines)"
    assert "russet" not in pins, "requirements.lock must not pin the project itself"
