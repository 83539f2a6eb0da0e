"""Inventory queries: what the device is, how it is secured, what it trusts."""

from __future__ import annotations

from typing import Any

from russet.commands.base import Command, Param

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


class DeviceInformation(Command):
    """Ask for device attributes (`Queries`); the inventory is built from the `QueryResponses`.

    Query names are not restricted to Apple's 18.1 list: the device silently skips names it does
    not know, and newer OS releases keep adding some.
    """

    request_type = "DeviceInformation"
    params = {
        "Queries": Param("array", required=True, item=Param("string"), default=DEFAULT_QUERIES),
        "DeviceAttestationNonce": Param("data"),
    }

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


class SecurityInfo(Command):
    """Ask for the security state: passcode, FileVault, SIP, firewall, management status."""

    request_type = "SecurityInfo"


class CertificateList(Command):
    """List the certificates installed on the device (or only the MDM-installed ones)."""

    request_type = "CertificateList"
    params = {"ManagedOnly": Param("boolean")}


class Restrictions(Command):
    """Ask for the restrictions in force, globally and optionally per profile."""

    request_type = "Restrictions"
    params = {"ProfileRestrictions": Param("boolean")}
