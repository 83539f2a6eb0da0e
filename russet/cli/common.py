"""What every `russet` subcommand shares: opening Russet, one-line errors, --json, and the audit
log's record of each command that changes something (`AuditedGroup`)."""

from __future__ import annotations

import functools
import getpass
import platform
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError

from russet.access.audit import AuditEntry
from russet.cli.errors import as_click
from russet.config import Settings
from russet.kernel.errors import RussetError
from russet.runtime import Russet

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def open_russet(*, migrate: bool = False) -> Russet:
    """Open Russet for this command; it is closed (ledger flushed) when the command ends.

    Only `serve` (and `migrate`) set the database up; every other command works on a database
    already set up, and says `run russet migrate first` otherwise.
    """
    russet = Russet.open(Settings.from_env(), migrate_db=migrate)
    ctx = click.get_current_context()
    # Closed when the whole command line ends, after AuditedGroup has recorded the command.
    ctx.find_root().call_on_close(russet.close)
    ctx.meta.setdefault(AUDIT_META, (russet, ctx))  # meta is shared by every nested context
    return russet


def run_async(russet: Russet, work: Awaitable[T]) -> T:
    """Run a service call that reaches Apple (a coroutine) from a command. The CLI's one way to
    `Russet.run`: a loop of its own, in which the gateway's connections are closed at the end."""
    return russet.run(work)


# SQLite's words for a database file it cannot open or write.
SQLITE_UNWRITABLE = ("unable to open database file", "attempt to write a readonly database")


def handles_errors(func: F) -> F:
    """Turn Russet's own errors into a one-line CLI error (exit code by kind) instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RussetError as exc:  # every domain error, mapped by kind in russet.cli.errors
            raise as_click(exc) from None
        except OperationalError as exc:
            reason = str(exc.orig)
            if reason in SQLITE_UNWRITABLE:  # SQLite says what failed, not where: say where to look
                reason += " (is the data directory, RUSSET_DATA_DIR, on a writable disk?)"
            raise click.ClickException(f"cannot use the database: {reason}") from None

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


# -- the audit log ---------------------------------------------------------------------------------

AUDIT_META = "russet.audit"
AUDIT_TARGET_META = "russet.audit.target"
# Commands that only read: not recorded. Everything else that opened Russet is (a new command is
# recorded unless added here). `command show` and `secret show` may reveal secrets: recorded.
READ_ONLY = frozenset(
    {
        "abm device", "abm devices", "abm list", "abm profile list", "abm show",
        "apikey list", "apns status", "app installs", "app list", "app show",
        "audit export", "audit list", "audit verify",
        "blueprint device", "blueprint list", "blueprint show", "command types", "connections",
        "declaration device", "declaration list", "declaration show", "declaration status",
        "declaration summary", "declaration updates",
        "device answer", "device answers", "device commands", "device refusals", "device show", "devices",
        "enrollment domain list", "enrollment requests", "enrollment token list",
        "group list", "group preview", "group scope", "group show",
        "ledger report", "ledger subject", "ledger table", "ledger erasures", "ledger verify-receipt",
        "profile download", "profile list", "profile show", "profile versions",
        "secret filevault-profile", "secret list", "secret views",
        "tasks", "user list",
        "vpp assets", "vpp events", "vpp licences", "vpp list", "vpp show", "vpp users",
        "webhook deliveries", "webhook list",
    }
)  # fmt: skip
SECRET_WORDS = ("key", "password", "secret", "token")  # argument values never recorded


def audit_as(target: str | None) -> None:
    """For a command that reads or writes by its options (`enrollment minimum-os`): record this
    target instead of its arguments, or nothing at all when `target` is None (it only read)."""
    click.get_current_context().meta[AUDIT_TARGET_META] = target


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:(unknown user)"


def cli_audit_entry(path: str, target: str, code: int) -> AuditEntry:
    """The audit row of CLI command `path` (e.g. "apikey create") that ended with exit `code`."""
    outcome = "ok" if code == 0 else ("failed" if code == 75 else "refused")
    return AuditEntry(
        actor=cli_actor(),
        surface="cli",
        action=f"cli {path}",
        target=target,
        source=platform.node(),
        outcome=outcome,
        status=code,
    )


class AuditedGroup(click.Group):
    """The `russet` group: after a command that opened Russet (`open_russet`) and is not in
    READ_ONLY, one audit row with the OS user, the command, its arguments, the host and the
    outcome (exit code)."""

    def invoke(self, ctx: click.Context) -> Any:
        code = 0
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
            raise
        except click.ClickException as exc:
            code = exc.exit_code
            raise
        except BaseException:
            code = 1
            raise
        finally:
            self._record(ctx, code)

    @staticmethod
    def _record(ctx: click.Context, code: int) -> None:
        opened = ctx.meta.get(AUDIT_META)
        if opened is None:  # never reached the database: nothing done
            return
        russet, leaf = opened
        path = " ".join(leaf.command_path.split()[1:])
        if path in READ_ONLY:
            return
        if AUDIT_TARGET_META in ctx.meta and ctx.meta[AUDIT_TARGET_META] is None:
            return
        words = []
        for param in leaf.command.params:
            if not isinstance(param, click.Argument) or param.name is None:
                continue
            value = leaf.params.get(param.name)
            if any(w in param.name.lower() for w in SECRET_WORDS) and not param.name.endswith("_file"):
                value = "(not recorded)"
            if isinstance(value, (list, tuple)):
                value = " ".join(str(v) for v in value)
            words.append(str(getattr(value, "name", value)))
        if ctx.meta.get(AUDIT_TARGET_META):
            words = [ctx.meta[AUDIT_TARGET_META]]
        try:
            russet.access.record(cli_audit_entry(path, " ".join(words), code))
        except Exception as exc:  # said, never hidden: the command itself is done
            print(f"warning: the audit log did not record this command: {exc}", file=sys.stderr)
