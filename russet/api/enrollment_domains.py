"""Admin REST API for account-driven enrollment's domains, under /api/v1/enrollment/domains."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import Field

from russet.api.models import ApiModel
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/enrollment/domains", tags=["enrollment"])


class DomainRequest(ApiModel):
    domain: str = Field(
        min_length=1, max_length=253, description="The domain people sign in with: user@domain"
    )
    mode: Literal["user", "device"] = Field(
        "user", description="user: User Enrollment (mdm-byod); device: Device Enrollment (mdm-adde)"
    )


@router.post("", status_code=201, summary="Answer account-driven discovery for a domain's people")
def add_domain(request: Request, _: Caller, body: DomainRequest) -> dict[str, Any]:
    return _russet(request).accounts.add_domain(body.domain, body.mode)


@router.get("", summary="Domains for account-driven enrollment")
def list_domains(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).accounts.list_domains()


@router.delete("/{domain}", summary="Stop account-driven enrollment for a domain")
def remove_domain(
    request: Request, _: Caller, domain: Annotated[str, Path(min_length=1, max_length=253)]
) -> dict[str, Any]:
    return _russet(request).accounts.remove_domain(domain)
