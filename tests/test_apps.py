"""The app catalogue (`russet.apps`): download tokens, hosted manifests and packages, manifest
uploads, refusals (nothing kept), deletion refused while a blueprint names the app, and the CLI."""

from __future__ import annotations

import io
import plistlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from russet.apps.tokens import DownloadTokens
from russet.blueprints.service import BlueprintSpec
from russet.cli.main import cli
from russet.config import Settings
from russet.kernel.errors import Conflict, Invalid, Refused
from russet.runtime import Russet
from tests.test_apps_e2e import ipa

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def manifest(bundle: str = "com.example.hosted", url: str = "https://cdn.example.test/app.ipa") -> bytes:
    item = {
        "assets": [{"kind": "software-package", "url": url}],
        "metadata": {
            "bundle-identifier": bundle,
            "bundle-version": "3.0",
            "kind": "software",
            "title": "Hosted",
        },
    }
    return plistlib.dumps({"items": [item]})


def test_download_tokens_are_per_app_and_device_unforgeable_and_expire() -> None:
    tokens = DownloadTokens(b"k" * 32, timedelta(hours=1))
    token = tokens.make(7, "UDID-1", NOW)
    grant = tokens.check(token, NOW + timedelta(minutes=59))
    assert (grant.app_id, grant.device_id) == (7, "UDID-1")
    with pytest.raises(Refused, match="expired"):
        tokens.check(token, NOW + timedelta(hours=1))
    body, mac = token.split(".")
    other = DownloadTokens(b"o" * 32, timedelta(hours=1)).make(7, "UDID-1", NOW)
    for bad in (
        other,
        f"{body}.{mac[:-2]}AA",
        f"{tokens.make(7, 'UDID-2', NOW).split('.')[0]}.{mac}",
        "x",
        "a.b.c",
        "x" * 2000,
    ):
        with pytest.raises(Refused):
            tokens.check(bad, NOW)


def test_hosted_package_manifest_and_download(russet: Russet, client: TestClient) -> None:
    apps = russet.apps
    uploaded = ipa(version="2.0")
    made = apps.add_package("Demo", "Demo.IPA", io.BytesIO(uploaded), created_by="tests")
    assert (made["bundle_id"], made["version"], made["package_kind"]) == ("com.example.demo", "2.0", "ipa")
    command = apps.install_command("Demo", "UDID-9", {"A": 1})
    assert command["RequestType"] == "InstallApplication" and command["Configuration"] == {"A": 1}
    url = command["ManifestURL"]
    assert url.startswith(f"{russet.settings.public_url}/apps/download/") and url.endswith("/manifest.plist")
    token = url.split("/")[-2]
    served = plistlib.loads(apps.manifest(token))["items"][0]
    assert served["metadata"]["bundle-identifier"] == "com.example.demo"
    package = client.get(served["assets"][0]["url"].removeprefix(russet.settings.public_url))
    assert package.status_code == 200 and package.content == uploaded
    wrong_kind = served["assets"][0]["url"].removeprefix(russet.settings.public_url).replace(".ipa", ".pkg")
    assert client.get(wrong_kind).status_code == 404
    # Two tokens for two devices differ; each works.
    assert apps.install_command("Demo", "UDID-8", None)["ManifestURL"] != url


def test_manifest_upload_is_hosted_as_given(russet: Russet, client: TestClient) -> None:
    made = russet.apps.add_manifest("Hosted", manifest(), created_by="tests")
    assert (made["bundle_id"], made["version"], made["from_manifest"]) == ("com.example.hosted", "3.0", True)
    url = russet.apps.install_command("Hosted", "UDID-1", None)["ManifestURL"]
    served = client.get(url.removeprefix(russet.settings.public_url))
    assert served.status_code == 200
    assert (
        plistlib.loads(served.content)["items"][0]["assets"][0]["url"] == "https://cdn.example.test/app.ipa"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a plist", "not a property list"),
        (plistlib.dumps({"items": []}), "no 'items'"),
        (manifest(url="http://cdn.example.test/app.ipa"), "https url"),
        (manifest(bundle="bad id!"), "bundle-identifier"),
        (b"<plist>" + b" " * 300_000 + b"</plist>", "larger than"),
    ],
)
def test_bad_manifests_are_refused(russet: Russet, data: bytes, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        russet.apps.add_manifest("M", data, created_by="tests")
    assert russet.apps.list_apps() == []


def test_names_are_checked_and_taken_names_refused(russet: Russet) -> None:
    for name in ("123", " x", "installs", ""):
        with pytest.raises(Invalid):
            russet.apps.add_manifest(name, manifest(), created_by="tests")
    russet.apps.add_manifest("M", manifest(), created_by="tests")
    with pytest.raises(Conflict, match="already in the catalogue"):
        russet.apps.add_manifest("M", manifest(), created_by="tests")


def test_an_app_a_blueprint_names_is_not_deleted(russet: Russet) -> None:
    russet.apps.add_manifest("M", manifest(), created_by="tests")
    russet.blueprints.create(BlueprintSpec("Office", apps=("M",)), created_by="tests")
    with pytest.raises(Conflict, match="blueprint 'Office'"):
        russet.apps.delete("M")
    russet.blueprints.delete("Office")
    assert russet.apps.delete("M")["name"] == "M" and russet.apps.list_apps() == []


def test_cli_upload_list_show_delete(
    settings: Settings, migrated: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": settings.public_url,
    }.items():
        monkeypatch.setenv(name, value)
    package = tmp_path / "demo.ipa"
    package.write_bytes(ipa())

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args))

    uploaded = invoke("app", "upload", "Demo", str(package))
    assert uploaded.exit_code == 0, uploaded.output
    assert "com.example.demo" in uploaded.output
    listed = invoke("app", "list")
    assert "Demo" in listed.output and "enterprise" in listed.output
    assert "com.example.demo" in invoke("app", "show", "Demo").output
    bad = invoke("app", "add", "Pages", "--adam-id", "12", "--bundle-id", "com.apple.Pages")
    assert bad.exit_code != 0 and bad.output.startswith("Error:") and "Traceback" not in bad.output
    assert "deleted app 'Demo'" in invoke("app", "delete", "Demo").output
