"""Error kinds and their one mapping per surface, and the import rules that keep the layers apart.

Services raise `russet.kernel.errors` kinds; `russet.web.errors` maps them to HTTP statuses (the
API and the console) and `russet.cli.errors` to an exit code and one line. The import checks are
a small AST scan (import-linter may replace them later).
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from russet import abm, vpp
from russet.abm import errors as abm_errors
from russet.apns.certificate import ApnsCertificateConflict, ApnsCertificateError
from russet.apple.connections import ConnectionRefused, Disconnected
from russet.cli.common import handles_errors
from russet.commands import CommandError
from russet.config import ConfigError
from russet.kernel.errors import (
    KINDS,
    Conflict,
    Invalid,
    NotFound,
    Refused,
    RussetError,
    TooLarge,
    Unavailable,
    UpstreamFailed,
    kind_of,
)
from russet.storage.db import NotMigrated
from russet.vpp import errors as vpp_errors
from russet.web import errors as web_errors

PACKAGE = Path(__file__).resolve().parent.parent / "russet"

EXPECTED = [  # kind, HTTP status, CLI exit code
    (Invalid, 400, 1),
    (NotFound, 404, 1),
    (Conflict, 409, 1),
    (Refused, 403, 1),
    (TooLarge, 413, 1),
    (UpstreamFailed, 502, 1),
    (Unavailable, 503, 75),
]


def test_every_kind_is_mapped_once() -> None:
    assert {kind for kind, _, _ in EXPECTED} == set(KINDS)
    assert len(KINDS) == len(set(KINDS))


def _api(exc: Exception) -> TestClient:
    app = FastAPI()
    web_errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("kind", "status", "_code"), EXPECTED)
def test_api_answers_each_kind_with_its_status(kind: type[RussetError], status: int, _code: int) -> None:
    response = _api(kind(f"the {kind.__name__} case")).get("/boom")
    assert response.status_code == status
    assert response.json() == {"detail": f"the {kind.__name__} case"}
    assert "retry-after" not in response.headers


def test_api_says_when_to_retry_an_unavailable_that_knows() -> None:
    later = datetime.now(UTC) + timedelta(seconds=90)
    response = _api(Unavailable("Apple asked us to slow down", retry_at=later)).get("/boom")
    assert response.status_code == 503
    assert 85 <= int(response.headers["retry-after"]) <= 90


def _cli(exc: Exception) -> click.testing.Result:
    @click.command()
    @handles_errors
    def boom() -> None:
        raise exc

    return CliRunner().invoke(boom, [])


@pytest.mark.parametrize(("kind", "_status", "code"), EXPECTED)
def test_cli_turns_each_kind_into_one_line_and_its_exit_code(
    kind: type[RussetError], _status: int, code: int
) -> None:
    result = _cli(kind(f"the {kind.__name__}\ncase"))
    assert result.exit_code == code
    assert result.stderr.splitlines() == [f"Error: the {kind.__name__} case"]
    assert "Traceback" not in result.output


def test_cli_says_when_to_retry_an_unavailable_that_knows() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = _cli(Unavailable("Apple asked us to slow down", retry_at=when))
    assert result.exit_code == 75
    assert result.stderr.strip() == (
        "Error: Apple asked us to slow down (try again after 2030-01-02T03:04:05+00:00)"
    )


def test_cli_leaves_other_exceptions_alone() -> None:
    """Only Russet's own errors are one line; a bug still shows as one (not hidden as exit 1)."""
    result = _cli(KeyError("bug"))
    assert isinstance(result.exception, KeyError)


