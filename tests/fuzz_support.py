"""Hypothesis strategies shared by the fuzz tests (tests/test_fuzz_*.py) and bench/fuzz_parsers.py.

Random bytes rarely get past a parser's first check, so most strategies start from a valid input
(built with the simulators) and damage it the way a broken or hostile peer would: bit flips,
truncation, splices of another part of the input, inserted runs of junk; for JSON, values of the
wrong type, huge numbers, deep nesting, unicode and NUL in place of a field.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The default run stays fast: a modest number of examples each, and a deadline so a parser
# that goes quadratic on some input fails rather than slowing the suite down. The bench script
# raises max_examples (RUSSET_FUZZ_EXAMPLES does the same under pytest).
EXAMPLES = int(os.environ.get("RUSSET_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=2000,  # ms per example; the slowest target (an RSA decryption and a CertRep) takes ~20
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
    database=None,  # no .hypothesis directory in the worktree; failures print their example
)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` damaged by one to three mutations."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "delete", "byte"]))
        if not data:
            data = bytearray(draw(st.binary(max_size=64)))
            continue
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x30, 0x31, 0xA0, 0x04, 0x82, 0x84]))
        elif kind == "truncate":
            data = data[:at]
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        else:  # splice: a piece of the input copied elsewhere (nested structures, repeated fields)
            start = draw(st.integers(0, len(data) - 1))
            piece = data[start : start + draw(st.integers(1, 256))]
            data[at:at] = piece
    return bytes(data)


def damaged(seed: bytes) -> st.SearchStrategy[bytes]:
    """Mostly mutations of ``seed``, sometimes random bytes or the seed itself."""
    return st.one_of(mutated(seed), st.binary(max_size=512), st.just(seed))


# -- JSON -------------------------------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**64,
    10**400,
    -(10**400),
    1e308,
    float("inf"),
    float("nan"),
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "é" * 300,
    "x" * 5000,
    "🍏",
    "2026-13-45T99:99:99Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    [],
    [None],
    {},
    {"a": {"b": {"c": []}}},
    [[[[[[[[[[]]]]]]]]]],
]


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def hostile_value(draw: st.DrawFn) -> Any:
    return draw(
        st.one_of(
            st.sampled_from(HOSTILE_VALUES),
            st.integers(),
            st.text(max_size=40),
            st.builds(_nested, st.integers(30, 60)),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                lambda inner: (
                    st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
                ),
                max_leaves=8,
            ),
        )
    )


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _drop(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        if isinstance(value, dict):
            return {**value, head: _drop(value[head], rest)}
        copy = list(value)
        copy[head] = _drop(copy[head], rest)
        return copy
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != head}
    return [v for i, v in enumerate(value) if i != head]


@st.composite
def mutated_json_value(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` (decoded JSON) with one to three fields replaced, dropped or added."""
    value = seed
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if action == "drop" and path:
            value = _drop(value, path)
        elif action == "add":
            target = path
            node: Any = value
            for step in target:
                node = node[step]
            if isinstance(node, dict):
                key = draw(st.one_of(st.text(max_size=12), st.sampled_from(["", "\x00", "errorNumber"])))
                value = _replace(value, target, {**node, key: draw(hostile_value())})
            elif isinstance(node, list):
                value = _replace(value, target, [*node, draw(hostile_value())])
            else:
                value = _replace(value, path, draw(hostile_value()))
        else:
            value = _replace(value, path, draw(hostile_value()))
    return value


def encode(value: Any) -> bytes:
    """JSON as a careless peer writes it: NaN and Infinity allowed, lone surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


def json_answers(seed: Any) -> st.SearchStrategy[bytes]:
    """Bytes of a JSON answer: mutated structurally, or as bytes, or deeply nested, or random."""
    valid = encode(seed)
    return st.one_of(
        st.builds(encode, mutated_json_value(seed)),
        mutated(valid),
        st.integers(500, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(500, 50_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
        st.binary(max_size=256),
        st.just(valid),
    )
