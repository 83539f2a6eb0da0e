"""Shared fixtures. The whole suite runs against SQLite by default, and against PostgreSQL when
RUSSET_TEST_DATABASE_URL names one (each test then gets a schema of its own)."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from russet.app import create_app
from russet.config import Settings
from russet.enrollment.profile import ProfileRequest, build_profile, signed_profile
from russet.runtime import Russet
from simulators.ade import TestAppleCA
from simulators.device import Enrollment, SimDevice
from tests.cli_support import cli_invoker

TOPIC = "com.apple.mgmt.External.9a1b2c3d-0000-4000-8000-00000000cafe"
PUBLIC_URL = "https://mdm.example.test"


def pytest_report_header() -> str:
    url = os.environ.get("RUSSET_TEST_DATABASE_URL")
    return f"russet database backend: {'PostgreSQL ' + url if url else 'SQLite'}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    base = os.environ.get("RUSSET_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'russet.db'}"
        return
    base = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = "t_" + secrets.token_hex(6)
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings.from_env(
        {
            "RUSSET_DATA_DIR": str(tmp_path / "data"),
            "RUSSET_DATABASE_URL": database_url,
            "RUSSET_PUBLIC_URL": PUBLIC_URL,
            "RUSSET_PUSH_TOPIC": TOPIC,
            "RUSSET_MAX_BODY_BYTES": str(256 * 1024),
        }
    )


@pytest.fixture
def migrated(settings: Settings) -> None:
    """The database set up as `russet migrate` (or a first `russet serve`) leaves it: CLI commands
    other than those two refuse an un-migrated database."""
    Russet.open(settings).close()


@pytest.fixture
def invoke_cli(settings: Settings, migrated: None, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `russet ARGS…` in this process against the test's data directory and database: the
    click Result (`tests/cli_support.py`)."""
    return cli_invoker(settings, monkeypatch)


@pytest.fixture
def run(invoke_cli: Callable[..., Result]) -> Callable[..., tuple[int, str]]:
    """`russet ARGS…` as (exit code, what it printed, stdout and stderr together)."""

    def run_(*args: str) -> tuple[int, str]:
        result = invoke_cli(*args)
        return result.exit_code, result.output

    return run_


@pytest.fixture
def russet(settings: Settings) -> Iterator[Russet]:
    server = Russet.open(settings)
    yield server
    server.close()


@pytest.fixture
def client(russet: Russet) -> Iterator[TestClient]:
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as c:
        yield c


def new_profile(russet: Russet) -> bytes:
    profile = build_profile(
        ProfileRequest(PUBLIC_URL, TOPIC, identity="pkcs12"), russet.authority, russet.storage.certificates
    )
    return signed_profile(profile, russet.authority)


def command_in_flight(client: TestClient, russet: Russet, device: SimDevice, request_type: str) -> str:
    """Queue a `request_type` command for the enrolled `device` and have the device fetch it;
    returns its CommandUUID, for a test about the answer the device sends next."""
    [sent] = russet.devices.send_command([device.udid], {"RequestType": request_type}, created_by="t")[
        "commands"
    ]
    handed = device.command_of(device.connect(client, device.report_message("Idle")))
    assert handed is not None and handed["CommandUUID"] == sent["command_uuid"]
    return str(sent["command_uuid"])


@pytest.fixture
def make_device(russet: Russet):  # type: ignore[no-untyped-def]
    """A factory of simulated devices, each with an identity from its own enrollment profile."""

    def make(**kwargs: object) -> SimDevice:
        return SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def device(make_device) -> SimDevice:  # type: ignore[no-untyped-def]
    return make_device()


@pytest.fixture
def api_headers(russet: Russet) -> dict[str, str]:
    return {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}


# Apple's device CA stand-in: signs the MachineInfo of simulated ADE devices (simulators/ade.py).
@pytest.fixture(scope="module")
def apple() -> TestAppleCA:
    return TestAppleCA.create()


# Russet trusting that CA for ADE MachineInfo, with a client on its app.
@pytest.fixture
def ade(settings: Settings, apple: TestAppleCA, tmp_path: Path) -> Iterator[tuple[Russet, TestClient]]:
    bundle = tmp_path / "ade-ca.pem"
    bundle.write_bytes(apple.pem_bundle())
    server = Russet.open(dataclasses.replace(settings, ade_ca_file=str(bundle)))
    with TestClient(create_app(server), base_url=PUBLIC_URL) as c:
        yield server, c
    server.close()
