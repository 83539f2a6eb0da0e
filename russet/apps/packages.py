"""Enterprise app files: what an uploaded `.ipa`/`.pkg` or manifest says, checked before it is kept,
and the manifest Russet hands a device for InstallApplication's ManifestURL.

Everything here reads outside input, so it is bounded: the package's size (`MAX_PACKAGE_BYTES`),
an `.ipa`'s member count and Info.plist size, a manifest's size and plist shape (`russet.plists`).
"""

from __future__ import annotations

import plistlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from russet import plists
from russet.kernel.errors import Invalid

MAX_PACKAGE_BYTES = 512 * 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024
MAX_INFO_PLIST_BYTES = 1024 * 1024
MAX_ZIP_MEMBERS = 200_000
_LIMITS = plists.Limits(max_objects=20_000, max_depth=16, max_expanded_bytes=4 * 1024 * 1024)
BUNDLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,254}$")
_INFO = re.compile(r"^Payload/[^/]+\.app/Info\.plist$")
XAR_MAGIC = b"xar!"


@dataclass(frozen=True, slots=True)
class PackageFacts:
    kind: str  # ipa | pkg
    bundle_id: str
    version: str | None
    title: str | None


def check_bundle_id(value: Any, what: str = "bundle_id") -> str:
    if not isinstance(value, str) or not BUNDLE_ID.match(value):
        raise Invalid(f"{what}: {value!r} is not a bundle identifier (letters, digits, '.', '-', '_')")
    return value


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def read_package(path: Path, filename: str, bundle_id: str | None, version: str | None) -> PackageFacts:
    """What an uploaded package is: an `.ipa` tells its bundle id and version in its Info.plist; a
    `.pkg` (a xar archive) needs them named by the admin. Invalid, naming the problem, otherwise."""
    lower = filename.lower()
    if lower.endswith(".ipa"):
        facts = _read_ipa(path)
        if bundle_id is not None and bundle_id != facts.bundle_id:
            raise Invalid(
                f"bundle_id {bundle_id!r} differs from the .ipa's CFBundleIdentifier {facts.bundle_id!r}"
            )
        return facts
    if lower.endswith(".pkg"):
        with path.open("rb") as f:
            if f.read(4) != XAR_MAGIC:
                raise Invalid(f"{filename!r} is not a flat installer package (.pkg, a xar archive)")
        if bundle_id is None or version is None:
            raise Invalid("a .pkg needs bundle_id and version: Russet does not read them from the package")
        return PackageFacts("pkg", check_bundle_id(bundle_id), _check_version(version), None)
    raise Invalid(f"{filename!r}: upload an .ipa or a .pkg (or a manifest)")


def _check_version(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 100 or not value.isprintable():
        raise Invalid("version: 1 to 100 printable characters")
    return value


def _read_ipa(path: Path) -> PackageFacts:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise Invalid(f"the .ipa has more than {MAX_ZIP_MEMBERS} files")
            infos = [m for m in members if _INFO.match(m.filename)]
            if len(infos) != 1:
                raise Invalid(
                    "the .ipa has no Payload/NAME.app/Info.plist (or several): not an iOS app archive"
                )
            if infos[0].file_size > MAX_INFO_PLIST_BYTES:
                raise Invalid("the .ipa's Info.plist is larger than 1 MiB")
            with archive.open(infos[0]) as f:
                raw = f.read(MAX_INFO_PLIST_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise Invalid(f"the .ipa is not a readable zip archive: {exc}") from None
    if len(raw) > MAX_INFO_PLIST_BYTES:
        raise Invalid("the .ipa's Info.plist is larger than 1 MiB")
    try:
        info = plists.loads(raw, _LIMITS)
    except plists.PlistRejected as exc:
        raise Invalid(f"the .ipa's Info.plist: {exc}") from None
    if not isinstance(info, dict):
        raise Invalid("the .ipa's Info.plist is not a dictionary")
    bundle = check_bundle_id(info.get("CFBundleIdentifier"), "the .ipa's CFBundleIdentifier")
    version = _text(info.get("CFBundleShortVersionString"), 100) or _text(info.get("CFBundleVersion"), 100)
    title = _text(info.get("CFBundleDisplayName"), 255) or _text(info.get("CFBundleName"), 255)
    return PackageFacts("ipa", bundle, version, title)


def read_manifest(data: bytes) -> tuple[bytes, PackageFacts]:
    """An uploaded app manifest (Apple's `items` → `assets` + `metadata` plist): its canonical XML
    and what it installs. Its package URLs are the admin's (https); Russet hosts only the manifest."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise Invalid(f"the manifest is larger than {MAX_MANIFEST_BYTES // 1024} KiB")
    try:
        value = plists.loads(data, _LIMITS)
    except plists.PlistRejected as exc:
        raise Invalid(f"the manifest is not a property list: {exc}") from None
    items = value.get("items") if isinstance(value, dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise Invalid("the manifest has no 'items' array of dictionaries")
    first = items[0]
    assets = first.get("assets")
    metadata = first.get("metadata")
    if not isinstance(assets, list) or not isinstance(metadata, dict):
        raise Invalid("the manifest's first item needs 'assets' (array) and 'metadata' (dictionary)")
    urls = [
        a.get("url") for a in assets if isinstance(a, dict) and a.get("kind") in ("software-package", "pkg")
    ]
    if not urls or not all(isinstance(u, str) and u.startswith("https://") for u in urls):
        raise Invalid("the manifest's assets need a 'software-package' (or 'pkg') asset with an https url")
    bundle = check_bundle_id(metadata.get("bundle-identifier"), "the manifest's metadata bundle-identifier")
    facts = PackageFacts(
        "manifest", bundle, _text(metadata.get("bundle-version"), 100), _text(metadata.get("title"), 255)
    )
    return plistlib.dumps(value, sort_keys=True), facts


def hosted_manifest(
    package_url: str,
    kind: str,
    bundle_id: str,
    version: str | None,
    title: str | None,
    sha256: str,
    size: int,
) -> bytes:
    """The manifest of a package Russet hosts, pointing at its per-device download URL."""
    asset: dict[str, Any] = {"kind": "software-package", "url": package_url}
    if kind == "pkg":  # macOS checks the package against these
        asset.update({"sha256-size": size, "sha256s": [sha256]})
    metadata: dict[str, Any] = {
        "bundle-identifier": bundle_id,
        "kind": "software",
        "title": title or bundle_id,
    }
    if version:
        metadata["bundle-version"] = version
    return plistlib.dumps({"items": [{"assets": [asset], "metadata": metadata}]}, sort_keys=True)
