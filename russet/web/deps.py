"""Request dependencies shared by the admin API's routers and the console.

They live here, below every router, so that routers import them instead of each other (the API's
routers used to import `Caller` from `russet.api.routes`, which imported them back), and so that
the console need not import the API's modules for the checks both apply to every request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from russet.access.roles import Role
from russet.access.service import Principal
from russet.accesslog import API_KEY, note
from russet.runtime import Russet
from russet.storage.apikeys import key_hash
from russet.web.offload import THREADS, Offload

bearer = HTTPBearer(auto_error=False, description="An API key from `russet apikey create NAME`")

# Longest query or path value the API and the console read: the longest key they look up is an
# enrollment id (300 characters); anything much longer is not an id of Russet's.
MAX_PARAM_CHARS = 1024


def russet_of(request: Request) -> Russet:
    """The running Russet the app was built with."""
    return request.app.state.russet


def offload_of(request: Request) -> Offload:
    """Where the app runs a request's blocking calls (`russet.web.offload`), chosen by `create_app`."""
    offload: Offload = getattr(request.app.state, "offload", THREADS)
    return offload


def check_params(request: Request) -> None:
    """The query and path values of a request: no NUL, at most MAX_PARAM_CHARS characters.

    Called by the authentication dependency every API route has (and by the console's), so it
    covers all of them, after the caller is known and before any value reaches the database.
    """
    sources = (("query", request.query_params.multi_items()), ("path", request.path_params.items()))
    for source, items in sources:
        for name, value in items:
            if not isinstance(value, str):
                continue
            if "\x00" in value or "\x00" in name:
                raise HTTPException(422, f"{source} parameter {name!r}: NUL characters are not allowed")
            if len(value) > MAX_PARAM_CHARS:
                raise HTTPException(
                    422, f"{source} parameter {name!r} is longer than {MAX_PARAM_CHARS} characters"
                )


# -- roles (issue #19) ----------------------------------------------------------------------------
#
# Each admin route needs a role. It is found from the route itself (`role_of`), so one check covers
# every route: a route's own `needs(...)` in its `dependencies`, else its router's `mutations(...)`
# for a route that is not a read, else the default: auditor for reads (GET, HEAD), admin for
# everything else. The markers are no-op dependencies, so they can sit on a router or on a route.

READ_METHODS = frozenset({"GET", "HEAD"})


class _Needs:
    """Marks a route (or every route of a router): it needs `role`."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self) -> None:
        """Nothing to do: async, since FastAPI runs a plain function dependency in its thread
        pool, and that hop cost every admin request ~0.1 ms of CPU per marker for nothing."""
        return None


class _Mutations(_Needs):
    """Marks a router: its routes that change something need `role` (reads keep the default)."""


def needs(role: Role) -> Any:
    """`dependencies=[needs(Role.OPERATOR)]` on a route (or a router): the role it needs."""
    return Depends(_Needs(role))


def mutations(role: Role) -> Any:
    """`dependencies=[mutations(Role.OPERATOR)]` on a router: its non-read routes need `role`."""
    return Depends(_Mutations(role))


def _markers(route: APIRoute) -> list[_Needs]:
    return [
        d.dependency
        for d in route.dependencies
        if isinstance(d, DependsParam) and isinstance(d.dependency, _Needs)
    ]


def role_of(route: APIRoute) -> Role:
    """The role a route needs (see above)."""
    marks = _markers(route)
    exact = [m for m in marks if not isinstance(m, _Mutations)]
    if exact:
        return exact[-1].role  # a route's own marker comes after its router's
    methods = route.methods or set()
    reads = bool(methods) and methods <= READ_METHODS
    if not reads:
        router_wide = [m for m in marks if isinstance(m, _Mutations)]
        if router_wide:
            return router_wide[-1].role
    return Role.AUDITOR if reads else Role.ADMIN


def refusal(principal: Principal, needed: Role, what: str) -> str:
    return f"{what} needs the {needed.label} role; {principal.actor} has the {principal.role.label} role"


def require(request: Request, needed: Role, what: str) -> Principal:
    """For a route that needs more in some cases (`?reveal=true`): 403 unless the caller has `needed`."""
    principal: Principal = request.state.principal
    if not principal.role.allows(needed):
        raise HTTPException(403, refusal(principal, needed, what))
    return principal


# -- the audit log's notes -------------------------------------------------------------------------

AUDIT_SLOT = "russet.audit"  # set by russet.web.audit's middleware for requests it records


def audit_note(scope: Scope, **fields: str) -> None:
    """Tell the audit middleware who is asking (`actor`, `surface`), the `target` of the action..."""
    slot = scope.get(AUDIT_SLOT)
    if isinstance(slot, dict):
        slot.update(fields)


async def api_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The name of the API key making the request (401 without a live one, 403 when its role is
    below the route's, see `role_of`); it also checks the request's query and path values, since
    every API route has a caller. The key's look-up is one indexed read (`offload_of`)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "missing Authorization: Bearer <API key>", headers={"WWW-Authenticate": "Bearer"}
        )
    principal = await offload_of(request).run_read(
        russet_of(request).access.principal_of_hash, key_hash(credentials.credentials)
    )
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    note(request.scope, API_KEY, principal.name)  # the access log names the key (never the key itself)
    audit_note(request.scope, actor=principal.actor, surface="api")
    request.state.principal = principal
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):  # every admin route is an APIRoute; refuse rather than guess
        raise HTTPException(403, "this route declares no role")
    needed = role_of(route)
    if not principal.role.allows(needed):
        raise HTTPException(403, refusal(principal, needed, f"{request.method} {route.path}"))
    check_params(request)  # every route has a caller: its query and path values are checked here
    return principal.name


Caller = Annotated[str, Depends(api_caller)]
