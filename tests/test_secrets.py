"""Secrets at rest and in output: push token, PushMagic, unlock tokens and secret-carrying
commands are sealed (raw rows and database bytes hold none of them), data files are private,
`russet secrets rotate` re-seals everything under a new key, outputs redact secrets."""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import os
import plistlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command as alembic_command
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, inspect, select, text

from russet.abm.store import AbmStore
from russet.app import create_app
from russet.cli.main import cli
from russet.commands.secrets import REDACTED
from russet.config import Settings
from russet.mdm.enrollments import unpack_push
from russet.mdm.tables import enrollments
from russet.pki import create_ca
from russet.runtime import Russet
from russet.storage import rotation
from russet.storage.db import _alembic_config, head_revision, make_engine, migrate
from russet.storage.secretbox import SecretBox, SecretError, is_sealed
from russet.tables import metadata
from russet.vpp.store import VppStore
from russet.vpp.tables import vpp_locations
from russet.webhooks.store import WebhookStore
from russet.wiring.sealed import SEALED_COLUMNS
from simulators.device import Enrollment, SimDevice
from tests.conftest import PUBLIC_URL, new_profile
from tests.test_console import log_in

UNLOCK_TOKEN = b"UNLOCK-" + os.urandom(24)  # what RequestUnlockToken's answer carries


@dataclasses.dataclass
class Enrolled:
    device: SimDevice
    unlock_token: bytes  # sent in TokenUpdate
    clear_uuid: str  # ClearPasscode, acknowledged
    request_uuid: str  # RequestUnlockToken, answered with UNLOCK_TOKEN


def _send(client: TestClient, headers: dict[str, str], udid: str, command: dict[str, Any]) -> str:
    response = client.post("/api/v1/commands", json={"devices": [udid], "command": command}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["commands"][0]["command_uuid"])


def enroll_with_secrets(russet: Russet, client: TestClient, headers: dict[str, str]) -> Enrolled:
    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
    assert device.check_in(client, device.authenticate_message()).status_code == 200
    update = device.token_update_message()
    assert device.check_in(client, update).status_code == 200
    unlock = update["UnlockToken"]
    clear_uuid = _send(
        client,
        headers,
        device.udid,
        {"RequestType": "ClearPasscode", "UnlockToken": base64.b64encode(unlock).decode()},
    )
    request_uuid = _send(client, headers, device.udid, {"RequestType": "RequestUnlockToken"})
    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd is not None and cmd["CommandUUID"] == clear_uuid and cmd["Command"]["UnlockToken"] == unlock
    cmd = device.command_of(device.connect(client, device.report_message("Acknowledged", clear_uuid)))
    assert cmd is not None and cmd["CommandUUID"] == request_uuid
    last = device.connect(
        client, device.report_message("Acknowledged", request_uuid, UnlockToken=UNLOCK_TOKEN)
    )
    assert device.command_of(last) is None
    return Enrolled(device, unlock, clear_uuid, request_uuid)


@pytest.fixture
def enrolled(russet: Russet, client: TestClient, api_headers: dict[str, str]) -> Enrolled:
    return enroll_with_secrets(russet, client, api_headers)


def secret_forms(e: Enrolled) -> dict[str, bytes]:
    """Every secret, in each form it could be stored in (raw, hex, base64, text)."""
    forms = {
        "push token": e.device.push_token,
        "push token hex": e.device.push_token.hex().encode(),
        "push token HEX": e.device.push_token.hex().upper().encode(),
        "PushMagic": e.device.push_magic.encode(),
        "unlock token": e.unlock_token,
        "unlock token base64": base64.b64encode(e.unlock_token),
        "answered unlock token": UNLOCK_TOKEN,
        "answered unlock token base64": base64.b64encode(UNLOCK_TOKEN),
    }
    return forms


