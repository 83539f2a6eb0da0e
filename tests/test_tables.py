"""Each feature owns its tables (issue #12): where tables are declared and who may reach them.

The database itself is compared with the migrations in `test_storage.py`; these tests read the
source. A table is declared once, in its owner's `tables.py`; a feature's `tables`/`store`
modules are imported by that feature, by `russet.tables` and the migrations, by tests and
benchmarks, and otherwise only through the cross-feature uses listed in `CROSS_FEATURE`, each with
why. That list is what the next refactor step removes: an entry no longer used fails the test, so
it cannot outlive its reason, and a new cross-feature import fails until it is listed here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from russet.tables import TABLE_MODULES, metadata

ROOT = Path(__file__).resolve().parents[1]

# Stores not named store.py, with the feature that owns them.
EXTRA_STORES = {
    "russet.enrollment.tokens",
    "russet.enrollment.account_store",
    "russet.mdm.facts",
    "russet.mdm.lifecycle",
    "russet.mdm.bootstrap",
    "russet.mdm.enrollments",
    "russet.mdm.queue",
    "russet.mdm.reenroll",
    "russet.mdm.signatures",
    "russet.scep.challenges",
}

# (importer, imported module), without "russet.", -> why it reaches into another feature's tables or store.
CROSS_FEATURE = {
    # read-only joins
    ("apns.state", "mdm.tables"): "reads: the pusher joins enrollments and command_queue for targets",
    ("apns.state", "storage.tables"): "reads: the newest push certificate with a key",
    ("enrollment.tokens", "abm.tables"): "reads: which ABM server lists a device's serial",
    ("enrollment.minimum_os", "abm.tables"): "reads: the blueprint a serial's ADE profile names",
    ("enrollment.tokens", "scep.tables"): (
        "reads: the identity a handed-out challenge bought (also for the core's AdeIdentities port), "
        "and scep_renewals back to it (EnrollmentOrigins)"
    ),
    ("enrollment.tokens", "scep.challenges"): "reads: MAX_RENEWAL_HOPS, the renewals it follows",
    ("mdm.reenroll", "scep.challenges"): "reads: renews() follows scep_renewals",
    ("mdm.enrollments", "scep.challenges"): "reads: renews() follows scep_renewals",
    ("mdm.reenroll", "storage.tables"): "reads: the expiry of the certificate being replaced",
    ("apns.state", "mdm.queue"): "reads: RESEND_AFTER, so the push sweep matches the queue's resend",
    # writes across features (not read-only: the next step puts them behind the owner's service)
    ("apns.certificate", "storage.tables"): "writes: deletes APNs's pending-key row from settings",
    ("apns.hooks", "storage.tables"): "writes: purge wipes push keys (certificates) and APNs settings",
    ("apns.hooks", "mdm.tables"): "writes: purge clears enrollments.sealed_push (Apple's tokens)",
    ("vpp.hooks", "mdm.tables"): "writes: purge deletes InstallApplication commands naming its adamIds",
    ("scep.challenges", "storage.tables"): "writes: the issued certificate, in the challenge's transaction",
    # composition
    ("runtime", "mdm.signatures"): "the composition root builds the replay guard and the device service",
    ("runtime", "mdm.reenroll"): "the composition root builds the device service over its stores",
    ("runtime", "enrollment.tokens"): (
        "the composition root builds the enrollment service over its stores, and gives device facts"
        " the ADE profile log"
    ),
    ("runtime", "mdm.facts"): "the composition root gives groups the MDM core's device facts",
    ("runtime", "abm.store"): (
        "the composition root builds the ABM service's store, and gives device facts ABM's serial listing"
    ),
    ("runtime", "vpp.store"): "the composition root builds the Apps and Books service's store",
    ("runtime", "escrow.store"): "the composition root builds the escrow service's store",
    ("runtime", "webhooks.store"): "the composition root builds the webhooks service's store",
    ("runtime", "declarative.store"): (
        "the composition root builds the declarations' store; the core's facts read its status values"
    ),
    ("runtime", "mdm.lifecycle"): "the composition root gives declarations the core's enrollment lives",
    ("wiring.adapters", "mdm.enrollments"): "the ports' adapters: escrow's and the library's device facts",
    ("wiring.adapters", "mdm.lifecycle"): "the ports' adapters: the declarations' Devices port",
    ("wiring.adapters", "declarative.store"): (
        "the ports' adapters: the core's DeclaredStatus port, the blueprints' Declarations port"
    ),
    ("wiring.adapters", "abm.store"): "the ports' adapters: the ledger's subjects, ABM's serial listing",
    ("wiring.adapters", "vpp.store"): "the ports' adapters: the ledger's subjects, Apps and Books' people",
    ("wiring.adapters", "enrollment.tokens"): (
        "the ports' adapters: the ledger's subjects (ADE sign-ins), enrollment's signed-in Person"
    ),
    ("wiring.adapters", "mdm.facts"): (
        "the ports' adapters: platform_of, whether the device a person signed in for is a Mac"
    ),
    ("wiring.storage", "mdm.bootstrap"): "the composition's Storage bundle opens the MDM core's stores",
    ("wiring.storage", "mdm.enrollments"): "the composition's Storage bundle opens the MDM core's stores",
    ("wiring.storage", "mdm.queue"): "the composition's Storage bundle opens the MDM core's stores",
    ("wiring.storage", "enrollment.tokens"): (
        "the composition's Storage bundle gives the MDM core's enrollments enrollment's ADE profile log"
    ),
    ("wiring.storage", "scep.challenges"): "the composition's Storage bundle opens the challenge store",
    ("enrollment.profile", "scep.challenges"): "a profile carries a fresh SCEP challenge it issues",
}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _owner(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else module  # russet.<feature>.x, or a top-level module


def _table_declarations() -> dict[str, list[str]]:
    """Table name -> modules that call `Table("name", ...)` (or `owned.table("name", ...)`)."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in _sources("russet"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and (
                    (isinstance(node.func, ast.Name) and node.func.id == "Table")
                    # a connection's tables: `owned.table(...)` (`apple.connection.columns.OwnedTables`)
                    or (
                        isinstance(node.func, ast.Attribute)
                        and node.func.attr == "table"
                        and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == "owned"
                    )
                )
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found[node.args[0].value].append(_module_name(path))
    return found


