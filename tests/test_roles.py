"""Roles (issue #19): admin, operator, auditor for API keys and console users; one role check on
every API route (a route without it fails here), the role in the OpenAPI document, 403 with a
reason, and only admins shown secrets."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from russet.access.roles import Role
from russet.api import router as api_router
from russet.config import Settings
from russet.kernel.errors import NotFound, Refused
from russet.runtime import Russet
from russet.storage.db import make_engine, migrate, utcnow
from tests.test_console import csrf_of, log_in, seed

COMMAND = {"RequestType": "DeviceInformation", "Queries": ["OSVersion"]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(russet: Russet) -> dict[str, str]:
    return {role.label: russet.access.create_key(f"k-{role.label}", role) for role in Role}


def test_every_api_route_checks_the_role() -> None:
    app = FastAPI()
    api_router.install(app)
    assert api_router.unguarded(app) == []
    roles = api_router.roles(app)
    assert len(roles) > 100 and set(roles.values()) == {"admin", "operator", "auditor"}


def test_a_route_without_the_check_is_caught() -> None:
    """The walk over the app's routes finds a route added beside the routers without the caller
    dependency (a new router, included on its own, that never names a caller)."""
    from fastapi import APIRouter

    app = FastAPI()
    api_router.install(app)
    sneaky = APIRouter(prefix="/api/v1/sneaky")

    @sneaky.post("/purge")
    def purge() -> dict[str, str]:
        return {"done": "everything"}

    app.include_router(sneaky)
    assert api_router.unguarded(app) == ["['POST'] /api/v1/sneaky/purge"]


def test_openapi_says_which_role_each_route_needs(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    operations = [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if path.startswith("/api/v1/") and path != "/api/v1/health"
    ]
    assert operations
    for path, method, op in operations:
        assert op.get("x-russet-role") in ("admin", "operator", "auditor"), (method, path)
        assert f"Needs the **{op['x-russet-role']}** role" in op["description"], (method, path)
    paths = doc["paths"]
    assert paths["/api/v1/commands"]["post"]["x-russet-role"] == "operator"
    assert paths["/api/v1/devices"]["get"]["x-russet-role"] == "auditor"
    assert paths["/api/v1/push/certificate"]["put"]["x-russet-role"] == "admin"
    assert paths["/api/v1/audit"]["get"]["x-russet-role"] == "auditor"
    assert "x-russet-role" not in paths["/api/v1/health"]["get"]


def test_auditor_cannot_send_a_command_or_see_a_secret(
    client: TestClient, russet: Russet, keys: dict[str, str]
) -> None:
    [device] = seed(russet, 1)
    refused = client.post(
        "/api/v1/commands", headers=bearer(keys["auditor"]), json={"devices": [device], "command": COMMAND}
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "POST /api/v1/commands needs the operator role; api:k-auditor has the auditor role"
    )
    view = client.post(
        f"/api/v1/devices/{device}/secrets/recovery-lock/view",
        headers=bearer(keys["auditor"]),
        json={"reason": "curious"},
    )
    assert view.status_code == 403 and "needs the admin role" in view.json()["detail"]
    reveal = client.get("/api/v1/commands/nope?reveal=true", headers=bearer(keys["auditor"]))
    assert reveal.status_code == 403 and "revealing a command's secrets needs the admin role" in reveal.text
    assert russet.storage.queue.for_enrollment(device, 10) == []  # nothing queued on refusal
    # Reads are the auditor's: inventory, the ledger report, the audit log.
    for path in (f"/api/v1/devices/{device}", "/api/v1/ledger/report", "/api/v1/audit"):
        assert client.get(path, headers=bearer(keys["auditor"])).status_code == 200, path
    # The operator sends the same command.
    sent = client.post(
        "/api/v1/commands", headers=bearer(keys["operator"]), json={"devices": [device], "command": COMMAND}
    )
    assert sent.status_code == 201, sent.text
    assert len(russet.storage.queue.for_enrollment(device, 10)) == 1


def test_only_admins_may_view_secrets_whatever_the_surface(russet: Russet, keys: dict[str, str]) -> None:
    """Escrow's SecretViewer: the role decides, for keys and console users alike; the CLI may."""
    [device] = seed(russet, 1)
    russet.access.add_user("ops@example.com", Role.OPERATOR, None)
    russet.access.add_user("boss@example.com", Role.ADMIN, None)
    for viewer in ("api:k-auditor", "api:k-operator", "user:ops@example.com", "api:nobody", "someone"):
        with pytest.raises(Refused, match="may not be shown"):
            russet.escrow.view(device, "recovery-lock", viewer=viewer, reason="checking")
    for viewer in ("api:k-admin", "user:boss@example.com", "cli:root"):
        with pytest.raises(NotFound, match="no recovery-lock is escrowed"):  # allowed: nothing escrowed
            russet.escrow.view(device, "recovery-lock", viewer=viewer, reason="checking")
    russet.access.revoke_key("k-admin")
    with pytest.raises(Refused):
        russet.escrow.view(device, "recovery-lock", viewer="api:k-admin", reason="checking")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/api/v1/push/certificate", {"certificate": "x"}),
        ("post", "/api/v1/connections/abm/main/disconnect", {"purge": True}),
        ("post", "/api/v1/abm/main", {}),
        ("post", "/api/v1/devices/D00000/secrets/recovery-lock/view", {"reason": "x"}),
        ("post", "/api/v1/groups", {"name": "x"}),
    ],
)
def test_operator_has_no_apple_connections_secrets_purge_or_configuration(
    client: TestClient, keys: dict[str, str], method: str, path: str, body: dict[str, Any]
) -> None:
    answer = getattr(client, method)(path, headers=bearer(keys["operator"]), json=body)
    assert answer.status_code == 403, answer.text
    assert "needs the admin role; api:k-operator has the operator role" in answer.json()["detail"]


