"""The Settings command: a batch of device settings, each item tagged by its `Item` name."""

from __future__ import annotations

from collections.abc import Mapping

from russet.commands import generated
from russet.commands.base import Param

_ITEM = generated.Settings.params["Settings"].item
assert _ITEM is not None and _ITEM.variants is not None, "Apple's schema lists the Settings items"

#: The keys of each Settings item besides `Item`, by `Item` name, as Apple's schema lists them.
#: The device answers each item separately, so one bad item does not hold back the others;
#: Russet still refuses an item whose `Item` or keys Apple does not define.
SETTINGS_ITEMS: Mapping[str, Mapping[str, Param]] = _ITEM.variants

Settings = generated.Settings
