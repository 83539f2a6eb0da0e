"""Configuration profiles: list, install, remove."""

from __future__ import annotations

from russet.commands.base import Command, Param


class ProfileList(Command):
    """List installed configuration profiles (or only those installed by MDM)."""

    request_type = "ProfileList"
    params = {"ManagedOnly": Param("boolean")}


class InstallProfile(Command):
    """Install a .mobileconfig; `Payload` is its bytes, possibly CMS-signed or encrypted."""

    request_type = "InstallProfile"
    params = {"Payload": Param("data", required=True)}
    secret_keys = frozenset({"Payload"})  # profiles carry Wi-Fi and VPN passwords, PKCS#12 identities


class RemoveProfile(Command):
    """Remove the profile whose top-level PayloadIdentifier is `Identifier`."""

    request_type = "RemoveProfile"
    params = {"Identifier": Param("string", required=True)}
