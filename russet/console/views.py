"""The console's routes: login/logout, devices, a device (with its desired vs actual state),
queueing a command, a command and the ledger report ("What we tell Apple"); `install` adds the
pages of `dashboard` (where the console opens), `groups`, `library`, `blueprints`, `connections`
and the others. What every page shares (forms, CSRF, flash messages, the error mapping) is in
`russet.console.common`.

Handlers are plain `def`s (FastAPI runs them in its threadpool, like the API's) and call the same
services as the API (`russet.devices`, `russet.ledger_admin`); only the form body is read
asynchronously, by a dependency.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from russet.access.audit import AuditEntry
from russet.access.roles import Role
from russet.access.sso import Pending
from russet.apple.ledger import REPORT_COLUMNS
from russet.commands import COMMANDS
from russet.console import (
    abm,
    blueprints,
    connections,
    dashboard,
    declarations,
    groups,
    library,
    privacy,
    push,
    vpp,
)
from russet.console import session as sessions
from russet.console.common import (
    HERE,
    PAGE_SIZE,
    Admin,
    ConsoleError,
    Form,
    NeedsLogin,
    Signed,
    box_of,
    call,
    checked,
    public_url,
    render,
)
from russet.escrow.service import KINDS as SECRET_KINDS
from russet.kernel.errors import Invalid, NotFound, RussetError
from russet.mdm.actions import ACTIONS, answer, choices
from russet.runtime import Russet
from russet.storage import login_failures as ratelimit
from russet.storage.apikeys import key_hash
from russet.storage.db import MAX_DB_INT
from russet.web.deps import audit_note, needs
from russet.web.deps import russet_of as _russet
from russet.web.errors import status_for

router = APIRouter(prefix="/console", include_in_schema=False)
RECENT_COMMANDS = 20
CSS = (HERE / "static" / "console.css").read_bytes()


def _safe_next(target: str | None) -> str:
    """Only console paths after login: never an open redirect to another site."""
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return "/console/dashboard"


# -- login ---------------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def home() -> RedirectResponse:
    """The console opens on its dashboard."""
    return RedirectResponse("/console/dashboard", 303)


@router.get("/static/console.css")
def stylesheet() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    box = box_of(request)
    session = sessions.load(box, request) or sessions.Session.anonymous()
    response = _login_page(request, session, _safe_next(next), None)
    sessions.store(box, request, response, session, public_url(request))
    return response


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    """Sign in with an API key, or as a console user with an email address and a password."""
    box = box_of(request)
    session = sessions.load(box, request)
    if session is None or not session.csrf_ok(form.get("csrf")):
        raise ConsoleError("the login form has expired; open it again", 403)
    key = form.get("api_key", "").strip()
    email = form.get("email", "").strip().lower()
    password = form.get("password", "")
    access = _russet(request).access
    # The client's address as the server sees it: behind the TLS proxy, run uvicorn with
    # --proxy-headers --forwarded-allow-ips=<proxy> so it is the browser's, not the proxy's.
    address = request.client.host if request.client else None
    if email:
        counted = [*ratelimit.buckets(address, ""), f"user:{email}"[: ratelimit.MAX_BUCKET_CHARS]]
    else:
        counted = ratelimit.buckets(address, key)
    audit_note(request.scope, actor=f"user:{email}" if email else "api:(key)", surface="console")
    audit_note(request.scope, action="console sign-in " + ("with a password" if email else "with an API key"))

    def again(status: int, error: str, headers: dict[str, str] | None = None) -> HTMLResponse:
        return _login_page(request, session, _safe_next(form.get("next")), error, status, headers)

    wait = access.sign_in_wait(counted)
    if wait is not None:  # refused before the key or password is even looked at
        minutes = max(1, round(wait / 60))
        return again(
            429,
            f"too many failed sign-ins; try again in about {minutes} minute{'s' if minutes != 1 else ''}",
            {"Retry-After": str(wait)},
        )
    response = RedirectResponse(_safe_next(form.get("next")), 303)
    if email:
        user = access.password_sign_in(email, password) if password else None
        if user is None:
            access.sign_in_failed(counted)
            return again(401, "unknown email address or wrong password")
        access.sign_in_succeeded(counted)
        sessions.store(
            box, request, response, session.user_logged_in(user.id, user.email), public_url(request)
        )
        return response
    name = access.caller(key) if key else None
    if name is None:
        access.sign_in_failed(counted)
        return again(401, "unknown or revoked API key (create one with `russet apikey create NAME`)")
    audit_note(request.scope, actor=f"api:{name}")
    access.sign_in_succeeded(counted)
    sessions.store(box, request, response, session.logged_in(key_hash(key), name), public_url(request))
    return response


def _login_page(
    request: Request,
    session: sessions.Session,
    target: str,
    error: str | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    page = render(
        "login.html",
        None,
        status,
        csrf_token=session.csrf,
        next=target,
        error=error,
        sso=_russet(request).access.sso_enabled(),
    )
    page.headers.update(headers or {})
    return page


# -- single sign-on (OpenID Connect) -------------------------------------------------------------


@router.get("/sso")
def sso_start(request: Request, next: str | None = None) -> Response:
    """Send the browser to the sign-on provider (authorization code flow with PKCE)."""
    try:
        url, pending = _russet(request).access.sso_start()
    except RussetError as exc:
        raise ConsoleError(str(exc), status_for(exc)) from None
    response = RedirectResponse(url, 303)
    flow = {"state": pending.state, "nonce": pending.nonce, "verifier": pending.verifier}
    sessions.store_sso(
        box_of(request), request, response, {**flow, "next": _safe_next(next)}, public_url(request)
    )
    return response


@router.get("/sso/callback")
def sso_callback(request: Request) -> Response:
    """The provider sends the browser back here with a code (or an error): sign the person in."""
    box = box_of(request)
    russet = _russet(request)
    flow = sessions.load_sso(box, request)
    session = sessions.load(box, request) or sessions.Session.anonymous()
    if flow is None:
        page = _login_page(
            request, session, "/console/devices", "the sign-on took too long; start it again", 400
        )
        sessions.store(box, request, page, session, public_url(request))
        return page
    params = {k: v for k, v in request.query_params.items() if k in ("code", "state", "error")}
    client = request.client.host if request.client else ""
    try:
        user = russet.access.sso_finish(Pending(flow["state"], flow["nonce"], flow["verifier"]), params)
    except RussetError as exc:
        russet.access.record(
            AuditEntry(
                "sso:(unknown)",
                "console",
                "console sign-in with single sign-on",
                "",
                client,
                "denied",
                status_for(exc),
                {"reason": str(exc)[:500]},
            )
        )
        page = _login_page(request, session, flow.get("next", "/console/devices"), str(exc), status_for(exc))
        sessions.store(box, request, page, session, public_url(request))
        sessions.clear_sso(request, page, public_url(request))
        return page
    russet.access.record(
        AuditEntry(
            f"user:{user.email}", "console", "console sign-in with single sign-on", "", client, "ok", 303
        )
    )
    response = RedirectResponse(_safe_next(flow.get("next")), 303)
    sessions.store(box, request, response, session.user_logged_in(user.id, user.email), public_url(request))
    sessions.clear_sso(request, response, public_url(request))
    return response


@router.post("/logout", dependencies=[needs(Role.AUDITOR)])
def logout(request: Request, admin: Signed, form: Form) -> Response:
    checked(admin, form)
    response = RedirectResponse("/console/login", 303)
    sessions.clear(request, response, public_url(request))
    return response


# -- devices and commands ------------------------------------------------------------------------


@router.get("/devices")
def devices(request: Request, admin: Signed, q: str = "", after: str | None = None) -> HTMLResponse:
    search = q.strip() or None
    page = call(_russet(request).devices.list_devices, limit=PAGE_SIZE, after=after, search=search)
    next_url = None
    if page["next"] is not None:
        next_url = "/console/devices?" + urlencode(
            {**({"q": search} if search else {}), "after": page["next"]}
        )
    return render(
        "devices.html", admin, devices=page["devices"], q=search or "", after=after, next_url=next_url
    )


def _device_page(
    russet: Russet, admin: Admin, device_id: str, status: int = 200, **extra: Any
) -> HTMLResponse:
    device = call(russet.devices.show_device, device_id)
    commands = call(russet.devices.device_commands, device_id, RECENT_COMMANDS)["commands"]
    builders = {
        name: [(key, p.type, p.required and p.default is None) for key, p in COMMANDS[name].params.items()]
        for name in sorted(COMMANDS)
    }
    context = {
        "chosen": "DeviceInformation",
        "params": "",
        "error": None,
        "action_error": None,
        "secret_error": None,
        **extra,
    }
    secrets = None
    if device["channel"] == "device":
        try:  # what is escrowed (never a value), with a form to be shown one
            secrets = russet.escrow.secrets(device_id)
        except RussetError:
            secrets = None
    return render(
        "device.html",
        admin,
        status,
        device=device,
        commands=commands,
        builders=builders,
        desired=_desired(russet, device_id),
        actions=ACTIONS,
        action_choices=_ACTION_CHOICES,
        answers=russet.actions.latest(device_id),
        secrets=secrets,
        secret_kinds=SECRET_KINDS,
        declared=_declared(russet, device_id),
        **context,
    )


_ACTION_CHOICES = {
    "obliteration_behavior": choices("erase", "obliteration_behavior"),
    "install_action": choices("schedule-os-update", "install_action"),
    "priority": choices("schedule-os-update", "priority"),
}
_FLAGS = frozenset({"preserve_data_plan", "disallow_proximity_setup", "force_deletion", "force"})
_NUMBERS = frozenset({"max_user_deferrals"})


def _action_values(action: str, form: dict[str, str]) -> dict[str, Any]:
    """An action's typed input from its form: empty fields left out, checkboxes as booleans."""
    values: dict[str, Any] = {}
    for name in ACTIONS[action].fields:
        text = form.get(name, "").strip()
        if name in _FLAGS:
            values[name] = True if text else None
        elif name in _NUMBERS and text:
            try:
                values[name] = int(text)
            except ValueError:
                raise Invalid(f"{name.replace('_', ' ')} must be a whole number, not {text[:20]!r}") from None
        else:
            values[name] = text or None
    return values


