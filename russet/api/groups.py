"""Admin REST API for device groups, under /api/v1/groups: static and smart groups, members,
CSV import, previewing a query, and the devices a scope reaches."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from russet.access.roles import Role
from russet.api.models import MAX_DB_INT, ApiModel, EnrollmentId
from russet.groups.csvimport import MAX_CSV_BYTES
from russet.groups.query import MAX_QUERY_CHARS
from russet.groups.service import MAX_DESCRIPTION_CHARS, MAX_IDENTIFIERS, MAX_NAME_CHARS, Scope
from russet.web.deps import Caller, needs
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])

GroupName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
GroupQuery = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)]
GroupRef = GroupName | Annotated[int, Field(ge=1, le=MAX_DB_INT)]
Limit = Annotated[int, Query(ge=1, le=1000)]
After = Annotated[str | None, Query(max_length=300)]


class GroupCreate(ApiModel):
    name: GroupName
    kind: Literal["static", "smart"] | None = Field(
        None,
        description="static (members added by UDID or serial) or smart (a query); default: smart if a query",
    )
    query: GroupQuery | None = Field(
        None, description='Smart groups: e.g. os_version >= "17.4" and model ~ "iPad" and supervised = true'
    )
    description: Description | None = None


class GroupUpdate(ApiModel):
    name: GroupName | None = Field(
        None, description="A new name (refused while another group's query uses it)"
    )
    query: GroupQuery | None = Field(None, description="A new query (smart groups); re-evaluated at once")
    description: Description | None = None


class Members(ApiModel):
    devices: list[EnrollmentId] = Field(
        min_length=1, max_length=MAX_IDENTIFIERS, description="UDIDs (or EnrollmentIDs) or serial numbers"
    )


class CsvImport(ApiModel):
    csv: str = Field(
        min_length=1,
        max_length=MAX_CSV_BYTES,
        description="CSV text whose first column holds UDIDs or serial numbers (a title row is skipped)",
    )
    replace: bool = Field(
        False, description="Make the members exactly the file's devices (default: add them)"
    )


class Preview(ApiModel):
    query: GroupQuery
    limit: int = Field(50, ge=0, le=1000, description="How many of the matching device ids to list")


class ScopeRequest(ApiModel):
    include: list[GroupRef] = Field(min_length=1, max_length=100, description="Groups by name or id")
    exclude: list[GroupRef] = Field(default_factory=list, max_length=100)
    limit: int = Field(100, ge=1, le=1000)
    after: EnrollmentId | None = Field(None, description="The last device id of the previous page")


@router.get("", summary="Groups by name, with their kind, query and member count (keyset pages)")
def list_groups(request: Request, _: Caller, limit: Limit = 100, after: After = None) -> dict[str, Any]:
    return _russet(request).groups.page(limit=limit, after=after)


@router.post("", status_code=201, summary="Create a static or smart group (a smart one is evaluated at once)")
def create_group(request: Request, _: Caller, body: GroupCreate) -> dict[str, Any]:
    return _russet(request).groups.create(
        body.name, query=body.query, description=body.description, kind=body.kind
    )


@router.post(
    "/preview",
    summary="The devices a smart query picks now, without saving anything",
    dependencies=[needs(Role.AUDITOR)],  # a read, though a POST
)
def preview(request: Request, _: Caller, body: Preview) -> dict[str, Any]:
    return _russet(request).groups.preview(body.query, limit=body.limit)


@router.post(
    "/scope",
    summary="The devices in any included group and in no excluded group (keyset pages)",
    dependencies=[needs(Role.AUDITOR)],  # a read, though a POST
)
def scope(request: Request, _: Caller, body: ScopeRequest) -> dict[str, Any]:
    devices = _russet(request).groups.scope_devices(
        Scope(include=body.include, exclude=body.exclude), limit=body.limit, after=body.after
    )
    return {"devices": devices, "next": devices[-1] if len(devices) == body.limit else None}


@router.get("/{name}", summary="A group with a page of its members (device ids, in order)")
def show_group(
    request: Request, _: Caller, name: str, limit: Limit = 100, after: After = None
) -> dict[str, Any]:
    return _russet(request).groups.show(name, limit=limit, after=after)


@router.patch("/{name}", summary="Rename a group, change its query (re-evaluated) or description")
def update_group(request: Request, _: Caller, name: str, body: GroupUpdate) -> dict[str, Any]:
    return _russet(request).groups.update(
        name, new_name=body.name, query=body.query, description=body.description
    )


@router.delete("/{name}", summary="Delete a group (refused while another group's query uses it)")
def delete_group(request: Request, _: Caller, name: str) -> dict[str, Any]:
    return _russet(request).groups.delete(name)


@router.post("/{name}/members", summary="Add devices (UDID or serial) to a static group; all or none")
def add_members(request: Request, _: Caller, name: str, body: Members) -> dict[str, Any]:
    return _russet(request).groups.add_members(name, body.devices)


@router.post("/{name}/members/remove", summary="Remove devices (UDID or serial) from a static group")
def remove_members(request: Request, _: Caller, name: str, body: Members) -> dict[str, Any]:
    return _russet(request).groups.remove_members(name, body.devices)


@router.post(
    "/{name}/import", summary="Add (or replace) a static group's members from CSV; any bad line fails it"
)
def import_csv(request: Request, _: Caller, name: str, body: CsvImport) -> dict[str, Any]:
    return _russet(request).groups.import_csv(name, body.csv.encode(), replace=body.replace)