def _imports(path: Path) -> set[str]:
    """Modules `path` imports, counting `from pkg import mod` as an import of `pkg.mod`."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def _guarded() -> set[str]:
    """Every feature's tables and store modules."""
    names = {_module_name(p) for p in _sources("russet") if p.name in ("tables.py", "store.py")}
    return (names - {"russet.tables"}) | EXTRA_STORES


def test_each_table_is_declared_in_exactly_one_tables_module() -> None:
    declared = _table_declarations()
    owners = {m.__name__ for m in TABLE_MODULES}
    assert set(declared) == set(metadata.tables)
    for name, modules in declared.items():
        assert len(modules) == 1, f"{name} declared in {modules}"
        assert modules[0] in owners, f"{name} declared outside a tables module: {modules[0]}"
    # Each aggregated module holds what it declares, so russet.tables loses nothing.
    for module in TABLE_MODULES:
        mine = {n for n, ms in declared.items() if ms == [module.__name__]}
        assert mine, f"{module.__name__} declares nothing"


# Besides SQLAlchemy and the MetaData, the one module a tables module may import, and why: the
# column naming the Apple connection a row belongs to, declared once for ABM and Apps and Books
# (it imports only SQLAlchemy, so it cannot close an import cycle).
TABLE_KITS = ("russet.apple.connection.columns",)


def test_tables_modules_import_only_sqlalchemy_and_the_metadata() -> None:
    """A tables module importing a store (or a feature package that does) is an import cycle waiting."""
    for module in TABLE_MODULES:
        path = ROOT / (module.__name__.replace(".", "/") + ".py")
        strays = {
            m
            for m in _imports(path)
            if m.split(".")[0] not in ("__future__", "sqlalchemy")
            and not m.startswith(("russet.infra.metadata", *TABLE_KITS))
        }
        assert not strays, f"{module.__name__} imports {sorted(strays)}"


def test_the_table_kits_import_only_sqlalchemy() -> None:
    for kit in TABLE_KITS:
        imported = _imports(ROOT / (kit.replace(".", "/") + ".py"))
        assert {m.split(".")[0] for m in imported} <= {"__future__", "typing", "sqlalchemy"}, imported


def test_every_tables_and_store_module_imports_first() -> None:
    """Each module imports as the first of a fresh run: the order the runtime happens to use hides cycles."""
    modules = sorted(_guarded() | {"russet.tables"})
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m == 'russet' or m.startswith('russet.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    run = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]


def test_feature_tables_and_stores_are_imported_only_by_their_owner_or_a_listed_use() -> None:
    guarded = _guarded()
    found: set[tuple[str, str]] = set()
    for path in _sources("russet", "simulators"):
        importer = _module_name(path)
        if importer == "russet.tables" or importer.startswith("russet.storage.migrations."):
            continue
        for target in _imports(path) & guarded:
            if _owner(importer) != _owner(target):
                found.add((importer.removeprefix("russet."), target.removeprefix("russet.")))
    unlisted = sorted(found - set(CROSS_FEATURE))
    stale = sorted(set(CROSS_FEATURE) - found)
    assert not unlisted, f"cross-feature use of tables/store not listed in CROSS_FEATURE: {unlisted}"
    assert not stale, f"CROSS_FEATURE lists uses that are gone (remove them): {stale}"


def test_the_rule_sees_a_cross_feature_import(tmp_path: Path) -> None:
    """The scanner finds both import spellings, so the test above cannot pass by seeing nothing."""
    source = tmp_path / "x.py"
    source.write_text("from russet.mdm.tables import enrollments\nfrom russet.abm import store\n")
    assert {"russet.mdm.tables", "russet.abm.store"} <= _imports(source) & _guarded()
    assert _owner("russet.vpp.installs") != _owner("russet.mdm.tables")
    assert _owner("russet.mdm.queue") == _owner("russet.mdm.tables")
    assert "russet.mdm.queue" in _guarded()
