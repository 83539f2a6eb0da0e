"""`russet user ...` (console users and their roles) and `russet audit ...` (the audit log:
list, export, verify)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from russet.access.roles import ROLE_NAMES
from russet.access.users import check_password, normal_email
from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, table
from russet.kernel.errors import Invalid

role_choice = click.Choice(ROLE_NAMES, case_sensitive=False)


# -- console users ---------------------------------------------------------------------------------


@click.group("user")
def user() -> None:
    """People who sign in to the web console (password or single sign-on), and their roles."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password(password)
    return password


@user.command("add")
@click.argument("email")
@click.option("--role", required=True, type=role_choice, help="admin, operator or auditor.")
@click.option("--sso-only", is_flag=True, help="No password: the person signs in with single sign-on only.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@handles_errors
def user_add(email: str, role: str, sso_only: bool, password_stdin: bool) -> None:
    """Add a console user (asks for a password of at least 12 characters unless --sso-only)."""
    email = normal_email(email)  # checked before anything is asked
    if sso_only and password_stdin:
        raise Invalid("--sso-only takes no password")
    russet = open_russet()
    if russet.access.users is not None and russet.access.users.get(email) is not None:
        raise Invalid(f"a user {email!r} already exists")
    password = None if sso_only else _password(password_stdin)
    added = russet.access.add_user(email, role, password)
    how = "single sign-on only" if sso_only else "password set"
    click.echo(f"added {added.email} ({added.role.label}, {how})")


@user.command("list")
@json_option
@handles_errors
def user_list(as_json: bool) -> None:
    """Console users (never their passwords)."""
    rows = [u.view() for u in open_russet().access.list_users()]
    if as_json:
        emit_json(rows)
        return
    columns = [
        ("email", "EMAIL"),
        ("role", "ROLE"),
        ("source", "SOURCE"),
        ("last_sign_in_at", "LAST SIGN-IN"),
    ]
    table(rows, columns, "no console users")


@user.command("role")
@click.argument("email")
@click.argument("role", type=role_choice)
@handles_errors
def user_role(email: str, role: str) -> None:
    """Change a user's role (it applies from their next page)."""
    changed = open_russet().access.set_user_role(normal_email(email), role)
    click.echo(f"{changed.email} is now {changed.role.label}")


@user.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@handles_errors
def user_password(email: str, password_stdin: bool) -> None:
    """Set a user's password."""
    email = normal_email(email)
    russet = open_russet()
    if russet.access.users is None or russet.access.users.get(email) is None:
        raise Invalid(f"no user {email!r}")
    russet.access.set_user_password(email, _password(password_stdin))
    click.echo(f"password of {email} set")


@user.command("remove")
@click.argument("email")
@handles_errors
def user_remove(email: str) -> None:
    """Remove a user; their console sessions end at their next page."""
    open_russet().access.remove_user(normal_email(email))
    click.echo(f"removed {email}")


# -- the audit log ---------------------------------------------------------------------------------


@click.group("audit")
def audit() -> None:
    """The audit log: who did what, through which surface, and the outcome (hash-chained)."""


@audit.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--before", type=click.IntRange(1), help="Rows before this one (the `next` of a page).")
@click.option("--actor", help="Only this actor: api:NAME, user:EMAIL, cli:USER, task:NAME.")
@click.option("--surface", type=click.Choice(["api", "console", "cli", "task", "system"]))
@json_option
@handles_errors
def audit_list(limit: int, before: int | None, actor: str | None, surface: str | None, as_json: bool) -> None:
    """Rows, newest first."""
    page = open_russet().access.audit_page(limit=limit, before=before, actor=actor, surface=surface)
    if as_json:
        emit_json(page)
        return
    columns = [
        ("seq", "#"),
        ("at", "WHEN (UTC)"),
        ("actor", "WHO"),
        ("surface", "VIA"),
        ("action", "WHAT"),
        ("target", "TARGET"),
        ("source", "FROM"),
        ("outcome", "OUTCOME"),
    ]
    table(page["rows"], columns, "the audit log is empty")
    if page["next"] is not None:
        click.echo(f"more: --before {page['next']}", err=True)


EXPORT_COLUMNS = (
    "seq", "at", "actor", "surface", "action", "target", "source", "outcome", "status", "detail",
    "prev_hash", "hash",
)  # fmt: skip


def _export(rows: Any, out: TextIO, fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in EXPORT_COLUMNS})
            count += 1
        return count
    for row in rows:
        out.write(json.dumps({k: row[k] for k in EXPORT_COLUMNS}, separators=(",", ":")) + "\n")
        count += 1
    return count


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="A file (default: stdout).")
@handles_errors
def audit_export(fmt: str, out: Path | None) -> None:
    """Every row, oldest first, with its hashes (so the export can be verified elsewhere)."""
    russet = open_russet()
    if out is None:
        _export(russet.access.audit_rows(), sys.stdout, fmt)
        return
    try:
        with out.open("w", newline="") as handle:
            count = _export(russet.access.audit_rows(), handle, fmt)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {count} rows to {out}")


@audit.command("verify")
@handles_errors
def audit_verify() -> None:
    """Walk the hash chain: exit 0 when intact, 1 naming the first broken row."""
    verdict = open_russet().access.audit_verify()
    if not verdict.ok:
        raise click.ClickException(f"audit log broken at row {verdict.broken_seq}: {verdict.reason}")
    click.echo(f"ok: {verdict.rows} rows, the hash chain is intact")
