"""The console's routes: login/logout, devices, a device (with its desired vs actual state),
queueing a command, a command, the ledger report ("What we tell Apple") and connections; `install`
adds the pages of `groups`, `library` and `blueprints`. What every page shares (forms, CSRF, flash
messages, the error mapping) is in `russet.console.common`.

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

from russet.apple.ledger import REPORT_COLUMNS
from russet.commands import COMMANDS
from russet.console import blueprints, declarations, groups, library
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
from russet.kernel.errors import Invalid, NotFound, RussetError
from russet.runtime import Russet
from russet.storage import login_failures as ratelimit
from russet.storage.apikeys import key_hash
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console", include_in_schema=False)
RECENT_COMMANDS = 20
CSS = (HERE / "static" / "console.css").read_bytes()


def _safe_next(target: str | None) -> str:
    """Only console paths after login: never an open redirect to another site."""
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return "/console/devices"


# -- login ---------------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/console/devices", 303)


@router.get("/static/console.css")
def stylesheet() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    box = box_of(request)
    session = sessions.load(box, request) or sessions.Session.anonymous()
    response = render("login.html", None, csrf_token=session.csrf, next=_safe_next(next), error=None)
    sessions.store(box, request, response, session, public_url(request))
    return response


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    box = box_of(request)
    session = sessions.load(box, request)
    if session is None or not session.csrf_ok(form.get("csrf")):
        raise ConsoleError("the login form has expired; open it again", 403)
    key = form.get("api_key", "").strip()
    access = _russet(request).access
    # The client's address as the server sees it: behind the TLS proxy, run uvicorn with
    # --proxy-headers --forwarded-allow-ips=<proxy> so it is the browser's, not the proxy's.
    counted = ratelimit.buckets(request.client.host if request.client else None, key)

    def again(status: int, error: str, headers: dict[str, str] | None = None) -> HTMLResponse:
        target = _safe_next(form.get("next"))
        page = render("login.html", None, status, csrf_token=session.csrf, next=target, error=error)
        page.headers.update(headers or {})
        return page

    wait = access.sign_in_wait(counted)
    if wait is not None:  # refused before the key is even looked up
        minutes = max(1, round(wait / 60))
        return again(
            429,
            f"too many failed sign-ins; try again in about {minutes} minute{'s' if minutes != 1 else ''}",
            {"Retry-After": str(wait)},
        )
    name = access.caller(key) if key else None
    if name is None:
        access.sign_in_failed(counted)
        return again(401, "unknown or revoked API key (create one with `russet apikey create NAME`)")
    access.sign_in_succeeded(counted)
    response = RedirectResponse(_safe_next(form.get("next")), 303)
    sessions.store(box, request, response, session.logged_in(key_hash(key), name), public_url(request))
    return response


@router.post("/logout")
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
    context = {"chosen": "DeviceInformation", "params": "", "error": None, **extra}
    return render(
        "device.html",
        admin,
        status,
        device=device,
        commands=commands,
        builders=builders,
        desired=_desired(russet, device_id),
        declared=_declared(russet, device_id),
        **context,
    )


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


@router.post("/devices/{device_id}/commands")
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
    return render("command.html", admin, command=call(_russet(request).devices.show_command, command_uuid))


# -- what we tell Apple --------------------------------------------------------------------------


@router.get("/ledger")
def ledger(request: Request, admin: Signed, since: str = "", service: str = "") -> HTMLResponse:
    rows = call(
        _russet(request).ledger_admin.ledger_report, since=since.strip() or None, service=service or None
    )
    return render("ledger.html", admin, rows=rows, columns=REPORT_COLUMNS, since=since, service=service)


@router.get("/connections")
def connections(request: Request, admin: Signed) -> HTMLResponse:
    ledger_admin = _russet(request).ledger_admin
    return render(
        "connections.html", admin, connections=ledger_admin.connections(), receipts=ledger_admin.receipts()
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    for pages in (groups, library, blueprints, declarations):
        app.include_router(pages.router)
    app.include_router(declarations.updates_router)

    @app.exception_handler(NeedsLogin)
    async def _needs_login(request: Request, _: NeedsLogin) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/console/devices"
        return RedirectResponse("/console/login?" + urlencode({"next": target}), 303)

    @app.exception_handler(ConsoleError)
    async def _console_error(request: Request, exc: ConsoleError) -> Response:
        return render("error.html", None, exc.status, message=str(exc))
