"""What the apps feature needs from others, as Protocols the composition root wires.

Licences belong to Apps and Books (`russet.vpp`): the catalogue asks it about an asset, asks it to
assign or take back one device licence, and reads the licence's state, never its tables. Devices
are found through the MDM core. Who uses an app (blueprints) is asked before deleting one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Asset:
    """An Apps and Books asset as the catalogue needs it."""

    location: str
    adam_id: str
    pricing: str  # STDQ | PLUS
    product_type: str | None  # App | Book
    available: int  # licences not assigned
    device_assignable: bool


@dataclass(frozen=True, slots=True)
class Licence:
    status: str  # associating | assigned | failed | disassociating | revoking
    error: str | None = None


class AppsAndBooks(Protocol):
    def asset(self, adam_id: str, *, location: str | None, pricing: str | None) -> Asset:
        """The asset in the connected locations; NotFound when none holds it, Invalid when it is
        ambiguous (several locations or qualities)."""
        ...

    def licence(self, asset: Asset, serial: str) -> Licence | None:
        """The device licence of `serial` for the asset, None when it has none."""
        ...

    def device_licences(self, asset: Asset, serials: list[str]) -> set[str]:
        """Those of `serials` that hold (or are getting) a device licence of the asset."""
        ...

    async def assign(self, asset: Asset, serial: str) -> None:
        """Ask Apple to associate a device licence (raises a kind of russet.kernel.errors)."""
        ...

    async def unassign(self, asset: Asset, serial: str) -> None:
        """Ask Apple to disassociate the device's licence."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceRef:
    id: str
    serial_number: str | None


class DeviceLookup(Protocol):
    def find_device(self, device: str) -> DeviceRef | None:
        """The device (or the device behind a user channel) by enrollment id; None if unknown."""
        ...


class AppUsers(Protocol):
    def uses_of_app(self, name: str) -> list[str]:
        """Who uses the app, in words ("blueprint 'Office'"); an app in use is not deleted."""
        ...
