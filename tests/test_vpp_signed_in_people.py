"""The people who signed in before enrollment become Apps and Books users (issue #17): each
distinct email among the enrollment requests with a person, not yet a user of the location, is
registered with Apple (the simulator on 127.0.0.1) as `russet vpp user add` would; the others are
skipped with the reason, and a second run has nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.cli.main import cli
from russet.config import Settings
from russet.enrollment.tokens import EnrollmentRequestLog, Person
from russet.runtime import Russet
from russet.vpp import signed_in
from simulators.vpp import VppSimulator
from tests.conftest import PUBLIC_URL
from tests.vpp_support import add, deliver, run, simulated


def _signed_in(russet: Russet) -> None:
    log = EnrollmentRequestLog(russet.storage.engine)
    log.record("ade_signin", person=Person("u-1", "ann@example.com", "Ann"))
    log.record("account", person=Person("u-1", "ANN@example.com", "Ann"))  # the same person again
    log.record("account", person=Person("u-2", "bob@example.com", "Bob"))  # already a user
    log.record("account", person=Person("u-3", None, "No Email"))  # nothing to register by
    log.record("account", person=Person("u-4", "u-4", "Local"))  # a local account's name, no email
    log.record("ota")  # nobody signed in


def _created_emails(sim: VppSimulator) -> list[str]:
    return [
        entry["email"]
        for r in sim.requests
        if r.path.endswith("users/create")
        for entry in json.loads(r.body)["users"]
    ]


def test_people_who_signed_in_are_registered_once(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        deliver(russet, sim)
        run(russet, russet.vpp.create_user("main", email="Bob@Example.com"))
        _signed_in(russet)
        headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            url = "/api/v1/vpp/main/users/from-enrollments"
            done = client.post(url, headers=headers)
            assert done.status_code == 200, done.text
            body = done.json()
            assert [c["email"] for c in body["created"]] == ["ann@example.com"]
            assert {(s["email"], s["reason"]) for s in body["skipped"]} == {
                ("bob@example.com", "already a user"),
                ("u-4", "not an email address"),
            }
            assert body["failed"] == [] and body["remaining"] == 0
            assert _created_emails(sim) == ["Bob@Example.com", "ann@example.com"]  # Apple was told once
            users = {u["email"]: u for u in russet.vpp.list_users("main")["users"]}
            assert users["ann@example.com"]["client_user_id"] == body["created"][0]["client_user_id"]

            again = client.post(url, headers=headers).json()  # nothing left to do
            assert again["created"] == [] and len(again["skipped"]) == 3
            assert len(_created_emails(sim)) == 2
            assert (
                client.post("/api/v1/vpp/nowhere/users/from-enrollments", headers=headers).status_code == 404
            )


def test_the_command_reports_each_person(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        _signed_in(russet)
        for variable, value in {
            "RUSSET_DATA_DIR": str(settings.data_dir),
            "RUSSET_DATABASE_URL": settings.database_url,
            "RUSSET_PUBLIC_URL": settings.public_url,
            "RUSSET_VPP_URL": sim.url,
            "RUSSET_APPLE_CA_FILE": str(tmp_path / "vpp-tls" / "ca.pem"),
        }.items():
            monkeypatch.setenv(variable, value)
        out = CliRunner().invoke(cli, ["vpp", "user", "sync-people", "main"])
        assert out.exit_code == 0, out.output
        text = out.output
        assert "registering ann@example.com as " in text and "registering bob@example.com" in text
        assert "skipped u-4: not an email address" in text and "2 registered, 1 skipped, 0 failed" in text
        missing = CliRunner().invoke(cli, ["vpp", "user", "sync-people", "nowhere"])
        assert missing.exit_code != 0 and "nowhere" in missing.output and "Traceback" not in missing.output


def test_the_plan_skips_retired_people_and_stops_at_the_limit() -> None:
    users = [
        {"email": "gone@example.com", "status": "Retired"},
        {"email": "lost@example.com", "status": "failed"},  # Apple holds nothing: registered again
    ]
    emails = ["gone@example.com", "lost@example.com"] + [
        f"p{i}@example.com" for i in range(signed_in.MAX_CREATED)
    ]
    todo = signed_in.plan(emails, users)
    assert todo.skipped == [{"email": "gone@example.com", "reason": "retired in this location"}]
    assert todo.create[0] == "lost@example.com" and len(todo.create) == signed_in.MAX_CREATED
    assert todo.remaining == 1