@router.post("/devices/{device_id}/actions/{action}", dependencies=[needs(Role.OPERATOR)])
def device_action(request: Request, admin: Signed, form: Form, device_id: str, action: str) -> Response:
    """One device action from its form on the device page. Erase and delete-user need the device's
    serial number (or UDID) typed into `confirm`, checked after the input is valid."""
    checked(admin, form)
    russet = _russet(request)
    try:
        if action not in ACTIONS:
            raise NotFound(f"no device action {action!r}")
        values = _action_values(action, form)
        checked_ = russet.actions.run(device_id, action, values, by=admin.name, check_only=True)
        if ACTIONS[action].destructive:
            typed = form.get("confirm", "").strip()
            shown = russet.devices.show_device(checked_["device"])
            if not typed or typed not in (shown["serial_number"], shown["id"]):
                raise Invalid(
                    f"type the device's serial number ({shown['serial_number'] or shown['id']}) to confirm"
                )
        done = russet.actions.run(device_id, action, values, by=admin.name)
    except RussetError as exc:
        if isinstance(exc, NotFound):
            raise ConsoleError(str(exc), 404) from None
        error = f"{action}: {exc}"
        return _device_page(russet, admin, device_id, status_for(exc), action_error=error)
    return RedirectResponse(f"/console/commands/{quote(done['command_uuid'])}", 303)


