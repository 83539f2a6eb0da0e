"""`russet enrollment token create|list|revoke`, `russet enrollment requests` (enrollment URLs and
what they handed out) and `russet enrollment minimum-os` (the OS an ADE device needs)."""

from __future__ import annotations

from typing import Any

import click

from russet.cli.common import audit_as, handles_errors, json_option, open_russet
from russet.cli.output import emit_json, fields, table
from russet.enrollment.service import DEFAULT_LIFETIME

TOKEN_COLUMNS = [
    ("id", "ID"),
    ("prefix", "PREFIX"),
    ("status", "STATUS"),
    ("uses", "USES"),
    ("max_uses", "MAX"),
    ("expires_at", "EXPIRES"),
    ("note", "NOTE"),
]


@click.group("token")
def token() -> None:
    """Tokens for OTA enrollment URLs (/mdm/enroll?token=...)."""


@token.command("create")
@click.option(
    "--expires",
    default=DEFAULT_LIFETIME,
    show_default=True,
    help="How long the token works: 30m, 12h, 7d (at most 365d).",
)
@click.option(
    "--uses", type=int, help="How many profiles it may fetch (default: any number till it expires)."
)
@click.option("--note", help="What it is for, shown in listings.")
@json_option
@handles_errors
def token_create(expires: str, uses: int | None, note: str | None, as_json: bool) -> None:
    """Create a token and print it and its URL; they are shown once and stored only as a hash."""
    russet = open_russet()
    data = russet.enrollment.create_token(expires=expires, uses=uses, note=note)
    if as_json:
        emit_json(data)
    else:
        click.echo(data["token"])
        click.echo(data["url"])
        limit = "any number of" if data["max_uses"] is None else f"up to {data['max_uses']}"
        click.echo(
            f"(enrollment token {data['id']}: {limit} profiles until {data['expires_at']}; "
            "shown once, keep it safe)",
            err=True,
        )
    warning = russet.enrollment.public_url_warning()
    if warning:
        click.echo(f"warning: {warning}", err=True)


@token.command("list")
@json_option
@handles_errors
def token_list(as_json: bool) -> None:
    """Tokens with their status and uses (never the tokens themselves)."""
    rows = open_russet().enrollment.list_tokens()
    if as_json:
        emit_json(rows)
        return
    table(rows, TOKEN_COLUMNS, "no enrollment tokens")


@token.command("revoke")
@click.argument("token_id", type=int)
@json_option
@handles_errors
def token_revoke(token_id: int, as_json: bool) -> None:
    """Revoke a token at once; its URL stops handing out profiles."""
    data = open_russet().enrollment.revoke_token(token_id)
    if as_json:
        emit_json(data)
        return
    fields(data, ["id", "prefix", "status", "uses", "revoked_at"])


@click.command("requests")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@json_option
@handles_errors
def requests(limit: int, as_json: bool) -> None:
    """Profiles handed out at /mdm/enroll, newest first: how (ota, ade, ade_signin, account), the
    token or the device, and who signed in."""
    rows = open_russet().enrollment.recent_requests(limit)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["abm"] = ", ".join(row["abm_connections"]) or None
        row["person"] = row["person_email"] or row["person_id"]
    table(
        rows,
        [
            ("id", "ID"),
            ("at", "AT"),
            ("method", "METHOD"),
            ("token_id", "TOKEN"),
            ("person", "SIGNED IN"),
            ("serial_number", "SERIAL"),
            ("product", "PRODUCT"),
            ("abm", "ABM"),
            ("identity_issued_at", "IDENTITY ISSUED"),
        ],
        "no enrollment profiles handed out",
    )


@click.command("minimum-os")
@click.argument("platform", required=False)
@click.argument("version", required=False)
@click.option("--clear", is_flag=True, help="Remove PLATFORM's minimum.")
@click.option(
    "--blueprint",
    help="The minimum for devices whose ADE profile names this blueprint (name or id; it wins over "
    "the platform's).",
)
@json_option
@handles_errors
def minimum_os(
    platform: str | None, version: str | None, clear: bool, blueprint: str | None, as_json: bool
) -> None:
    """The minimum OS an ADE device needs to enroll: list them, set one (PLATFORM VERSION, such as
    `ios 17.4`), or remove one (PLATFORM --clear); with --blueprint, that blueprint's. Platforms:
    ios (iPadOS too), macos, tvos, visionos, watchos. A device below it is asked to update in
    Setup Assistant, then enrolls."""
    if platform is None:
        if version is not None or clear or blueprint is not None:
            raise click.UsageError("name a PLATFORM to set or clear")
        audit_as(None)  # a listing: nothing to record
        rows = open_russet().enrollment.minimum_os()
        if as_json:
            emit_json(rows)
            return
        for row in rows:
            row["blueprint"] = row["blueprint"] or "(every device)"
        columns = [("platform", "PLATFORM"), ("version", "MINIMUM"), ("blueprint", "BLUEPRINT")]
        table(rows, columns, "no minimum OS set")
        return
    if clear == (version is not None):
        raise click.UsageError("give either a VERSION to set or --clear, not both or neither")
    where = "" if blueprint is None else f" --blueprint {blueprint}"
    if clear:
        audit_as(f"{platform} --clear{where}")
        data: dict[str, Any] = open_russet().enrollment.clear_minimum_os(platform, blueprint=blueprint)
        done = f"{data['platform']}: no minimum OS" + (
            "" if blueprint is None else f" in blueprint {blueprint}"
        )
    else:
        assert version is not None
        audit_as(f"{platform} {version}{where}")
        data = open_russet().enrollment.set_minimum_os(platform, version, blueprint=blueprint)
        whose = "" if data["blueprint"] is None else f" whose ADE profile names blueprint {data['blueprint']}"
        done = (
            f"{data['platform']}: ADE devices{whose} below {data['version']} are asked to update "
            "before they enroll"
        )
    if as_json:
        emit_json(data)
    else:
        click.echo(done)
