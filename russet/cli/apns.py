"""`russet apns …`: the MDM push certificate, from CSR to renewal (protocol doc §d.1–§d.2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from russet.apns.certificate import DEFAULT_CSR_NAME, KEY_BITS, PORTAL, vendor_sign
from russet.cli.common import handles_errors, json_option, open_russet
from russet.cli.output import emit_json, fields

F = TypeVar("F", bound=Callable[..., Any])
_IN_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT_FILE = click.Path(dir_okay=False, path_type=Path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@click.group("apns")
def apns() -> None:
    """The APNs push certificate: CSR, vendor signing, import, status."""


@apns.command("csr")
@click.option("--out", required=True, type=_OUT_FILE, help="Where to write the CSR (PEM).")
@click.option("--force", is_flag=True, help="Replace a push key still waiting for its certificate.")
@click.option("--common-name", default=DEFAULT_CSR_NAME, show_default=True, help="The CSR's subject CN.")
@handles_errors
def csr(out: Path, force: bool, common_name: str) -> None:
    """Create the push key (kept sealed in Russet) and write its certificate signing request."""
    open_russet().push.create_csr(out, force=force, common_name=common_name)
    click.echo(
        f"wrote {out}: the CSR for a new RSA {KEY_BITS} push key, which stays sealed in Russet's database"
    )
    click.echo(
        "next: have it signed by your MDM vendor (`russet apns vendor-sign`), upload the result at "
        f"{PORTAL}, then `russet apns import` the certificate Apple issues"
    )


@apns.command("vendor-sign")
@click.option("--csr", "csr_file", required=True, type=_IN_FILE, help="The customer's CSR (PEM or DER).")
@click.option("--vendor-cert", required=True, type=_IN_FILE, help="MDM Vendor CSR Signing certificate.")
@click.option("--vendor-key", required=True, type=_IN_FILE, help="Its private key (PEM or DER).")
@click.option(
    "--vendor-key-password",
    envvar="RUSSET_VENDOR_KEY_PASSWORD",
    help="Password of an encrypted vendor key (or RUSSET_VENDOR_KEY_PASSWORD).",
)
@click.option(
    "--chain",
    multiple=True,
    type=_IN_FILE,
    help="Apple WWDR intermediate, then Apple Root CA (PEM or DER); repeatable, in order.",
)
@click.option("--out", type=_OUT_FILE, help="Write the request here instead of standard output.")
@handles_errors
def vendor_sign_command(
    csr_file: Path,
    vendor_cert: Path,
    vendor_key: Path,
    vendor_key_password: str | None,
    chain: tuple[Path, ...],
    out: Path | None,
) -> None:
    """Sign a push CSR as the MDM vendor: the base64 plist the Apple portal accepts. Needs no database."""
    request = vendor_sign(
        _read(csr_file),
        _read(vendor_cert),
        _read(vendor_key),
        [_read(path) for path in chain],
        vendor_key_password=vendor_key_password.encode() if vendor_key_password else None,
    )
    _warn(request.warnings)
    if out is None:
        click.echo(request.text)
        return
    try:
        out.write_text(request.text)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out}: upload it at {PORTAL}")


@apns.command("import")
@click.argument("cert_file", metavar="CERT", type=_IN_FILE)
@click.option(
    "--force", is_flag=True, help="Accept a new topic (orphans enrolled devices) or an earlier expiry."
)
@handles_errors
def import_command(cert_file: Path, force: bool) -> None:
    """Install the push certificate Apple issued (PEM or DER) with its key; renewals too."""
    result = open_russet().push.import_certificate(_read(cert_file), force=force)
    _warn(result.warnings)
    expires = result.not_after.strftime("%Y-%m-%d")
    if result.unchanged:
        click.echo(f"already installed: topic {result.topic}, expires {expires}")
        return
    verb = "renewed" if result.previous_topic == result.topic else "installed"
    click.echo(f"{verb} the APNs push certificate: topic {result.topic}, expires {expires}")
    click.echo("enrollment profiles carry this topic; restart a running `russet serve` to use it")


@apns.command("status")
@json_option
@handles_errors
def status(as_json: bool) -> None:
    """The installed push certificate: topic, expiry, days left (warns from 30 days out)."""
    data = open_russet().push.certificate_status()
    if as_json:
        emit_json(data)
        return
    if not data["installed"]:
        hint = (
            "a push key is waiting for its certificate: `russet apns import CERT`"
            if data["pending_key"]
            else "start with `russet apns csr --out push.csr`"
        )
        click.echo(f"no APNs push certificate installed; {hint}")
        return
    fields(data, ["topic", "not_after", "days_left", "fingerprint", "subject", "issuer", "pending_key"])
    if data["warning"]:
        _warn([data["warning"]])