@router.post("/devices/{device_id}/secrets/{kind}/view")
def view_secret(request: Request, admin: Signed, form: Form, device_id: str, kind: str) -> Response:
    """Show an escrowed secret: a reason is required, the view is recorded (viewer: the signed-in
    key or user, `api:<name>` / `user:<email>`), then the secret is rotated where the device
    allows (the service)."""
    checked(admin, form)
    russet = _russet(request)
    try:
        shown = russet.escrow.view(device_id, kind, viewer=admin.actor, reason=form.get("reason"))
    except RussetError as exc:
        if isinstance(exc, NotFound) and "no device" in str(exc):
            raise ConsoleError(str(exc), 404) from None
        return _device_page(russet, admin, device_id, status_for(exc), secret_error=f"{kind}: {exc}")
    response = render("secret.html", admin, shown=shown)
    response.headers["Cache-Control"] = "no-store"
    return response


def _desired(russet: Russet, device_id: str) -> dict[str, Any] | None:
    """The device's desired vs actual state (issue #13), or None when no blueprint concerns it."""
    try:
        state: dict[str, Any] = russet.blueprints.device_state(device_id)
    except NotFound:
        return None
    except RussetError as exc:  # shown in its section; the rest of the device page stays useful
        return {"unavailable": str(exc)}
    # Drift is highlighted whether the reinstall waits for a slot ("drifted") or the next pass
    # queues it (then the item is "pending" and the planned action's reason says "drifted").
    drifted = {(a.get("kind"), a.get("item")) for a in state["next_pass"] if a.get("reason") == "drifted"}
    for item in state["items"]:
        item["drift"] = item["state"] == "drifted" or (item["kind"], item["item"]) in drifted
    return state