LATER = datetime(2030, 1, 1, tzinfo=UTC)
DOMAIN = [  # domain errors keep their names for callers that catch them, and answer by kind
    (abm_errors.AbmError("bad profile"), 400),
    (abm_errors.TokenError("not a server token"), 400),
    (abm_errors.TokenExpired("expired"), 409),
    (abm_errors.AbmNotFound("no such connection"), 404),
    (abm_errors.AbmConflict("exists"), 409),
    (abm_errors.AbmUpstreamFailed("unreachable"), 502),
    (abm_errors.AppleFailed("500", http_status=500, code=None), 502),
    (abm_errors.AppleRejected("400", http_status=400, code="BAD"), 400),
    (abm_errors.CursorError("cursor", http_status=400, code="EXPIRED_CURSOR"), 502),
    (abm_errors.Throttled("slow", http_status=429, code=None, retry_at=LATER), 503),
    (abm_errors.ProtocolError("not JSON"), 502),
    (vpp_errors.VppError("not an email"), 400),
    (vpp_errors.TokenError("corrupt"), 400),
    (vpp_errors.TokenExpired("expired"), 409),
    (vpp_errors.VppNotFound("no user"), 404),
    (vpp_errors.VppConflict("not registered"), 409),
    (vpp_errors.VppUpstreamFailed("unreachable"), 502),
    (vpp_errors.AppleFailed("500", http_status=500, number=None), 502),
    (vpp_errors.AppleRejected("400", http_status=400, number=9600), 400),
    (vpp_errors.TokenRejected("revoked", http_status=200, number=9625), 409),
    (vpp_errors.Throttled("slow", http_status=429, number=9646), 503),
    (vpp_errors.TakenOver("other MDM", http_status=200, number=None), 409),
    (vpp_errors.TakeoverNeeded("main", {"name": "Other"}), 409),
    (vpp_errors.ProtocolError("not JSON"), 502),
    (ApnsCertificateError("not a certificate"), 400),
    (ApnsCertificateConflict("topic change; pass --force"), 409),
    (ConnectionRefused("held by another process"), 409),
    (Disconnected("not connected"), 409),
    (CommandError("unknown RequestType"), 400),
    (ConfigError("RUSSET_X must be positive"), 400),
    (NotMigrated("run russet migrate first"), 409),
]


@pytest.mark.parametrize(
    ("exc", "status"), DOMAIN, ids=[f"{type(e).__module__}.{type(e).__name__}" for e, _ in DOMAIN]
)
def test_domain_errors_answer_by_their_kind(exc: RussetError, status: int) -> None:
    assert isinstance(exc, RussetError)
    assert web_errors.status_for(exc) == status
    assert _api(exc).get("/boom").status_code == status


def test_a_raised_error_has_at_most_one_kind() -> None:
    """Inheritance is the one scheme: no class may be two kinds at once (e.g. an Invalid family
    base with a Conflict subclass), or the surfaces would pick one arbitrarily."""
    seen = {RussetError}
    todo = [RussetError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    for cls in seen:
        kinds = [k for k in KINDS if issubclass(cls, k)]
        assert len(kinds) <= 1, (cls, kinds)
    assert abm.errors.AbmError in seen and vpp.errors.VppError in seen
    assert kind_of(abm_errors.AbmError("x")) is Invalid  # a kindless family base is bad input


# -- import rules ---------------------------------------------------------------------------------

SURFACES = ("api", "console", "cli", "web")
ENTRY_POINTS = {"app.py", "__main__.py"}
# Device endpoints speak Apple's protocols over HTTP themselves: the allowed protocol adapters.
PROTOCOL_ADAPTERS = {
    "mdm/http.py",
    "declarative/http.py",
    "scep/http.py",
    "enrollment/http.py",
    "enrollment/account_http.py",  # account-driven enrollment: discovery, the challenge, sign-in
    "enrollment/signin_http.py",  # sign-in during Setup Assistant (configuration_web_url)
    "vpp/notify.py",
    "apps/http.py",
    "bodylimit.py",
}
FRAMEWORKS = {"fastapi", "starlette", "click", "jinja2"}


def _imports(path: Path) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, node, at module level) for every import in a file; relative imports are
    not used in Russet, and `from russet import x` counts as importing `russet.x`."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node, id(node) in top))
            if node.module == "russet":
                found += [(f"russet.{alias.name}", node, id(node) in top) for alias in node.names]
    return found


def _modules() -> list[tuple[str, Path]]:
    return sorted((str(p.relative_to(PACKAGE)), p) for p in PACKAGE.rglob("*.py"))


def _is_surface(rel: str) -> bool:
    return rel.split("/")[0] in SURFACES or rel in ENTRY_POINTS


