"""JSON from outside (Apple's answers and notifications, token files), read within bounds.

``json.loads`` alone is not safe on such input: deeply nested arrays raise ``RecursionError``
(not a ``ValueError``, so it slips past every ``except ValueError`` and becomes a 500), and
nesting just under the interpreter's limit parses but makes the next ``json.dumps`` of it (the
ledger records some fields as JSON) raise instead. Apple's JSON is a few levels deep, so
anything deeper than ``MAX_DEPTH`` is refused before it is parsed, as is an answer larger than
any Apple sends or a string holding a NUL. Every refusal is an ``UnreadableJson``, a
``ValueError``, which is what callers already catch for malformed JSON.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32  # Apple's answers nest 4 levels at most (a failure's errorInfo in a status answer)
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a 1000-device ABM page is under 1 MB

# A JSON string (its escapes included), removed before counting brackets: "[" inside text is text.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
# A NUL can reach a JSON string only as the escape \u0000 (raw control characters are invalid
# JSON); one preceded by an odd number of backslashes is text, not a NUL.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class UnreadableJson(ValueError):
    """The input is too large or too deeply nested to be read as JSON."""


def nesting_depth(content: bytes) -> int:
    """How deeply the arrays and objects of ``content`` nest (an overestimate for invalid JSON)."""
    brackets = _STRING.sub(b"", content).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(content: bytes | str, *, max_bytes: int = MAX_ANSWER_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises only ``ValueError`` (``UnreadableJson`` for the bounds)."""
    raw = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    if len(raw) > max_bytes:
        raise UnreadableJson(f"{len(raw)} bytes of JSON, more than the {max_bytes} accepted")
    if nesting_depth(raw) > max_depth:
        raise UnreadableJson(f"JSON nested more than {max_depth} levels deep")
    if _NUL_ESCAPE.search(raw):
        # No Apple answer has one, and PostgreSQL cannot store it in text where SQLite would:
        # refused here, the same input gets the same answer on both databases.
        raise UnreadableJson("a JSON string holds a NUL character (\\u0000)")
    try:
        return json.loads(content)
    except RecursionError:  # pragma: no cover - the depth check above comes first
        raise UnreadableJson("JSON nested too deeply") from None
