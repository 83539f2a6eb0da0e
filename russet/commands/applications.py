"""Apps: inventory, install, remove."""

from __future__ import annotations

from typing import Any

from russet.commands.base import Command, Param

#: The `Attributes` of a managed app, shared by InstallApplication and the Settings item
#: ApplicationAttributes.
APP_ATTRIBUTES: dict[str, Param] = {
    "VPNUUID": Param("string"),
    "ContentFilterUUID": Param("string"),
    "DNSProxyUUID": Param("string"),
    "RelayUUID": Param("string"),
    "AssociatedDomains": Param("array", item=Param("string")),
    "AssociatedDomainsEnableDirectDownloads": Param("boolean"),
    "Removable": Param("boolean"),
    "TapToPayScreenLock": Param("boolean"),
    "CellularSliceUUID": Param("string"),
    "Hideable": Param("boolean"),
    "Lockable": Param("boolean"),
}

#: The fields InstalledApplicationList can be asked to return for each app.
APP_FIELDS: tuple[str, ...] = (
    "AdHocCodeSigned",
    "AppStoreVendable",
    "BetaApp",
    "BundleSize",
    "DeviceBasedVPP",
    "DistributorIdentifier",
    "DynamicSize",
    "ExternalVersionIdentifier",
    "HasUpdateAvailable",
    "Identifier",
    "Installing",
    "IsAppClip",
    "IsValidated",
    "Name",
    "ShortVersion",
    "Version",
)

# The three ways InstallApplication can name the app to install.
_APP_SOURCES = ("iTunesStoreID", "Identifier", "ManifestURL")


class InstalledApplicationList(Command):
    """List installed apps, optionally only some bundle IDs, only managed ones, or only some fields."""

    request_type = "InstalledApplicationList"
    params = {
        "Identifiers": Param("array", item=Param("string")),
        "ManagedAppsOnly": Param("boolean"),
        "Items": Param("array", item=Param("string", choices=APP_FIELDS)),
    }


class ManagedApplicationList(Command):
    """Ask for the management status of managed apps (optionally only some bundle IDs)."""

    request_type = "ManagedApplicationList"
    params = {"Identifiers": Param("array", item=Param("string"))}


class InstallApplication(Command):
    """Install (or take over, or update) an App Store, VPP or in-house app.

    Exactly one of `iTunesStoreID`, `Identifier` or `ManifestURL` names the app; a device given two
    would have to guess which one wins.
    """

    request_type = "InstallApplication"
    params = {
        "iTunesStoreID": Param("integer"),
        "Identifier": Param("string"),
        "ManifestURL": Param("string"),
        "Options": Param("dictionary", subkeys={"PurchaseMethod": Param("integer", choices=(0, 1))}),
        "ManagementFlags": Param("integer", choices=(1, 4, 5)),
        "Configuration": Param("dictionary"),
        "Attributes": Param("dictionary", subkeys=APP_ATTRIBUTES),
        "ChangeManagementState": Param("string", choices=("Managed",)),
        "InstallAsManaged": Param("boolean"),
        "iOSApp": Param("boolean"),
    }

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        given = [key for key in _APP_SOURCES if key in values]
        if len(given) != 1:
            return f"exactly one of {', '.join(_APP_SOURCES)} is needed, not {len(given)}"
        if given == ["ManifestURL"] and not values["ManifestURL"].startswith("https:"):
            return "ManifestURL must begin with https:"
        return None


class RemoveApplication(Command):
    """Remove a managed app by bundle ID."""

    request_type = "RemoveApplication"
    params = {"Identifier": Param("string", required=True)}
