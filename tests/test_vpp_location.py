"""Adding a location: client config, the ownership guard and take-over, notifications."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.app import create_app
from russet.apple.tables import apple_connections
from russet.cli.main import cli
from russet.config import Settings
from russet.storage.db import reading
from russet.vpp import notify
from russet.vpp.errors import TakenOver, TakeoverNeeded, TokenRejected, VppError
from russet.vpp.tables import vpp_locations, vpp_notifications
from russet.web.errors import status_for
from tests.conftest import PUBLIC_URL
from tests.vpp_support import PAGES, add, deliver, run, simulated

OTHER = {"id": "other-mdm-1", "name": "Other MDM", "metadata": "v9"}


def _posted(sim, endpoint: str) -> list[dict]:  # type: ignore[no-untyped-def]
    method, path = endpoint.split(" ", 1)
    return [json.loads(r.body) for r in sim.requests if r.method == method and r.path.endswith(path)]


def test_add_registers_russet_as_the_mdm_with_notifications(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        out = add(russet, token)
        assert out["notification_url"] == f"{PUBLIC_URL}/vpp/notify/main"
        assert out["org_name"] == "Example School" and out["location_name"] == "Main Campus"
        assert out["sync"]["assets"] == 3 and out["warning"] is None
        location = sim.location(token)
        mdm_id = russet.vpp.show("main")["mdm_id"]
        assert location.mdm_info == {
            "id": mdm_id,
            "name": "Russet",
            "metadata": location.mdm_info["metadata"],
        }
        assert location.notification_types == [
            "ASSET_MANAGEMENT",
            "USER_MANAGEMENT",
            "USER_ASSOCIATED",
            "ASSET_COUNT",
        ]
        # Apple posts a TEST_NOTIFICATION at once; Russet accepts it with the secret it registered.
        assert [json.loads(n.body)["notificationType"] for n in sim.outbox] == ["TEST_NOTIFICATION"]
        assert [status for status, _ in deliver(russet, sim)] == [200]
        shown = russet.vpp.show("main")
        assert shown["notifications"] is True and shown["limits"]["maxSerialNumbers"] == 1000
        # The secret is kept only as a hash.
        with reading(russet.storage.engine) as conn:
            stored = conn.execute(select(vpp_locations.c.notify_secret_hash)).scalar_one()
        assert stored != location.notification_auth_token and len(stored) == 64

        # Loading a renewed token keeps Russet's id: no take-over question.
        renewed = sim.add_location()
        sim.location(renewed).mdm_info = location.mdm_info
        add(russet, renewed)
        assert russet.vpp.show("main")["mdm_id"] == mdm_id


def test_another_mdm_needs_confirmation_and_nothing_is_kept_without_it(
    tmp_path: Path, settings: Settings
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        sim.location(token).mdm_info = dict(OTHER)
        with pytest.raises(TakeoverNeeded, match="managed by another MDM \\('Other MDM'") as refused:
            add(russet, token)
        assert status_for(refused.value) == 409
        assert sim.location(token).mdm_info == OTHER and not _posted(sim, "POST client/config")
        with reading(russet.storage.engine) as conn:
            assert conn.execute(select(vpp_locations)).first() is None
            assert conn.execute(select(apple_connections)).first() is None
        assert not russet.connections.is_active("vpp", "main")

        out = add(russet, token, take_over=True)
        assert out["took_over_from"]["name"] == "Other MDM"
        assert sim.location(token).mdm_info["name"] == "Russet"

        # The other MDM takes it back: Russet notices in the next answer and stops using the location.
        sim.location(token).mdm_info = dict(OTHER)
        with pytest.raises(TakenOver, match="now managed by another MDM"):
            run(russet, russet.vpp.sync_now("main"))
        assert russet.vpp.show("main")["taken_over_by"]["name"] == "Other MDM"
        sent = sum(sim.calls.values())
        with pytest.raises(VppError, match="managed by another MDM .*--take-over"):
            run(russet, russet.vpp.assign("main", PAGES, serials=["C02TAKEN01"]))
        assert sum(sim.calls.values()) == sent and russet.vpp.list_licences("main")["licences"] == []
        add(russet, token, take_over=True)  # the admin takes it back
        assert russet.vpp.show("main")["taken_over_by"] is None


def test_cli_asks_before_taking_over(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        russet.close()
        sim.location(token).mdm_info = dict(OTHER)
        for variable, value in {
            "RUSSET_DATA_DIR": str(settings.data_dir),
            "RUSSET_DATABASE_URL": settings.database_url,
            "RUSSET_PUBLIC_URL": settings.public_url,
            "RUSSET_VPP_URL": sim.url,
            "RUSSET_APPLE_CA_FILE": str(tmp_path / "vpp-tls" / "ca.pem"),
        }.items():
            monkeypatch.setenv(variable, value)
        path = tmp_path / "main.vpptoken"
        path.write_text(token)
        declined = CliRunner().invoke(cli, ["vpp", "add", "main", str(path)], input="n\n")
        assert (
            declined.exit_code == 1
            and "Other MDM" in declined.output
            and "nothing was changed" in declined.output
        )
        assert sim.location(token).mdm_info == OTHER
        accepted = CliRunner().invoke(cli, ["vpp", "add", "main", str(path)], input="y\n")
        assert accepted.exit_code == 0, accepted.output
        assert "took it over from 'Other MDM'" in accepted.output and "3 assets read" in accepted.output
        assert sim.location(token).mdm_info["name"] == "Russet"


def test_without_https_events_are_polled_not_notified(tmp_path: Path, settings: Settings) -> None:
    plain = dataclasses.replace(settings, public_url="http://127.0.0.1:8080")
    with simulated(tmp_path, plain) as (sim, russet, token):
        out = add(russet, token)
        assert out["notification_url"] is None and "polled" in out["notifications"]
        assert "notificationUrl" not in _posted(sim, "POST client/config")[0]
        assert sim.outbox == []


def test_unreachable_notification_url_leaves_nothing(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        sim.reachable = False
        with pytest.raises(VppError, match="9728"):
            add(russet, token)
        assert russet.vpp.list_locations() == []


def test_apple_refusing_the_token_is_a_clear_error(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        sim.location(token).revoked = True
        with pytest.raises(TokenRejected, match="9625.*revoked.*russet vpp add main"):
            add(russet, token)
        assert russet.vpp.list_locations() == []


def test_notify_route_checks_the_secret_and_applies_once(tmp_path: Path, settings: Settings) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        note = sim.outbox[0]
        secret = sim.location(token).notification_auth_token
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            post = lambda auth, body=note.body, name="main": client.post(  # noqa: E731
                f"/vpp/notify/{name}", content=body, headers={"Authorization": auth}
            )
            assert post(f"Bearer {secret}").status_code == 200
            again = post(f"Bearer {secret}")
            assert again.status_code == 200 and again.json()["duplicate"] is True
            assert post("Bearer wrong").status_code == 403
            assert post(f"Basic {secret}").status_code == 403
            assert post(f"Bearer {secret}", name="nope").status_code == 403
            bad = post(f"Bearer {secret}", body=b'{"notificationId": 5}')
            assert bad.status_code == 400 and "notificationId" in bad.json()["detail"]
            assert post(f"Bearer {secret}", body=b"{not json").status_code == 400
        with reading(russet.storage.engine) as conn:
            assert len(conn.execute(select(vpp_notifications)).all()) == 1
        assert notify.receive(russet.vpp, "main", "", note.body)[0] == 403


def test_a_notification_for_an_event_not_yet_stored_is_asked_again(
    tmp_path: Path, settings: Settings
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        deliver(russet, sim)
        run(russet, russet.vpp.assign("main", PAGES, serials=["C02EARLY01"]))
        sim.process()
        [note] = sim.outbox
        early = json.loads(note.body)
        early["notification"]["eventId"] = "not-stored-yet"
        status, answer = notify.receive(russet.vpp, "main", note.auth_token, json.dumps(early).encode())
        assert status == 503 and "not known yet" in answer["detail"]
        with reading(russet.storage.engine) as conn:  # nothing kept: the next delivery is applied
            kinds = [r.notification_type for r in conn.execute(select(vpp_notifications))]
        assert kinds == ["TEST_NOTIFICATION"]
        assert [status for status, _ in deliver(russet, sim)] == [200]
        assert russet.vpp.list_licences("main")["licences"][0]["status"] == "assigned"


def test_disconnect_stops_traffic_and_the_token_can_be_loaded_again(
    tmp_path: Path, settings: Settings
) -> None:

    with simulated(tmp_path, settings) as (sim, russet, token):
        add(russet, token)
        note = sim.outbox[0]
        receipt = russet.ledger_admin.disconnect("vpp", "main", purge=False)
        assert receipt["credentials_destroyed"] == {"vpp_content_token": 1, "vpp_notification_secret": 1}
        assert notify.receive(russet.vpp, "main", note.auth_token, note.body)[0] == 403
        sent = sum(sim.calls.values())
        with pytest.raises(VppError, match="no content token"):
            run(russet, russet.vpp.sync_now("main"))
        assert sum(sim.calls.values()) == sent
        assert len(russet.vpp.assets("main")["assets"]) == 3  # kept: no purge
        add(russet, token)  # connected again, same id at Apple
        assert russet.vpp.list_locations()[0]["status"] == "active"