def test_kernel_imports_nothing_from_russet() -> None:
    kernel = [(rel, p) for rel, p in _modules() if rel.startswith("kernel/")]
    assert kernel
    for rel, path in kernel:
        for module, _, _ in _imports(path):
            assert module.split(".")[0] not in FRAMEWORKS, (rel, module)
            # Its own modules may build on each other (durations raise its error kinds).
            assert module.split(".")[0] != "russet" or module.startswith("russet.kernel."), (rel, module)


def test_only_surfaces_and_protocol_adapters_import_web_or_cli_frameworks() -> None:
    offenders = [
        (rel, module)
        for rel, path in _modules()
        if not _is_surface(rel) and rel not in PROTOCOL_ADAPTERS
        for module, _, _ in _imports(path)
        if module.split(".")[0] in FRAMEWORKS
    ]
    assert offenders == []


def test_nothing_below_the_surfaces_imports_them() -> None:
    offenders = [
        (rel, module)
        for rel, path in _modules()
        if not _is_surface(rel)
        for module, _, _ in _imports(path)
        if module.split(".")[:2] in [["russet", s] for s in (*SURFACES, "app")]
    ]
    assert offenders == []


def test_api_routers_import_shared_dependencies_not_each_other() -> None:
    """Only the aggregator imports the routers, and at the top: no cycle, no import inside a function."""
    routers = {f"russet.api.{p.stem}" for p in (PACKAGE / "api").glob("*.py")} - {
        "russet.api.models",
        "russet.api.__init__",
    }
    for rel, path in _modules():
        for module, node, at_top in _imports(path):
            if rel.startswith(("api/", "web/", "console/")):
                assert at_top, (rel, module, node.lineno)
            if module in routers:
                assert rel == "api/router.py", (rel, module)


# Features turned into services (issue #12): they receive what they need from the composition root
# and never import it (nor, then, take the whole `Russet`, which they could not name).
SERVICE_FEATURES = (
    "mdm", "apns", "enrollment", "scep", "apple", "commands", "storage", "kernel", "infra",
    "abm", "vpp", "groups", "library", "blueprints",
)
# Modules of those features that may still import the root, each with its reason (none today). An
# entry that no longer imports it fails the test below, so it cannot outlive its reason.
STILL_IMPORTING_RUNTIME: dict[str, str] = {}


def _imports_runtime(path: Path) -> bool:
    return any(module == "russet.runtime" for module, _, _ in _imports(path))


def test_service_features_do_not_import_the_composition_root() -> None:
    importing = {
        rel for rel, path in _modules() if rel.split("/")[0] in SERVICE_FEATURES and _imports_runtime(path)
    }
    assert importing - set(STILL_IMPORTING_RUNTIME) == set()
    assert set(STILL_IMPORTING_RUNTIME) - importing == set(), "no longer imports russet.runtime: unlist it"


def test_operations_module_is_gone() -> None:
    """Its use cases live in the features' services now (russet.mdm.devices, russet.apple.admin)."""
    assert not (PACKAGE / "operations.py").exists()


def test_the_runtime_rule_sees_both_import_spellings(tmp_path: Path) -> None:
    """The scan finds `from russet.runtime import Russet` and `from russet import runtime`, so the
    rule above cannot pass by seeing nothing; and surfaces, which may, are found importing it."""
    for source in ("from russet.runtime import Russet\n", "from russet import runtime\n"):
        path = tmp_path / "x.py"
        path.write_text(source)
        assert _imports_runtime(path), source
    assert _imports_runtime(PACKAGE / "cli" / "common.py")


def test_abm_and_apps_and_books_do_not_import_the_runtime() -> None:
    """ABM, Apps and Books and their shared kit get what they need from the composition root
    (`russet.runtime` builds `AbmService` and `VppService`); none of them imports it, or names
    the whole `Russet`, even only for type checking."""
    feature = [(rel, p) for rel, p in _modules() if rel.startswith(("abm/", "vpp/", "apple/connection/"))]
    assert len(feature) > 20
    offenders = [
        (rel, module)
        for rel, path in feature
        for module, _, _ in _imports(path)
        if module == "russet.runtime" or module.startswith("russet.runtime.")
    ]
    assert offenders == []
    named = [
        rel
        for rel, path in feature
        if "Russet" in {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
    ]
    assert named == []
