"""Request dependencies shared by the admin API's routers and the console.

They live here, below every router, so that routers import them instead of each other (the API's
routers used to import `Caller` from `russet.api.routes`, which imported them back).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from russet.accesslog import API_KEY, note
from russet.api.models import check_params
from russet.runtime import Russet

bearer = HTTPBearer(auto_error=False, description="An API key from `russet apikey create NAME`")


def russet_of(request: Request) -> Russet:
    """The running Russet the app was built with."""
    return request.app.state.russet


def api_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The name of the API key making the request (401 without a live one); it also checks the
    request's query and path values, since every API route has a caller."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "missing Authorization: Bearer <API key>", headers={"WWW-Authenticate": "Bearer"}
        )
    name = russet_of(request).storage.api_keys.authenticate(credentials.credentials)
    if name is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    check_params(request)  # every route has a caller: its query and path values are checked here
    note(request.scope, API_KEY, name)  # the access log names the key (never the key itself)
    return name


Caller = Annotated[str, Depends(api_caller)]
