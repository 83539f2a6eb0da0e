"""The audit log's ASGI middleware: every request that changes something through the admin API
or the console (any method but GET, HEAD and OPTIONS) is recorded once its answer is sent, with
who (noted by the authentication dependency, `russet.web.deps.audit_note`), what (the method and
the route's path template), the target (the path's values, or what the route noted), when, from
where (the client's address as the server sees it) and the outcome (from the status).

Requests that never named a caller (no or an unknown API key) are not recorded: the access log
has them. Console sign-ins are (the sign-in form notes who tried). Bodies are never recorded, so
no secret reaches the log.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from russet.access.audit import AuditEntry, outcome_of
from russet.access.service import AccessService
from russet.web.deps import AUDIT_SLOT
from russet.web.offload import THREADS, Offload

log = logging.getLogger("russet")
QUIET = frozenset({"GET", "HEAD", "OPTIONS"})
PREFIXES = ("/api/", "/console/")


def _target(scope: Scope, notes: dict[str, str]) -> str:
    if notes.get("target"):
        return notes["target"]
    params: dict[str, Any] = scope.get("path_params") or {}
    return " ".join(f"{k}={v}" for k, v in params.items())


class Audited:
    def __init__(self, app: ASGIApp, access: AccessService, offload: Offload = THREADS) -> None:
        self.app = app
        self.access = access
        self.offload = offload  # a row is three statements: light (russet.web.offload)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in QUIET or not scope["path"].startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        notes: dict[str, str] = {}
        scope[AUDIT_SLOT] = notes
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if notes.get("actor"):
                await self.offload.run(self._record, scope, notes, status)

    def _record(self, scope: Scope, notes: dict[str, str], status: int) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or scope["path"]
        client = scope.get("client")
        try:
            self.access.record(
                AuditEntry(
                    actor=notes["actor"],
                    surface=notes.get("surface", "api"),
                    action=notes.get("action") or f"{scope['method']} {template}",
                    target=_target(scope, notes),
                    source=client[0] if client else "",
                    outcome=outcome_of(status),
                    status=status,
                )
            )
        except Exception:  # never turn a done action into an error; say so loudly instead
            log.exception("audit log: %s %s by %s not recorded", scope["method"], template, notes["actor"])