def test_unknown_key_is_still_401_before_any_role(client: TestClient) -> None:
    answer = client.post("/api/v1/commands", headers=bearer("rus_nope"), json={})
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_apikey_create_with_a_role_and_list(run: Any) -> None:
    code, out = run("apikey", "create", "watcher", "--role", "auditor")
    assert code == 0 and "role auditor" in out
    code, out = run("apikey", "create", "x", "--role", "boss")
    assert code == 2 and "'boss' is not one of" in out
    code, out = run("apikey", "list", "--json")
    assert code == 0 and '"role": "auditor"' in out


def test_existing_keys_become_admin_in_the_migration(settings: Settings) -> None:
    """A database at 0011m_declarative with a key, migrated: the key is an admin's."""
    from alembic import command as alembic_command

    from russet.storage.db import _alembic_config

    engine = make_engine(settings.database_url)
    cfg = _alembic_config(None)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, "0011m_declarative")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (name, key_hash, prefix, created_at) VALUES ('old', :h, 'rus_old', :t)"
            ),
            {"h": "a" * 64, "t": utcnow()},
        )
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT role FROM api_keys WHERE name = 'old'")).scalar_one() == "admin"
        assert conn.execute(text("SELECT seq, hash FROM audit_head")).one() == (0, "0" * 64)
    engine.dispose()


# -- the console -----------------------------------------------------------------------------------


def test_console_auditor_sees_no_command_form_and_cannot_post_one(
    client: TestClient, russet: Russet, keys: dict[str, str]
) -> None:
    [device] = seed(russet, 1)
    csrf = log_in(client, keys["auditor"])
    page = client.get(f"/console/devices/{device}")
    assert page.status_code == 200
    assert "cannot send commands" in page.text and 'name="request_type"' not in page.text
    posted = client.post(
        f"/console/devices/{device}/commands",
        data={"csrf": csrf, "request_type": "DeviceInformation", "params": ""},
        follow_redirects=False,
    )
    assert posted.status_code == 403
    assert "needs the operator role; api:k-auditor has the auditor role" in posted.text
    assert russet.storage.queue.for_enrollment(device, 10) == []
    # Pages that change configuration are refused too; the audit page is the auditor's.
    assert client.post("/console/groups", data={"csrf": csrf, "name": "x"}).status_code == 403
    assert client.get("/console/audit").status_code == 200
    logout = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert logout.status_code == 303  # anyone may log out


def test_console_operator_queues_a_command(client: TestClient, russet: Russet, keys: dict[str, str]) -> None:
    [device] = seed(russet, 1)
    csrf = log_in(client, keys["operator"])
    posted = client.post(
        f"/console/devices/{device}/commands",
        data={"csrf": csrf, "request_type": "DeviceInformation", "params": ""},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    [queued] = russet.storage.queue.for_enrollment(device, 10)
    assert queued["created_by"] == "k-operator"


def test_console_role_change_applies_at_the_next_page(client: TestClient, russet: Russet) -> None:
    russet.access.add_user("ann@example.com", Role.ADMIN, "correct horse battery")
    form = client.get("/console/login")
    signed = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "email": "Ann@Example.com", "password": "correct horse battery"},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    csrf = csrf_of(client.get("/console/groups").text)
    russet.access.set_user_role("ann@example.com", Role.AUDITOR)
    assert client.post("/console/groups", data={"csrf": csrf, "name": "x"}).status_code == 403
    russet.access.remove_user("ann@example.com")
    assert client.get("/console/devices", follow_redirects=False).status_code == 303  # to the login


def test_every_console_page_and_action_checks_the_role() -> None:
    """Console routes other than the sign-in ones and the stylesheet take the signed-in person
    (`Signed`), whose dependency checks the route's role."""
    from fastapi.routing import APIRoute, iter_route_contexts

    from russet.console import views
    from russet.console.common import _admin

    app = FastAPI()
    views.install(app)
    public = {
        "/console",
        "/console/",
        "/console/login",
        "/console/sso",
        "/console/sso/callback",
        "/console/static/console.css",
    }
    checked, unchecked = [], []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path in public:
            continue
        calls = api_router._calls(context.dependant)
        (checked if _admin in calls else unchecked).append(f"{sorted(context.methods or ())} {context.path}")
    assert unchecked == [] and len(checked) > 20
