"""multipart/form-data read from a body already bounded by `russet.bodylimit`: the profile
upload of the API and the console's file forms share it (no python-multipart dependency)."""

from __future__ import annotations

import re

from russet.kernel.errors import Invalid

_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^\s;"]{1,200}))', re.IGNORECASE)
_PART_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)
MAX_PARTS = 100


def parts(body: bytes, content_type: str) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by their name (the first of each name)."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise Invalid("multipart/form-data without a boundary")
    delimiter = b"--" + (found.group(1) or found.group(2)).encode("latin-1")
    out: dict[str, bytes] = {}
    for count, chunk in enumerate(body.split(delimiter)[1:]):
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        if count >= MAX_PARTS:
            raise Invalid(f"a multipart form of more than {MAX_PARTS} parts")
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise Invalid("a multipart part has no blank line after its headers")
        name = _PART_NAME.search(head)
        if name is not None:
            out.setdefault(name.group(1).decode("utf-8", "replace"), content.removesuffix(b"\r\n"))
    return out