def dump_rows(engine: Engine) -> bytes:
    """Every value of every table, as the database hands them out."""
    out = bytearray()
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out += bytes(value)
                    elif value is not None:
                        out += str(value).encode()
                    out += b"\x00"
    return bytes(out)


def test_raw_rows_hold_no_push_token_pushmagic_or_unlock_token(russet: Russet, enrolled: Enrolled) -> None:
    rows = dump_rows(russet.storage.engine)
    leaked = [name for name, form in secret_forms(enrolled).items() if form in rows]
    assert leaked == []
    # ...and Russet still reads each of them.
    assert russet.storage.enrollments.push_credentials(enrolled.device.udid) == (
        enrolled.device.push_token.hex(),
        enrolled.device.push_magic,
    )
    assert russet.storage.enrollments.unlock_token(enrolled.device.udid) == enrolled.unlock_token
    result = russet.storage.queue.by_uuid(enrolled.request_uuid)
    assert result is not None and plistlib.loads(result["result"])["UnlockToken"] == UNLOCK_TOKEN


def test_database_file_bytes_hold_no_secret(russet: Russet, enrolled: Enrolled, settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("file bytes are SQLite's; PostgreSQL rows are checked by the raw-rows test")
    russet.close()  # checkpoints nothing away: the -wal file is read too
    path = Path(settings.database_url.split("///", 1)[1])
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert raw  # the database is there
    leaked = [name for name, form in secret_forms(enrolled).items() if form in raw]
    assert leaked == []


def test_data_files_are_private_whatever_the_umask(settings: Settings, tmp_path: Path) -> None:
    # The default layout: the SQLite database in the data directory (also when the suite runs on PostgreSQL).
    settings = dataclasses.replace(settings, database_url=f"sqlite:///{settings.data_dir / 'russet.db'}")
    old = os.umask(0o022)
    try:
        server = Russet.open(settings)
        server.storage.settings.set("x", "y")  # a write: the -wal and -shm files exist
        data = settings.data_dir
        files = ["master.key", "russet.db", "russet.db-wal", "russet.db-shm", "russet.db.lock"]
        modes = {name: stat.S_IMODE((data / name).stat().st_mode) for name in files}
        server.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes == dict.fromkeys(files, 0o600)


def test_loose_modes_are_tightened_on_open(settings: Settings) -> None:
    settings = dataclasses.replace(settings, database_url=f"sqlite:///{settings.data_dir / 'russet.db'}")
    Russet.open(settings).close()
    data = settings.data_dir
    for path in (data, data / "master.key", data / "russet.db"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    Russet.open(settings).close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "russet.db").stat().st_mode) == 0o600


# -- output ---------------------------------------------------------------------------------------


def test_api_redacts_secret_results_unless_revealed(
    client: TestClient, api_headers: dict[str, str], enrolled: Enrolled
) -> None:
    shown = client.get(f"/api/v1/commands/{enrolled.request_uuid}", headers=api_headers)
    assert shown.status_code == 200
    assert shown.json()["result"]["UnlockToken"] == REDACTED
    assert base64.b64encode(UNLOCK_TOKEN).decode() not in shown.text
    revealed = client.get(f"/api/v1/commands/{enrolled.request_uuid}?reveal=true", headers=api_headers)
    assert revealed.json()["result"]["UnlockToken"] == base64.b64encode(UNLOCK_TOKEN).decode()


