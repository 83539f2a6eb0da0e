"""What every admin API request and answer shares: the strict request base model, the checks on
text input, and the documented error answers.

They live in one place so that a new route is safe by default: its body model inherits the
refusal of unknown fields, coerced types and NUL characters; its query and path values are checked
by the authentication dependency every route already has (`russet.web.deps.check_params`, shared
with the console); and its 4xx answers are written into the OpenAPI document from the route's
shape (`document_errors`), not by hand on each route.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel, ConfigDict, Field, model_validator

from russet.storage.db import MAX_DB_INT  # noqa: F401  (re-exported for the routers)

# Nesting of a JSON body (a command's or ABM profile's dict) before it is refused.
MAX_BODY_DEPTH = 32


def _strings(value: Any, where: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every string (keys too) in a JSON value, with where it is, e.g. `command.Message`."""
    if depth > MAX_BODY_DEPTH:
        raise ValueError(f"{where or 'the body'} is nested more than {MAX_BODY_DEPTH} levels deep")
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if isinstance(key, str):
                yield here, key
            yield from _strings(item, here, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]", depth + 1)


def nul_free(value: Any, where: str = "") -> None:
    """Refuse NUL characters: PostgreSQL cannot store them in text (SQLite would, and then the two
    backends would answer differently) and no Apple identifier or field contains one."""
    for place, text in _strings(value, where):
        if "\x00" in text:
            raise ValueError(f"{place or 'the value'}: NUL characters (\\u0000) are not allowed")


# Strings bounded like the columns they are stored in (PostgreSQL refuses longer ones; SQLite would
# keep them, and the backends would answer differently): a 422 names the limit instead.
EnrollmentId = Annotated[str, Field(min_length=1, max_length=300)]
Serial = Annotated[str, Field(min_length=1, max_length=64)]
AdamId = Annotated[str, Field(min_length=1, max_length=40)]
ClientUserId = Annotated[str, Field(min_length=1, max_length=64)]
Uuid = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class ApiModel(BaseModel):
    """Base of every request body: unknown fields are refused (a typo must not be silently
    ignored), types are strict (`true` is not the number 1, `"1"` is not a boolean), and no
    string anywhere in the body, nested ones included, holds a NUL character."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        nul_free(data)
        return data


class ApiError(BaseModel):
    """Every error answer: a sentence for people, or FastAPI's list of validation problems."""

    detail: str | list[dict[str, Any]] = Field(
        description="Why the request was refused; for a 422 also a list of {loc, msg, type}"
    )


_REASONS = {
    400: "The request cannot be done as asked; `detail` says why",
    401: "No API key, or an unknown or revoked one (Authorization: Bearer <key>)",
    404: "Nothing with this id or name",
    409: "It conflicts with the current state (already revoked, taken over, disconnected...)",
    413: "The request body is larger than RUSSET_MAX_BODY_BYTES",
    422: "A field is missing, unknown, of the wrong type, out of range, too long or holds a NUL",
    502: "Apple's service could not be reached or answered with an error",
}


def _error_codes(route: APIRoute) -> list[int]:
    """The error answers a route can give, from its shape: authentication, path ids, a body,
    writes, and (for the `async` handlers, which are those that reach Apple) Apple's failures."""
    params = route.dependant
    authenticated = any(getattr(dep.call, "__name__", "") == "api_caller" for dep in params.dependencies)
    codes = {400, 422} if authenticated or params.query_params or params.path_params else set()
    if authenticated:
        codes.add(401)
    if params.path_params or route.body_field is not None:  # an id in the path or the body
        codes.add(404)
    if route.body_field is not None:
        codes.add(413)
    if (route.methods or set()) - {"GET", "HEAD"}:
        codes.add(409)
    if inspect.iscoroutinefunction(route.endpoint):
        codes.add(502)
    return sorted(codes)


def document_errors(router: APIRouter) -> None:
    """Write each of the router's routes' error answers, with the ApiError schema, into the OpenAPI
    document. Run on every API router before it is included (and so before the document is built).
    """
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for code in _error_codes(route):
            if code in route.responses:
                continue
            route.responses[code] = {"model": ApiError, "description": _REASONS[code]}
            # FastAPI reads a response's schema from response_fields, built when the route was made.
            route.response_fields[code] = create_model_field(
                name=f"Response_{code}_{route.unique_id}", type_=ApiError, mode="serialization"
            )
