"""Configuration profiles: an installed profile is a secret."""

from __future__ import annotations

from russet.commands import generated


class InstallProfile(generated.InstallProfile):
    """Install a .mobileconfig; `Payload` is its bytes, possibly CMS-signed or encrypted."""

    secret_keys = frozenset({"Payload"})  # profiles carry Wi-Fi and VPN passwords, PKCS#12 identities