def test_cli_redacts_secret_results_unless_revealed(
    settings: Settings, enrolled: Enrolled, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    encoded = base64.b64encode(UNLOCK_TOKEN).decode()
    for args in (["--json"], []):
        out = CliRunner().invoke(cli, ["command", "show", enrolled.request_uuid, *args]).output
        assert REDACTED in out and encoded not in out
    out = CliRunner().invoke(cli, ["command", "show", enrolled.request_uuid, "--reveal"]).output
    assert encoded in out


def test_console_command_page_redacts_secrets(client: TestClient, russet: Russet, enrolled: Enrolled) -> None:
    log_in(client, russet.storage.api_keys.create("alex"))
    page = client.get(f"/console/commands/{enrolled.request_uuid}")
    assert page.status_code == 200, page.text
    assert base64.b64encode(UNLOCK_TOKEN).decode() not in page.text and html.escape(REDACTED) in page.text


def test_device_output_shows_no_push_credentials(
    client: TestClient, api_headers: dict[str, str], enrolled: Enrolled
) -> None:
    shown = client.get(f"/api/v1/devices/{enrolled.device.udid}", headers=api_headers)
    assert shown.status_code == 200 and shown.json()["push_token_present"] is True
    for form in secret_forms(enrolled).values():
        assert form not in shown.content


# -- rotation -------------------------------------------------------------------------------------


def test_every_sealed_column_is_rotated() -> None:
    """A new `sealed_*` column must be declared by its owner and gathered in
    russet.wiring.sealed.SEALED_COLUMNS (what `russet secrets rotate` re-seals), or rotation would leave it
    sealed under the old key."""
    listed = {c.label for c in SEALED_COLUMNS}
    sealed = {
        f"{t.name}.{c.name}"
        for t in metadata.sorted_tables
        for c in t.columns
        if c.name.startswith("sealed_")
    }
    assert sealed <= listed
    assert {"commands.body_template", "command_queue.result"} <= listed


def seed_apple_credentials(russet: Russet, box: SecretBox) -> None:
    """An ABM server key and a VPP token, sealed by their own stores' code paths."""
    cert, key = create_ca("ABM test", "Russet")
    assert isinstance(key, rsa.RSAPrivateKey)
    AbmStore(russet.storage.engine, box).create("abm1", cert, key)
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(vpp_locations).values(
                name="vpp1",
                sealed_token=box.seal(b"BEARER-VPP", "vpp-token:vpp1"),
                token_expires_at=datetime.now(UTC) + timedelta(days=300),
                mdm_id="m",
                created_at=datetime.now(UTC),
            )
        )


def sealed_values(engine: Engine) -> list[tuple[str, bytes, str]]:
    """Every sealed value in the database: (column, value, purpose)."""
    out = []
    with engine.connect() as conn:
        for col in SEALED_COLUMNS:
            value = col.table.c[col.column]
            for row in conn.execute(select(col.table).where(value.is_not(None))):
                blob = bytes(getattr(row, col.column))
                if not col.may_be_clear or is_sealed(blob):
                    out.append((col.label, blob, col.purpose(row)))
    return out


