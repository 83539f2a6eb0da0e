"""Apps and Books content tokens: reading the .vpptoken, refusing bad ones, keeping it sealed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from russet.apple.tables import apple_connections, ledger
from russet.cli.main import cli
from russet.config import Settings
from russet.storage.db import reading
from russet.vpp.errors import TokenError, VppError
from russet.vpp.tables import vpp_locations
from russet.vpp.token import expiry_warning, parse_token
from simulators.vpp import make_token
from tests.vpp_support import add, simulated


def _file(fields: object) -> bytes:
    return base64.b64encode(json.dumps(fields).encode())


def test_token_is_read_from_the_file() -> None:
    expires = datetime(2030, 11, 8, 22, 33, 22, tzinfo=UTC)
    text = make_token("Example School", expires)
    token = parse_token((text + "\n").encode())
    assert token.bearer == text  # the whole file content is the Bearer credential
    assert token.expires_at == expires and token.org_name == "Example School"
    assert len(token.sha256) == 64


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not base64 !!", "not an Apps and Books content token"),
        (base64.b64encode(b"\x00\xff not json"), "not JSON"),
        (_file(["a", "list"]), "not an object"),
        (_file({"token": "x", "orgName": "Org"}), "lacks expDate"),
        (_file({"token": "", "expDate": "2030-01-01T00:00:00+0000", "orgName": "Org"}), "lacks token"),
        (_file({"token": "x", "expDate": "next tuesday", "orgName": "Org"}), "not an ISO 8601 time"),
        (
            _file({"token": "x", "expDate": "2020-01-01T00:00:00+0000", "orgName": "Org"}),
            "expired on 2020-01-01",
        ),
        (b"A" * 20000, "a few hundred bytes"),
    ],
)
def test_bad_token_files_are_named(data: bytes, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        parse_token(data)


def test_expiry_warning_from_30_days_out() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert expiry_warning(now + timedelta(days=31), now) is None
    assert "expires in 29 days" in (expiry_warning(now + timedelta(days=29, hours=1), now) or "")
    assert "expired on" in (expiry_warning(now - timedelta(seconds=1), now) or "")


def test_token_is_sealed_at_rest_and_never_in_the_ledger(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        russet.ledger.flush()
        with reading(russet.storage.engine) as conn:
            sealed = conn.execute(select(vpp_locations.c.sealed_token)).scalar_one()
            rows = conn.execute(select(ledger.c.value_fp, ledger.c.field)).all()
        assert token.encode() not in sealed and base64.b64decode(token) not in sealed
        # The ledger holds a keyed fingerprint of the token, never the token.
        assert all(token not in str(r.value_fp) for r in rows)
        assert any(r.field == "location token" for r in rows)
        # Every authenticated request carried exactly the file content as Bearer.
        bearers = {r.headers.get("authorization") for r in sim.requests if "service/config" not in r.path}
        assert bearers == {f"Bearer {token}"}
        assert all("authorization" not in r.headers for r in sim.requests if "service/config" in r.path)


def test_same_token_under_two_names_is_refused(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token, "main")
        with pytest.raises(VppError, match="already loaded as Apps and Books location 'main'"):
            add(russet, token, "other")
        with reading(russet.storage.engine) as conn:
            names = set(conn.execute(select(vpp_locations.c.name)).scalars())
        assert names == {"main"}


def test_cli_refuses_a_corrupt_or_expired_token_and_stores_nothing(
    tmp_path: Path, settings: Settings, migrated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in {
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": settings.public_url,
    }.items():
        monkeypatch.setenv(variable, value)
    corrupt = tmp_path / "corrupt.vpptoken"
    corrupt.write_bytes(b"%%% not a token %%%")
    expired = tmp_path / "expired.vpptoken"
    expired.write_text(make_token("Org", datetime.now(UTC) - timedelta(days=1)))
    for path, message in ((corrupt, "not an Apps and Books content token"), (expired, "expired on")):
        result = CliRunner().invoke(cli, ["vpp", "add", "main", str(path)])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    from russet.runtime import Russet

    russet = Russet.open(settings)
    try:
        with reading(russet.storage.engine) as conn:
            assert conn.execute(select(vpp_locations)).first() is None
            assert conn.execute(select(apple_connections)).first() is None
    finally:
        russet.close()


def test_the_simulator_checks_the_bearer_as_apple_does(tmp_path: Path, settings: Settings) -> None:
    import ssl

    import httpx

    with simulated(tmp_path, settings) as (sim, russet, token):
        verify = ssl.create_default_context(cafile=str(tmp_path / "vpp-tls" / "ca.pem"))
        with httpx.Client(verify=verify) as http:
            for headers, number in (
                ({}, 9722),
                ({"Authorization": token}, 9722),
                ({"Authorization": "Bearer " + token[:-4] + "AAAA"}, 9601),
            ):
                answer = http.get(f"{sim.url}/assets", headers=headers)
                assert answer.status_code == 401 and answer.json()["errorNumber"] == number
            assert (
                http.get(f"{sim.url}/assets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            )
            assert http.get(f"{sim.url}/service/config").status_code == 200  # the one call without a token
            refused = http.post(
                f"{sim.url}/assets/associate", headers={"Authorization": f"Bearer {token}"}, content=b"{}"
            )
            assert refused.status_code == 415 and refused.json()["errorNumber"] == 9727
