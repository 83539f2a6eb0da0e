"""Request dependencies shared by the admin API's routers and the console.

They live here, below every router, so that routers import them instead of each other (the API's
routers used to import `Caller` from `russet.api.routes`, which imported them back), and so that
the console need not import the API's modules for the checks both apply to every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from russet.accesslog import API_KEY, note
from russet.runtime import Russet

bearer = HTTPBearer(auto_error=False, description="An API key from `russet apikey create NAME`")

# Longest query or path value the API and the console read: the longest key they look up is an
# enrollment id (300 characters); anything much longer is not an id of Russet's.
MAX_PARAM_CHARS = 1024


def russet_of(request: Request) -> Russet:
    """The running Russet the app was built with."""
    return request.app.state.russet


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


def api_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The name of the API key making the request (401 without a live one); it also checks the
    request's query and path values, since every API route has a caller."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "missing Authorization: Bearer <API key>", headers={"WWW-Authenticate": "Bearer"}
        )
    name = russet_of(request).access.caller(credentials.credentials)
    if name is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    check_params(request)  # every route has a caller: its query and path values are checked here
    note(request.scope, API_KEY, name)  # the access log names the key (never the key itself)
    return name


Caller = Annotated[str, Depends(api_caller)]
