"""Inventory queries: the default query list and the attestation rules of DeviceInformation."""

from __future__ import annotations

from typing import Any

from russet.commands import generated
from russet.commands.base import refine

#: What Russet asks for when no Queries are given: enough to fill the device list and tell
#: devices apart. Network queries (MACs, IMEI...) need access right 32; without it the device
#: silently leaves them out, as it does with queries its OS does not know.
DEFAULT_QUERIES: tuple[str, ...] = (
    "UDID",
    "SerialNumber",
    "DeviceName",
    "Model",
    "ModelName",
    "ModelNumber",
    "ProductName",
    "OSVersion",
    "BuildVersion",
    "SupplementalBuildVersion",
    "SupplementalOSVersionExtra",
    "IsSupervised",
    "IsAppleSilicon",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "BatteryLevel",
    "IsActivationLockEnabled",
    "IsDeviceLocatorServiceEnabled",
    "IsMDMLostModeEnabled",
    "IsMultiUser",  # a Shared iPad: what LogOutUser, UserList... need (russet.commands.targets)
    "AwaitingConfiguration",
    "HostName",
    "LocalHostName",
    "TimeZone",
    "WiFiMAC",
    "BluetoothMAC",
    "EthernetMAC",
    "IMEI",
    "MEID",
    "ICCID",
    "PhoneNumber",
)

_MAX_NONCE_BYTES = 32


class DeviceInformation(generated.DeviceInformation):
    """Ask for device attributes (`Queries`); the inventory is built from the `QueryResponses`.

    Query names are not restricted to the list in Apple's schema: the device silently skips names
    it does not know, and newer OS releases keep adding some.
    """

    params = refine(generated.DeviceInformation.params, "Queries", default=DEFAULT_QUERIES)

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        nonce = values.get("DeviceAttestationNonce")
        if nonce is None:
            return None
        if len(nonce) > _MAX_NONCE_BYTES:
            return f"DeviceAttestationNonce must be at most {_MAX_NONCE_BYTES} bytes, not {len(nonce)}"
        if "DevicePropertiesAttestation" not in values["Queries"]:
            return "DeviceAttestationNonce needs 'DevicePropertiesAttestation' in Queries"
        return None
