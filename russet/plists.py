"""Property lists from outside, parsed with limits on object count, nesting depth and expanded size.

`plistlib` trusts its input. A binary plist of a few hundred bytes whose objects reference each
other expands without limit once walked (each level of an array holding the next level twice
doubles it: 30 levels are over 100 GB), or refers to itself so that any walk never ends; an XML
plist can nest deeper than any recursive reader survives, or declare entities. So every plist of
outside input (device bodies, stored device results, signed MachineInfo) goes through `loads`,
which checks the document first and only then lets `plistlib` build Python values:

- binary: the trailer and offset table are checked by hand, then the object graph is walked from
  the top object with memoisation, counting a shared object every time it is referenced (that is
  what a reader expands), refusing cycles, too deep nesting and a too large expanded size before
  anything is built;
- XML: one pass of expat (C, fast) counts elements and nesting and refuses any DOCTYPE with an
  internal subset and any entity declaration, before they could be expanded. Without entities an
  XML plist cannot expand beyond its own size.
"""

from __future__ import annotations

import plistlib
import struct
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

BINARY_MAGIC = b"bplist00"


class PlistRejected(ValueError):
    """The bytes are not a property list Russet accepts; the message says why, for a 400."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one property list may hold.

    Objects and bytes are counted as expanded: an object referenced twice counts twice. The
    defaults sit far above anything a device sends (Apple's deepest answers nest about ten
    levels; a large InstalledApplicationList is tens of thousands of objects and a few MB) and
    far below what hurts the server: 64 levels keep every recursive reader (JSON, templates)
    clear of Python's recursion limit.
    """

    max_objects: int = 250_000
    max_depth: int = 64
    max_expanded_bytes: int = 32 * 1024 * 1024


DEFAULT_LIMITS = Limits()


