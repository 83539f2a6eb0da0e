"""Every query on the profile library's tables. Contents are sealed at rest (profiles carry Wi-Fi
and VPN passwords, PKCS#12 identities), bound to their SHA-256."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from russet.kernel.errors import Conflict
from russet.library.tables import library_profile_versions as versions
from russet.library.tables import library_profiles as profiles
from russet.library.upload import ParsedProfile
from russet.storage.db import reading, utcnow
from russet.storage.secretbox import SecretBox


def content_purpose(sha256: str) -> str:
    """The purpose label a version's content is sealed under (`storage.rotation` re-seals it)."""
    return f"library-profile:{sha256}"


@dataclass(frozen=True)
class Added:
    profile: dict[str, Any]
    version: dict[str, Any]
    created: bool  # False: the content was the latest version's already


def _version_row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data.pop("sealed_content", None)
    for key in ("payload_types", "payloads", "variables"):
        data[key] = json.loads(data[key])
    return data


class LibraryStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    # -- reads ------------------------------------------------------------------------------

    def profile(self, ref: str) -> dict[str, Any] | None:
        """A profile by name or by PayloadIdentifier (a name wins over another's identifier)."""
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(profiles).where(or_(profiles.c.name == ref, profiles.c.identifier == ref))
            ).all()
        if not rows:
            return None
        named = [r for r in rows if r.name == ref]
        return dict((named or rows)[0]._mapping)

    def profiles(self) -> list[dict[str, Any]]:
        """Every profile with its latest version, by name."""
        latest = (
            select(versions.c.profile_id, func.max(versions.c.version).label("version"))
            .group_by(versions.c.profile_id)
            .subquery()
        )
        query = (
            select(profiles, versions)
            .join(latest, latest.c.profile_id == profiles.c.id)
            .join(
                versions,
                (versions.c.profile_id == latest.c.profile_id) & (versions.c.version == latest.c.version),
            )
            .order_by(profiles.c.name)
        )
        with reading(self._engine) as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            data = _version_row(row)
            data["id"] = row.profile_id  # the profile's id, not the version row's
            out.append(data)
        return out

    def versions(self, profile_id: int) -> list[dict[str, Any]]:
        """A profile's versions, newest first."""
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(versions)
                .where(versions.c.profile_id == profile_id)
                .order_by(versions.c.version.desc())
            ).all()
        return [_version_row(r) for r in rows]

    def version(self, profile_id: int, version: int | None = None) -> dict[str, Any] | None:
        """One version (the latest when `version` is None), with its `content` unsealed."""
        query = select(versions).where(versions.c.profile_id == profile_id)
        if version is None:
            query = query.order_by(versions.c.version.desc()).limit(1)
        else:
            query = query.where(versions.c.version == version)
        with reading(self._engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        data = _version_row(row)
        data["content"] = self._box.open(row.sealed_content, content_purpose(row.content_sha256))
        return data

    # -- writes -----------------------------------------------------------------------------

    def add(self, parsed: ParsedProfile, name: str, uploaded_by: str | None) -> Added:
        """Add `parsed` as a new version of the profile named `name` (created if new); the same
        content as the latest version adds nothing. Names and identifiers stay paired."""
        try:
            with self._engine.begin() as conn:
                return self._add(conn, parsed, name, uploaded_by)
        except IntegrityError:
            # Another upload of the same profile committed between our read and our insert.
            raise Conflict(
                f"profile {name!r} changed while this upload was stored; upload it again"
            ) from None

    def _add(self, conn: Connection, parsed: ParsedProfile, name: str, uploaded_by: str | None) -> Added:
        now = utcnow()
        found = conn.execute(
            select(profiles).where(or_(profiles.c.name == name, profiles.c.identifier == parsed.identifier))
        ).all()
        by_name = next((r for r in found if r.name == name), None)
        by_identifier = next((r for r in found if r.identifier == parsed.identifier), None)
        if by_name is not None and by_name.identifier != parsed.identifier:
            raise Conflict(
                f"profile {name!r} is {by_name.identifier}, and this file is {parsed.identifier}: devices "
                "would install it beside the old one, not in its place; upload it under another name"
            )
        if by_identifier is not None and by_identifier.name != name:
            raise Conflict(
                f"{parsed.identifier} is already in the library as profile {by_identifier.name!r}; "
                "upload it under that name (or without one)"
            )
        if by_name is None:
            profile_id = conn.execute(
                insert(profiles)
                .values(name=name, identifier=parsed.identifier, created_at=now, updated_at=now)
                .returning(profiles.c.id)
            ).scalar_one()
            latest = None
        else:
            profile_id = by_name.id
            latest = conn.execute(
                select(versions)
                .where(versions.c.profile_id == profile_id)
                .order_by(versions.c.version.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.content_sha256 == parsed.sha256:
                return Added(dict(by_name._mapping), _version_row(latest), created=False)
            conn.execute(update(profiles).where(profiles.c.id == profile_id).values(updated_at=now))
        conn.execute(
            insert(versions).values(
                profile_id=profile_id,
                version=1 if latest is None else latest.version + 1,
                payload_uuid=parsed.payload_uuid,
                display_name=parsed.display_name,
                payload_types=json.dumps([p["type"] for p in parsed.payloads]),
                payloads=json.dumps(parsed.payloads),
                variables=json.dumps(parsed.variables),
                content_sha256=parsed.sha256,
                size=len(parsed.content),
                sealed_content=self._box.seal(parsed.content, content_purpose(parsed.sha256)),
                signer=parsed.signer.subject if parsed.signer else None,
                signer_fp=parsed.signer.fingerprint if parsed.signer else None,
                uploaded_by=uploaded_by,
                created_at=now,
            )
        )
        profile = conn.execute(select(profiles).where(profiles.c.id == profile_id)).one()
        row = conn.execute(
            select(versions)
            .where(versions.c.profile_id == profile_id)
            .order_by(versions.c.version.desc())
            .limit(1)
        ).one()
        return Added(dict(profile._mapping), _version_row(row), created=True)

    def delete(self, profile_id: int) -> int:
        """Delete a profile and all its versions; returns how many versions went."""
        with self._engine.begin() as conn:
            gone = conn.execute(delete(versions).where(versions.c.profile_id == profile_id)).rowcount
            conn.execute(delete(profiles).where(profiles.c.id == profile_id))
        return int(gone)
