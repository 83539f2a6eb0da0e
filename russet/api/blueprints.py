"""Admin REST API for blueprints, under /api/v1/blueprints: definitions, each device's desired vs
actual state, and reconcile passes (with dry run). All logic is in `russet.blueprints.service`,
shared with the CLI; this module parses, calls `russet.blueprints` and returns its dicts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from russet.api.models import MAX_DB_INT, ApiModel, EnrollmentId, Name
from russet.blueprints.service import AppRef, BlueprintSpec, ProfileRef
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/blueprints", tags=["blueprints"])

GroupId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
Ref = Annotated[str, Field(min_length=1, max_length=255)]
DeclarationRef = Annotated[str, Field(min_length=1, max_length=64)]


class ProfileItem(ApiModel):
    ref: Ref = Field(description="The library profile's name")
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="A pinned version; null: the latest")


class AppItem(ApiModel):
    ref: Ref = Field(description="The catalogue app's name")
    configuration: dict[str, Any] | None = Field(
        None, description="Managed app configuration (a dictionary, at most 64 KiB as JSON)"
    )


class SettingItems(ApiModel):
    device_name: Annotated[
        str | None,
        Field(min_length=1, max_length=200, description="Name pattern; may use $SERIAL, $UDID, $MODEL"),
    ] = None
    time_zone: Annotated[
        str | None, Field(min_length=1, max_length=100, description="IANA name, e.g. Europe/Paris")
    ] = None


class Scope(ApiModel):
    include: list[GroupId] = Field(default_factory=list, max_length=1000, description="Group ids")
    exclude: list[GroupId] = Field(default_factory=list, max_length=1000, description="Group ids")


class BlueprintBody(ApiModel):
    name: Name
    description: str = Field("", max_length=2000)
    profiles: list[ProfileItem] = Field(default_factory=list, max_length=100)
    settings: SettingItems | None = Field(None, description="Settings the devices get")
    apps: list[Ref | AppItem] = Field(
        default_factory=list, max_length=100, description="Catalogue apps: a name, or {ref, configuration}"
    )
    declarations: list[DeclarationRef] = Field(
        default_factory=list,
        max_length=100,
        description="Declaration Identifiers (/api/v1/declarations) the devices in scope get",
    )
    scope: Scope | None = Field(None, description="Groups whose devices get the blueprint")

    def spec(self) -> BlueprintSpec:
        settings, scope = self.settings or SettingItems(), self.scope or Scope()
        return BlueprintSpec(
            name=self.name,
            description=self.description,
            profiles=tuple(ProfileRef(p.ref, p.version) for p in self.profiles),
            device_name=settings.device_name,
            time_zone=settings.time_zone,
            apps=tuple(
                AppRef(a) if isinstance(a, str) else AppRef(a.ref, a.configuration) for a in self.apps
            ),
            declarations=tuple(self.declarations),
            include=tuple(scope.include),
            exclude=tuple(scope.exclude),
        )


class ReconcileBody(ApiModel):
    devices: list[EnrollmentId] | None = Field(
        None, min_length=1, max_length=10_000, description="Only these devices; all when absent"
    )
    dry_run: bool = Field(False, description="Plan only: queue nothing, store nothing")
    retry_failed: bool = Field(False, description="Try failed items again")


def _ident(ident: str) -> int | str:
    """A blueprint is named by id or by name (names are never only digits)."""
    return int(ident) if ident.isdigit() and len(ident) < 19 else ident


@router.get("", summary="Blueprints with their item counts and scopes")
def list_blueprints(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).blueprints.list_blueprints()


@router.post(
    "", status_code=201, summary="Create a blueprint (profiles, settings, apps, declarations, scope)"
)
def create(request: Request, caller: Caller, body: BlueprintBody) -> dict[str, Any]:
    return _russet(request).blueprints.create(body.spec(), created_by=caller)


@router.post("/reconcile", summary="Reconcile now (all devices or some; dry_run plans without queueing)")
def reconcile(request: Request, caller: Caller, body: ReconcileBody) -> dict[str, Any]:
    return _russet(request).blueprints.reconcile(
        body.devices,
        dry_run=body.dry_run,
        retry_failed=body.retry_failed,
        created_by=f"reconcile:{caller}"[:100],
    )


@router.get(
    "/devices/{device_id}", summary="A device's desired vs actual state: each item, drift, next commands"
)
def device_state(request: Request, _: Caller, device_id: str) -> dict[str, Any]:
    return _russet(request).blueprints.device_state(device_id)


@router.get("/{ident}", summary="One blueprint, by id or name")
def show(request: Request, _: Caller, ident: str) -> dict[str, Any]:
    return _russet(request).blueprints.get(_ident(ident))


@router.put("/{ident}", summary="Replace a blueprint's definition whole")
def replace(request: Request, _: Caller, ident: str, body: BlueprintBody) -> dict[str, Any]:
    return _russet(request).blueprints.update(_ident(ident), body.spec())


@router.delete("/{ident}", summary="Delete a blueprint; the next pass removes what it installed")
def delete(request: Request, _: Caller, ident: str) -> dict[str, Any]:
    return _russet(request).blueprints.delete(_ident(ident))
