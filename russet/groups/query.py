"""The smart-group query language: a small parser with bounds, and the fields it knows.

A query is conditions joined with `and`, `or`, `not` and parentheses:

    os_version >= "17.4" and model ~ "iPad" and supervised = true
    platform = "macOS" and not in_group("Lab")
    last_checkin > 30d or enrolled = false

A condition is `FIELD OP VALUE`, or `in_group("NAME")` (membership of another group, static or
smart). Operators: `=` `!=` (text compares ignoring case), `~` `!~` (text contains, ignoring
case), `<` `<=` `>` `>=` (OS versions, compared part by part so 17.10 > 17.9; and last check-in
ages). Values: "double-quoted text" (`\\"` and `\\\\` escape), `true`, `false`, `null` (the fact
is unknown), and ages `30m` `12h` `7d` for `last_checkin` (`last_checkin < 7d`: seen within the
last seven days). A version may be written unquoted (`os_version >= 17.4`). Keywords are lowercase.

The parser is our own, bounded so that a query cannot cost much to parse or evaluate: at most
MAX_QUERY_CHARS characters, MAX_CONDITIONS conditions, MAX_DEPTH levels of nesting; everything
refused raises `Invalid` naming the problem and where it is.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from russet.kernel.errors import Invalid

MAX_QUERY_CHARS = 2000
MAX_CONDITIONS = 64
MAX_DEPTH = 16
MAX_STRING_CHARS = 300

FieldType = Literal["text", "version", "bool", "age", "names"]

# Field -> its type. `names` holds several names (ABM accounts): `=` is true if any matches.
FIELDS: dict[str, FieldType] = {
    "udid": "text",
    "serial": "text",
    "model": "text",
    "model_name": "text",
    "product_name": "text",
    "device_name": "text",
    "os_version": "version",
    "platform": "text",
    "enrollment_type": "text",
    # How the identity was enrolled (the profile /mdm/enroll handed out), who signed in for it.
    "enrollment_method": "text",
    "enrolled_by": "text",
    "supervised": "bool",
    "user_channel": "bool",
    "enrolled": "bool",
    "abm_account": "names",
    "last_checkin": "age",
    # Reported through DDM status subscriptions (russet.declarative), unknown until then.
    "battery_health": "text",
    "passcode_compliant": "bool",
    "passcode_present": "bool",
    "update_state": "text",
    "pending_version": "version",
}

# Fields whose values are a closed set: a typo is refused rather than matching nothing.
CHOICES: dict[str, tuple[str, ...]] = {
    "platform": ("iOS", "iPadOS", "macOS", "tvOS", "watchOS", "visionOS"),
    "enrollment_type": ("ade", "ota", "user"),
    "enrollment_method": ("ota", "ade", "ade_signin", "account"),
    # Apple's rangelists (declarative/status/device.power.battery-health, softwareupdate.install-state)
    "battery_health": ("non-genuine", "normal", "service-recommended", "unknown", "unsupported"),
    "update_state": ("none", "downloading", "prepared", "installing", "failed"),
}

OPERATORS: dict[FieldType, tuple[str, ...]] = {
    "text": ("=", "!=", "~", "!~"),
    "names": ("=", "!=", "~", "!~"),
    "version": ("=", "!=", "<", "<=", ">", ">=", "~", "!~"),
    "bool": ("=", "!="),
    "age": ("<", "<=", ">", ">="),
}

AGE_UNITS = {"m": 60, "h": 3600, "d": 86400}
MAX_AGE = timedelta(days=3650)
VERSION = re.compile(r"\d{1,6}(\.\d{1,6}){0,3}")


# -- the syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str | bool | timedelta | tuple[int, ...] | None  # version values are parsed tuples
    text: str | None = None  # the value as written (for versions with `~`)


@dataclass(frozen=True)
class InGroup:
    name: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Condition | InGroup | Not | And | Or


@functools.lru_cache(maxsize=4096)  # a fleet runs few OS versions; evaluation asks for each device
def version_key(text: str) -> tuple[int, ...] | None:
    """`17.4.1` as (17, 4, 1); None for anything that is not a dotted version (then no order)."""
    text = text.strip()
    if not VERSION.fullmatch(text):
        return None
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 17.0 == 17 == 17.0.0
        parts.pop()
    return tuple(parts)


def group_refs(node: Node) -> set[str]:
    """The names of the groups a query uses through in_group."""
    if isinstance(node, InGroup):
        return {node.name}
    if isinstance(node, Not):
        return group_refs(node.operand)
    if isinstance(node, And | Or):
        return set().union(*(group_refs(o) for o in node.operands))
    return set()


def uses_time(node: Node) -> bool:
    """Whether the answer moves with the clock (last_checkin), so it needs periodic re-evaluation."""
    if isinstance(node, Condition):
        return node.field == "last_checkin"
    if isinstance(node, Not):
        return uses_time(node.operand)
    if isinstance(node, And | Or):
        return any(uses_time(o) for o in node.operands)
    return False


# -- tokens -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>")
  | (?P<op>!=|<=|>=|!~|=|<|>|~)
  | (?P<paren>[(),])
  | (?P<age>\d+[mhd](?![A-Za-z0-9_]))
  | (?P<number>\d+(\.\d+)*(?![A-Za-z0-9_]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | op | paren | age | number | word | end
    text: str
    at: int  # 1-based character position, for messages


def _string(query: str, start: int) -> tuple[str, int]:
    """The double-quoted string opening at `start`; returns its value and the index after it."""
    out: list[str] = []
    i = start + 1
    while i < len(query):
        ch = query[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(query) or query[i + 1] not in '"\\':
                raise Invalid(f'query: at character {i + 1}: only \\" and \\\\ may be escaped')
            ch = query[i + 1]
            i += 1
        out.append(ch)
        if len(out) > MAX_STRING_CHARS:
            raise Invalid(f"query: the text at character {start + 1} is over {MAX_STRING_CHARS} characters")
        i += 1
    raise Invalid(f'query: the text opened at character {start + 1} is not closed with "')


def tokenize(query: str) -> list[Token]:
    if len(query) > MAX_QUERY_CHARS:
        raise Invalid(f"query: longer than {MAX_QUERY_CHARS} characters")
    if "\x00" in query:
        raise Invalid("query: NUL characters are not allowed")
    tokens: list[Token] = []
    i = 0
    while i < len(query):
        m = _TOKEN.match(query, i)
        if m is None:
            raise Invalid(f"query: unexpected {query[i]!r} at character {i + 1}")
        kind = m.lastgroup or ""
        if kind == "string":
            value, end = _string(query, i)
            tokens.append(Token("string", value, i + 1))
            i = end
            continue
        if kind != "space":
            tokens.append(Token(kind, m.group(), i + 1))
        i = m.end()
    tokens.append(Token("end", "", len(query) + 1))
    return tokens


# -- the parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.conditions = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, kind: str, text: str, what: str) -> Token:
        token = self.take()
        if token.kind != kind or token.text != text:
            raise Invalid(f"query: expected {what} at character {token.at}, found {_shown(token)}")
        return token

    def parse(self) -> Node:
        node = self.or_expr(0)
        token = self.peek()
        if token.kind != "end":
            raise Invalid(
                f"query: expected and, or or the end at character {token.at}, found {_shown(token)}"
            )
        return node

    def _deeper(self, depth: int, token: Token) -> int:
        if depth + 1 > MAX_DEPTH:
            raise Invalid(f"query: nested more than {MAX_DEPTH} levels deep (at character {token.at})")
        return depth + 1

    def or_expr(self, depth: int) -> Node:
        operands = [self.and_expr(depth)]
        while self.peek() == Token("word", "or", self.peek().at):
            self.take()
            operands.append(self.and_expr(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self, depth: int) -> Node:
        operands = [self.not_expr(depth)]
        while self.peek() == Token("word", "and", self.peek().at):
            self.take()
            operands.append(self.not_expr(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self, depth: int) -> Node:
        token = self.peek()
        if token.kind == "word" and token.text == "not":
            self.take()
            return Not(self.not_expr(self._deeper(depth, token)))
        return self.atom(depth)

    def atom(self, depth: int) -> Node:
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            node = self.or_expr(self._deeper(depth, token))
            self.expect("paren", ")", "')'")
            return node
        if token.kind != "word" or token.text in ("and", "or", "not", "true", "false", "null"):
            raise Invalid(f"query: expected a condition at character {token.at}, found {_shown(token)}")
        self._count(token)
        if token.text == "in_group":
            self.expect("paren", "(", "'(' after in_group")
            name = self.take()
            if name.kind != "string" or not name.text:
                raise Invalid(f'query: in_group wants a group name in "double quotes" (character {name.at})')
            self.expect("paren", ")", "')'")
            return InGroup(name.text)
        return self.condition(token)

    def _count(self, token: Token) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise Invalid(f"query: more than {MAX_CONDITIONS} conditions (at character {token.at})")

    def condition(self, name: Token) -> Condition:
        field = name.text
        ftype = FIELDS.get(field)
        if ftype is None:
            raise Invalid(
                f"query: unknown field {field!r} at character {name.at}; valid fields: "
                + ", ".join(sorted(FIELDS))
                + ', and in_group("NAME")'
            )
        op = self.take()
        if op.kind != "op":
            raise Invalid(
                f"query: expected an operator after {field} at character {op.at}, found {_shown(op)}"
            )
        if op.text not in OPERATORS[ftype]:
            raise Invalid(
                f"query: {field} does not take {op.text} (character {op.at}); it takes "
                + " ".join(OPERATORS[ftype])
            )
        value = self.take()
        return _condition(field, ftype, op.text, value)


def _condition(field: str, ftype: FieldType, op: str, token: Token) -> Condition:
    where = f"(character {token.at})"
    if token.kind == "word" and token.text == "null":
        if op not in ("=", "!="):
            raise Invalid(f"query: {field} {op} null makes no sense {where}; use = null or != null")
        return Condition(field, op, None)
    if ftype == "bool":
        if token.kind != "word" or token.text not in ("true", "false"):
            raise Invalid(f"query: {field} is true or false, not {_shown(token)} {where}")
        return Condition(field, op, token.text == "true")
    if ftype == "age":
        if token.kind != "age":
            raise Invalid(
                f"query: {field} compares with an age such as 30m, 12h or 7d, not {_shown(token)} {where}"
            )
        age = timedelta(seconds=int(token.text[:-1]) * AGE_UNITS[token.text[-1]])
        if age > MAX_AGE:
            raise Invalid(f"query: {token.text} is longer than {MAX_AGE.days}d {where}")
        return Condition(field, op, age)
    if token.kind == "number" and ftype == "version":
        token = Token("string", token.text, token.at)  # os_version >= 17.4 reads as "17.4"
    if token.kind != "string":
        raise Invalid(f'query: {field} compares with text in "double quotes", not {_shown(token)} {where}')
    text = token.text
    if ftype == "version" and op not in ("~", "!~"):
        key = version_key(text)
        if key is None:
            raise Invalid(
                f'query: {field} {op} wants a version such as "17.4" or "14.6.1", not {text!r} {where}'
            )
        return Condition(field, op, key, text)
    choices = CHOICES.get(field)
    if choices is not None and op in ("=", "!="):
        match = [c for c in choices if c.casefold() == text.casefold()]
        if not match:
            raise Invalid(f"query: {field} is one of {', '.join(choices)}, not {text!r} {where}")
        text = match[0]
    return Condition(field, op, text.casefold(), text)


def _shown(token: Token) -> str:
    if token.kind == "end":
        return "the end of the query"
    if token.kind == "string":
        return f'"{token.text[:40]}"'
    return repr(token.text[:40])


def parse(query: str) -> Node:
    """The syntax tree of `query`; raises Invalid naming what is wrong and where."""
    if not query.strip():
        raise Invalid("query: empty")
    return _Parser(tokenize(query)).parse()