def loads(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The value of the plist in `data`, or PlistRejected (never another exception)."""
    if data.startswith(BINARY_MAGIC):
        _check_binary(data, limits)
        fmt = plistlib.FMT_BINARY
    else:
        _check_xml(data, limits)
        fmt = plistlib.FMT_XML
    try:
        return plistlib.loads(data, fmt=fmt)
    except RecursionError:  # not reachable within the limits; kept so no input can end in a 500
        raise PlistRejected("nested too deeply") from None
    except Exception as exc:  # plistlib raises many types for garbage; all mean the same here
        raise PlistRejected(f"malformed ({type(exc).__name__})") from None


# -- binary ----------------------------------------------------------------------------------------

_TRAILER = struct.Struct(">6xBBQQQ")
# What one value costs at least once expanded: a reference to it and a small object header.
_SCALAR_BYTES = 16


def _check_binary(data: bytes, limits: Limits) -> None:
    if len(data) < len(BINARY_MAGIC) + _TRAILER.size:
        raise PlistRejected("binary plist shorter than its header and trailer")
    offset_size, ref_size, count, top, table_at = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    end = len(data) - _TRAILER.size
    if not (1 <= offset_size <= 8 and 1 <= ref_size <= 8):
        raise PlistRejected("binary plist trailer has impossible offset or reference sizes")
    if count > limits.max_objects:
        raise PlistRejected(f"binary plist has {count} objects, over the limit of {limits.max_objects}")
    if count == 0 or top >= count:
        raise PlistRejected("binary plist top object is not in its object table")
    if table_at < len(BINARY_MAGIC) or table_at + count * offset_size > end:
        raise PlistRejected("binary plist offset table lies outside the file")
    offsets = [
        int.from_bytes(data[table_at + i * offset_size : table_at + (i + 1) * offset_size], "big")
        for i in range(count)
    ]
    if any(not (len(BINARY_MAGIC) <= o < table_at) for o in offsets):
        raise PlistRejected("binary plist object offset lies outside the object area")
    _BinaryGraph(data, offsets, ref_size, table_at, limits).check(top)


class _BinaryGraph:
    """The object graph of a binary plist, sized as a reader would expand it."""

    def __init__(self, data: bytes, offsets: list[int], ref_size: int, end: int, limits: Limits) -> None:
        self.data = data
        self.offsets = offsets
        self.ref_size = ref_size
        self.end = end  # where the object area ends (the offset table starts)
        self.limits = limits
        self.sizes: dict[int, tuple[int, int]] = {}  # object -> (expanded bytes, expanded objects)
        self.open: set[int] = set()  # objects on the current path (a repeat is a cycle)

    def check(self, top: int) -> None:
        self.size(top, 1)

    def size(self, ref: int, depth: int) -> tuple[int, int]:
        """(bytes, objects) the object expands to; PlistRejected past a limit or on a cycle."""
        known = self.sizes.get(ref)
        if known is not None:
            return known
        if depth > self.limits.max_depth:
            raise PlistRejected(f"nested deeper than {self.limits.max_depth} levels")
        if ref in self.open:
            raise PlistRejected("binary plist object refers to itself (a cycle)")
        own, children = self.parse(ref)
        self.open.add(ref)
        total, objects = own, 1
        for child in children:
            child_bytes, child_objects = self.size(child, depth + 1)
            total += child_bytes
            objects += child_objects
            if total > self.limits.max_expanded_bytes:
                raise PlistRejected(
                    f"expands to over {self.limits.max_expanded_bytes} bytes (shared objects count each use)"
                )
            if objects > self.limits.max_objects:
                raise PlistRejected(
                    f"expands to over {self.limits.max_objects} objects (shared objects count each use)"
                )
        self.open.discard(ref)
        self.sizes[ref] = (total, objects)
        return total, objects

    def parse(self, ref: int) -> tuple[int, list[int]]:
        """(own expanded size, referenced objects) of one object; refs are checked to exist."""
        if ref >= len(self.offsets):
            raise PlistRejected("binary plist refers to an object it does not have")
        at = self.offsets[ref]
        marker = self.data[at]
        kind, info = marker >> 4, marker & 0x0F
        if kind == 0x0:
            if marker not in (0x00, 0x08, 0x09, 0x0F):
                raise PlistRejected(f"binary plist has an unknown object marker {marker:#04x}")
            return _SCALAR_BYTES, []
        if kind in (0x1, 0x2):  # int, real: 2**info bytes
            self.need(at + 1, 1 << info)
            return _SCALAR_BYTES + (1 << info), []
        if marker == 0x33:  # date
            self.need(at + 1, 8)
            return _SCALAR_BYTES * 2, []
        if kind == 0x8:  # UID
            self.need(at + 1, info + 1)
            return _SCALAR_BYTES * 2, []
        if kind in (0x4, 0x5, 0x6):  # data, ASCII string, UTF-16 string (length in code units)
            length, start = self.length(at, info)
            nbytes = length * 2 if kind == 0x6 else length
            self.need(start, nbytes)
            return _SCALAR_BYTES + nbytes, []
        if kind in (0xA, 0xC, 0xD):  # array, set, dict (keys then values)
            length, start = self.length(at, info)
            nrefs = length * 2 if kind == 0xD else length
            self.need(start, nrefs * self.ref_size)
            refs = [
                int.from_bytes(self.data[start + i * self.ref_size : start + (i + 1) * self.ref_size], "big")
                for i in range(nrefs)
            ]
            return _SCALAR_BYTES * (1 + nrefs), refs
        raise PlistRejected(f"binary plist has an unknown object marker {marker:#04x}")

    def length(self, at: int, info: int) -> tuple[int, int]:
        """The element count of the object at `at`, and where its content starts."""
        if info != 0x0F:
            return info, at + 1
        self.need(at + 1, 1)
        int_marker = self.data[at + 1]
        if int_marker >> 4 != 0x1 or (int_marker & 0x0F) > 3:
            raise PlistRejected("binary plist has a malformed object length")
        width = 1 << (int_marker & 0x0F)
        self.need(at + 2, width)
        return int.from_bytes(self.data[at + 2 : at + 2 + width], "big"), at + 2 + width

    def need(self, start: int, length: int) -> None:
        if start + length > self.end:
            raise PlistRejected("binary plist object runs past the object area")


# -- XML -------------------------------------------------------------------------------------------


class _XmlCheck:
    """Counts elements and nesting in one expat pass; refuses DTD subsets and entities."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.depth = 0
        self.elements = 0
        # <plist> wraps the value, and a leaf (<string>, <key>) sits one level below its container.
        self.max_elements_depth = limits.max_depth + 2

    def start(self, name: str, attrs: object) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth > self.max_elements_depth:
            raise PlistRejected(f"nested deeper than {self.limits.max_depth} levels")
        if self.elements > self.limits.max_objects:
            raise PlistRejected(f"has over {self.limits.max_objects} objects")

    def end(self, name: str) -> None:
        self.depth -= 1

    @staticmethod
    def doctype(name: str, system_id: str | None, public_id: str | None, has_internal_subset: int) -> None:
        if has_internal_subset:
            raise PlistRejected("a DOCTYPE with an internal subset (entity declarations) is not accepted")

    @staticmethod
    def entity(*_: object) -> None:
        raise PlistRejected("XML entities other than the predefined ones are not accepted")


def _check_xml(data: bytes, limits: Limits) -> None:
    check = _XmlCheck(limits)
    parser = expat.ParserCreate()
    parser.StartElementHandler = check.start
    parser.EndElementHandler = check.end
    parser.StartDoctypeDeclHandler = check.doctype
    parser.EntityDeclHandler = check.entity
    parser.UnparsedEntityDeclHandler = check.entity
    parser.SkippedEntityHandler = check.entity  # a reference to an entity nobody declared
    # Never read an external DTD or entity: answering "not handled" makes expat refuse them.
    parser.ExternalEntityRefHandler = lambda *_: 0
    try:
        parser.Parse(data, True)
    except PlistRejected:
        raise
    except Exception as exc:  # ExpatError, or a decoding error for an unknown encoding
        raise PlistRejected(f"malformed ({type(exc).__name__})") from None
