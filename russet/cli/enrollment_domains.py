"""`russet enrollment domain add|list|remove`: the domains whose people may enroll by signing in
(account-driven enrollment; /.well-known/com.apple.remotemanagement answers only for them)."""

from __future__ import annotations

import click

from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, table
from russet.enrollment.account import MODES, WELL_KNOWN_PATH


@click.group("domain")
def domain() -> None:
    """Domains for account-driven enrollment (people sign in with user@domain)."""


@domain.command("add")
@click.argument("name")
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    default="user",
    show_default=True,
    help="user: User Enrollment of personal devices (mdm-byod); device: Device Enrollment of the "
    "organisation's devices (mdm-adde).",
)
@json_option
@handles_errors
def domain_add(name: str, mode: str, as_json: bool) -> None:
    """Answer account-driven discovery for people of NAME (example.com)."""
    russet = open_russet()
    data = russet.accounts.add_domain(name, mode)
    if as_json:
        emit_json(data)
        return
    click.echo(f"added {data['domain']}: {data['what']}")
    click.echo(
        f"serve https://{data['domain']}{WELL_KNOWN_PATH} from {russet.accounts.public_url}{WELL_KNOWN_PATH} "
        "(a proxy or redirect on the domain's web server)",
        err=True,
    )


@domain.command("list")
@json_option
@handles_errors
def domain_list(as_json: bool) -> None:
    """The configured domains and their enrollment mode."""
    rows = open_russet().accounts.list_domains()
    if as_json:
        emit_json(rows)
        return
    table(
        rows,
        [("domain", "DOMAIN"), ("mode", "MODE"), ("version", "VERSION"), ("created_at", "ADDED")],
        "no domains for account-driven enrollment",
    )


@domain.command("remove")
@click.argument("name")
@handles_errors
def domain_remove(name: str) -> None:
    """Stop answering discovery for NAME; its people can no longer sign in to enroll."""
    open_russet().accounts.remove_domain(name)
    click.echo(f"removed {name.strip().lower()}")
