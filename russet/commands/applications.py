"""Apps: what the schema cannot say about installing one.

The keys of every app command come from Apple's schema (russet.commands.generated).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from russet.commands import generated
from russet.commands.base import Param


def _subkeys(param: Param) -> Mapping[str, Param]:
    assert param.subkeys is not None, "Apple's schema lists these keys"
    return param.subkeys


#: The `Attributes` of a managed app (InstallApplication, and the Settings item ApplicationAttributes).
APP_ATTRIBUTES: Mapping[str, Param] = _subkeys(generated.InstallApplication.params["Attributes"])

#: The fields InstalledApplicationList can be asked to return for each app.
APP_FIELDS: tuple[str, ...] = tuple(
    (generated.InstalledApplicationList.params["Items"].item or Param("string")).choices or ()
)

# The three ways InstallApplication can name the app to install.
_APP_SOURCES = ("iTunesStoreID", "Identifier", "ManifestURL")


class InstallApplication(generated.InstallApplication):
    """Install (or take over, or update) an App Store, VPP or in-house app.

    Exactly one of `iTunesStoreID`, `Identifier` or `ManifestURL` names the app; a device given two
    would have to guess which one wins.
    """

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        given = [key for key in _APP_SOURCES if key in values]
        if len(given) != 1:
            return f"exactly one of {', '.join(_APP_SOURCES)} is needed, not {len(given)}"
        if given == ["ManifestURL"] and not values["ManifestURL"].startswith("https:"):
            return "ManifestURL must begin with https:"
        return None