def test_rotate_keeps_every_secret_readable_and_the_old_key_opens_none(
    settings: Settings,
    client: TestClient,
    russet: Russet,
    api_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = russet.webhooks.add("https://hooks.example.test/in", fmt="nanomdm")  # its outbox: raw check-ins
    e = enroll_with_secrets(russet, client, api_headers)
    old_key = base64.b64decode((settings.data_dir / "master.key").read_bytes())
    seed_apple_credentials(russet, SecretBox(old_key))
    russet.storage.bootstrap.escrow(e.device.udid, b"BOOTSTRAP")
    ca = russet.authority.ca_certificate
    before = {label for label, _, _ in sealed_values(russet.storage.engine)}
    russet.close()

    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(cli, ["secrets", "rotate", "--yes"])
    assert result.exit_code == 0, result.output
    assert "committed" in result.output
    key_file = settings.data_dir / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (settings.data_dir / "master.key.new").exists()
    new_key = base64.b64decode(key_file.read_bytes())
    assert new_key != old_key

    reopened = Russet.open(settings, migrate_db=False)
    try:
        assert reopened.authority.ca_certificate == ca  # the CA key opens
        stores = reopened.storage
        assert stores.enrollments.unlock_token(e.device.udid) == e.unlock_token
        assert stores.enrollments.push_credentials(e.device.udid) == (
            e.device.push_token.hex(),
            e.device.push_magic,
        )
        assert stores.bootstrap.token(e.device.udid) == b"BOOTSTRAP"
        answer = stores.queue.by_uuid(e.request_uuid)
        assert answer is not None and plistlib.loads(answer["result"])["UnlockToken"] == UNLOCK_TOKEN
        box = SecretBox(new_key)
        AbmStore(stores.engine, box).identity("abm1")
        assert VppStore(stores.engine, box).token("vpp1").bearer == "BEARER-VPP"
        hooks = WebhookStore(stores.engine, box)
        assert hooks.secret(hook["id"]) == hook["secret"].encode()
        assert json.loads(hooks.due(datetime.now(UTC), 10)[0].body)["topic"] == "mdm.Authenticate"
        # A command body sealed before the rotation is still delivered.
        later = _send(
            TestClient(create_app(reopened), base_url=PUBLIC_URL),
            api_headers,
            e.device.udid,
            {"RequestType": "DeviceLock", "PIN": "123456"},
        )
        values = sealed_values(stores.engine)
    finally:
        reopened.close()
    assert later
    assert before <= {label for label, _, _ in values}
    assert {
        "enrollments.sealed_push",
        "enrollments.sealed_unlock_token",
        "certificates.sealed_key",
        "abm_servers.sealed_key",
        "vpp_locations.sealed_token",
        "bootstrap_tokens.sealed_token",
        "commands.body_template",
        "command_queue.result",
        "settings.sealed_value",
        "webhook_endpoints.sealed_secret",
        "webhook_outbox.sealed_body",
    } <= before
    old = SecretBox(old_key)
    opened_by_old = []
    for label, blob, purpose in values:
        try:
            old.open(blob, purpose)
            opened_by_old.append(label)
        except SecretError:
            pass
    assert opened_by_old == []
    with pytest.raises(SecretError):
        Russet.open(dataclasses.replace(settings, master_key=base64.b64encode(old_key).decode()))


def test_rotate_with_the_key_in_the_environment_prints_the_new_key_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_key = base64.b64encode(os.urandom(32)).decode()
    settings = dataclasses.replace(settings, master_key=env_key)
    server = Russet.open(settings)
    server.storage.settings.set_secret("probe", b"kept")
    server.close()
    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RUSSET_MASTER_KEY", env_key)
    result = CliRunner().invoke(cli, ["secrets", "rotate", "--yes"])
    assert result.exit_code == 0, result.output
    new_key = result.stdout.splitlines()[0]
    assert new_key != env_key and len(base64.b64decode(new_key)) == 32
    assert result.stdout.count(new_key) == 1 and "RUSSET_MASTER_KEY" in result.stderr
    assert not (settings.data_dir / "master.key").exists()  # nothing written to disk
    server = Russet.open(dataclasses.replace(settings, master_key=new_key), migrate_db=False)
    try:
        assert server.storage.settings.get_secret("probe") == b"kept"
    finally:
        server.close()
    with pytest.raises(SecretError):
        Russet.open(settings, migrate_db=False)


def test_a_failed_rotation_changes_nothing(
    settings: Settings, russet: Russet, monkeypatch: pytest.MonkeyPatch
) -> None:
    russet.storage.settings.set_secret("probe", b"kept")
    russet.close()
    key_before = (settings.data_dir / "master.key").read_bytes()

    def broken(*args: Any) -> dict[str, int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(rotation, "reseal", broken)
    with pytest.raises(RuntimeError):
        rotation.rotate(settings, SEALED_COLUMNS)
    assert (settings.data_dir / "master.key").read_bytes() == key_before
    assert not (settings.data_dir / "master.key.new").exists()
    server = Russet.open(settings, migrate_db=False)
    try:
        assert server.storage.settings.get_secret("probe") == b"kept"
    finally:
        server.close()


def test_a_rotation_interrupted_after_its_commit_is_finished_on_the_next_start(
    settings: Settings, russet: Russet, monkeypatch: pytest.MonkeyPatch
) -> None:
    russet.storage.settings.set_secret("probe", b"kept")
    russet.close()

    def crash(*args: Any) -> None:
        raise KeyboardInterrupt  # the process dies between the commit and the rename

    with monkeypatch.context() as m:
        m.setattr(rotation, "_replace_key_file", crash)
        with pytest.raises(KeyboardInterrupt):
            rotation.rotate(settings, SEALED_COLUMNS)
    assert (settings.data_dir / "master.key.new").exists()
    server = Russet.open(settings, migrate_db=False)
    try:
        assert server.storage.settings.get_secret("probe") == b"kept"
    finally:
        server.close()
    assert not (settings.data_dir / "master.key.new").exists()


# -- the migration that sealed what was clear -------------------------------------------------------


def test_migration_0009b_seals_clear_push_credentials_and_secret_commands(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    box = SecretBox(os.urandom(32))
    cfg = _alembic_config(box)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, "0008")
    now = datetime.now(UTC)
    token, magic, unlock = os.urandom(32), "MAGIC-1234", os.urandom(40)
    body = plistlib.dumps(
        {"CommandUUID": "X", "Command": {"RequestType": "ClearPasscode", "UnlockToken": unlock}}
    )
    answer = plistlib.dumps({"Status": "Acknowledged", "UnlockToken": unlock})
    old_enrollments = sa.table(
        "enrollments",
        *(sa.column(n) for n in ("id", "device_id", "channel", "enrollment_type", "enabled")),
        *(sa.column(n) for n in ("push_token", "push_magic", "awaiting_configuration", "created_at")),
    )
    old_commands = sa.table(
        "commands", *(sa.column(n) for n in ("id", "request_type", "body_template", "created_at"))
    )
    queue = sa.table(
        "command_queue",
        *(sa.column(n) for n in ("command_uuid", "command_id", "enrollment_id", "status", "attempts")),
        *(sa.column(n) for n in ("notnow_count", "result", "created_at")),
    )
    with engine.begin() as conn:
        conn.execute(
            insert(old_enrollments).values(
                id="D1",
                device_id="D1",
                channel="device",
                enrollment_type="device",
                enabled=True,
                push_token=token.hex(),
                push_magic=magic,
                awaiting_configuration=False,
                created_at=now,
            )
        )
        conn.execute(
            insert(old_commands),
            [
                {"id": 7, "request_type": "ClearPasscode", "body_template": body, "created_at": now},
                {"id": 8, "request_type": "ProfileList", "body_template": b"<plist/>", "created_at": now},
            ],
        )
        conn.execute(
            insert(queue).values(
                command_uuid="U1",
                command_id=7,
                enrollment_id="D1",
                status="acknowledged",
                attempts=1,
                notnow_count=0,
                result=answer,
                created_at=now,
            )
        )
    with pytest.raises(RuntimeError, match="needs the master key"):
        migrate(engine)  # clear secrets and no key: refused, nothing changed
    done = migrate(engine, box)
    assert "0009b" in done.applied and done.applied[-1] == head_revision()
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("enrollments")}
        sealed_push = conn.execute(select(enrollments.c.sealed_push)).scalar_one()
        bodies = dict(conn.execute(text("SELECT id, body_template FROM commands")).all())
        result = conn.execute(text("SELECT result FROM command_queue")).scalar_one()
    engine.dispose()
    assert "push_token" not in columns and "push_magic" not in columns
    assert unpack_push(box.open(sealed_push, "push:D1")) == (token, magic)
    assert box.open(bodies[7], "command-body:7") == body and unlock not in bodies[7]
    assert bytes(bodies[8]) == b"<plist/>"  # commands without secrets stay as they were
    assert box.open(result, "command-result:U1") == answer