def _declared(russet: Russet, device_id: str) -> dict[str, Any]:
    """The device's declarations (issue #14), declared vs reported, with its reported status."""
    try:
        state: dict[str, Any] = russet.declarations.device_state(device_id)
    except NotFound:  # a channel the declarative feature does not know (a user channel)
        return {"declarations": [], "status_at": None, "status": {}, "errors": []}
    except RussetError as exc:  # shown in its section; the rest of the device page stays useful
        return {"unavailable": str(exc)}
    return state


@router.get("/devices/{device_id}")
def device(request: Request, admin: Signed, device_id: str) -> HTMLResponse:
    return _device_page(_russet(request), admin, device_id)


@router.post("/devices/{device_id}/commands", dependencies=[needs(Role.OPERATOR)])
def queue_command(request: Request, admin: Signed, form: Form, device_id: str) -> Response:
    checked(admin, form)
    russet = _russet(request)
    request_type = form.get("request_type", "")
    text = form.get("params", "").strip()
    try:
        if request_type not in COMMANDS:
            raise Invalid(f"choose one of the supported commands, not {request_type!r}")
        try:
            params = json.loads(text) if text else {}
        except ValueError as exc:
            raise Invalid(f"parameters must be a JSON object: {exc}") from None
        if not isinstance(params, dict):
            raise Invalid("parameters must be a JSON object")
        queued = russet.devices.send_command(
            [device_id], {**params, "RequestType": request_type}, created_by=admin.name
        )
    except RussetError as exc:
        if isinstance(exc, NotFound):
            raise ConsoleError(str(exc), 404) from None
        return _device_page(russet, admin, device_id, 400, chosen=request_type, params=text, error=str(exc))
    return RedirectResponse(f"/console/commands/{quote(queued['commands'][0]['command_uuid'])}", 303)


@router.get("/commands/{command_uuid}")
def command(request: Request, admin: Signed, command_uuid: str) -> HTMLResponse:
    shown = call(_russet(request).devices.show_command, command_uuid)
    parsed = answer(shown["request_type"], shown["result"]) if shown["status"] == "acknowledged" else None
    return render("command.html", admin, command=shown, answer=parsed)


# -- what we tell Apple --------------------------------------------------------------------------


@router.get("/ledger")
def ledger(request: Request, admin: Signed, since: str = "", service: str = "") -> HTMLResponse:
    rows = call(
        _russet(request).ledger_admin.ledger_report, since=since.strip() or None, service=service or None
    )
    return render("ledger.html", admin, rows=rows, columns=REPORT_COLUMNS, since=since, service=service)


# -- the audit log ---------------------------------------------------------------------------------


@router.get("/audit")
def audit(request: Request, admin: Signed, before: int | None = None, actor: str = "") -> HTMLResponse:
    if before is not None and not 1 <= before <= MAX_DB_INT:
        raise ConsoleError("before must be a row number", 400)
    access = _russet(request).access
    found = call(access.audit_page, limit=PAGE_SIZE, before=before, actor=actor.strip() or None)
    next_url = None
    if found["next"] is not None:
        next_url = "/console/audit?" + urlencode(
            {**({"actor": actor} if actor else {}), "before": found["next"]}
        )
    verdict = access.audit_verify()
    return render("audit.html", admin, rows=found["rows"], actor=actor, next_url=next_url, verdict=verdict)


def install(app: FastAPI) -> None:
    app.include_router(router)
    for pages in (dashboard, groups, library, blueprints, declarations, privacy, connections, abm, push, vpp):
        app.include_router(pages.router)
    app.include_router(declarations.updates_router)

    @app.exception_handler(NeedsLogin)
    async def _needs_login(request: Request, _: NeedsLogin) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/console/dashboard"
        return RedirectResponse("/console/login?" + urlencode({"next": target}), 303)

    @app.exception_handler(ConsoleError)
    async def _console_error(request: Request, exc: ConsoleError) -> Response:
        return render("error.html", None, exc.status, message=str(exc))
