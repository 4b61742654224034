"""The syntax of ledger expressions (see ``ledger.expressions``): a hand-written
tokenizer and a recursive-descent parser into a tree of frozen dataclasses.

Every refusal is an InvalidInputError naming the 1-based column. Nesting (parentheses,
lists, calls, ``not``) is capped, so no input can exhaust Python's stack; chains of
``and`` / ``or`` and dotted paths are flat nodes, however long.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInputError

MAX_LENGTH = 4096
MAX_DEPTH = 64
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})


# --- tokens -----------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_INTEGER = re.compile(r"\d+")
_ESCAPES = {"n": "\n", "t": "\t"}


@dataclass(frozen=True)
class Token:
    kind: str  # "name" | "number" | "string" | "op" | "end"
    text: str
    value: Any
    column: int  # 1-based


def _refuse(column: int, what: str) -> InvalidInputError:
    return InvalidInputError(f"bad expression at column {column}: {what}")


def _string(text: str, start: int) -> tuple[str, int]:
    """The quoted string opening at ``start`` and the index after it."""
    quote, i = text[start], start + 1
    chars: list[str] = []
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(chars), i + 1
        if char == "\\" and i + 1 < len(text):
            i += 1
            char = _ESCAPES.get(text[i], text[i])
        chars.append(char)
        i += 1
    raise _refuse(start + 1, f"unterminated string (no closing {quote})")


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token; InvalidInputError on a
    character outside the grammar or an unterminated string."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char, column = text[i], i + 1
        after_dot = bool(tokens) and tokens[-1].text == "." and tokens[-1].kind == "op"
        if char.isspace():
            i += 1
        elif char in "'\"":
            string, i = _string(text, i)
            tokens.append(Token("string", text[column - 1 : i], string, column))
        elif after_dot and (integer := _INTEGER.match(text, i)):
            i = integer.end()  # a list index: ``a.0.b`` is not the float 0.
            tokens.append(Token("name", integer.group(), integer.group(), column))
        elif (char.isdigit() or char == "-") and (number := _NUMBER.match(text, i)):
            i, word = number.end(), number.group()
            value = float(word) if number.group(1) or number.group(2) else int(word)
            tokens.append(Token("number", word, value, column))
        elif name := _NAME.match(text, i):
            i = name.end()
            tokens.append(Token("name", name.group(), name.group(), column))
        elif text.startswith(("==", "!=", "<=", ">="), i):
            tokens.append(Token("op", text[i : i + 2], None, column))
            i += 2
        elif char in "<>()[],.":
            tokens.append(Token("op", char, None, column))
            i += 1
        else:
            raise _refuse(column, f"unexpected character {char!r}")
    tokens.append(Token("end", "", None, len(text) + 1))
    return tokens


# --- the tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class ListOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Field:
    """A dotted path looked up in the context."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Access:
    """A dotted path looked up in a computed value (a call's result, a list...)."""

    base: Node
    path: tuple[str, ...]


@dataclass(frozen=True)
class Compare:
    op: str  # one of COMPARISONS, "in" or "not in"
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


Node = Literal | ListOf | Field | Call | Access | Compare | Not | Logical


# --- the parser -------------------------------------------------------------------


class _Parser:
    """Recursive descent, lowest precedence first: or < and < not < comparison < primary."""

    def __init__(self, tokens: list[Token], functions: Collection[str]) -> None:
        self.tokens, self.functions = tokens, functions
        self.at, self.depth = 0, 0

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def _peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def _next(self) -> Token:
        token = self.token
        self.at += 1
        return token

    def _is(self, text: str, token: Token | None = None) -> bool:
        token = token or self.token
        return token.kind in ("op", "name") and token.text == text

    def _expect(self, text: str) -> Token:
        if not self._is(text):
            raise _refuse(self.token.column, f"expected {text!r}, found {self._found()}")
        return self._next()

    def _found(self) -> str:
        return "the end" if self.token.kind == "end" else repr(self.token.text)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _refuse(self.token.column, f"nested deeper than {MAX_DEPTH} levels")

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise _refuse(1, "empty expression")
        node = self._or()
        if self.token.kind != "end":
            raise _refuse(self.token.column, f"unexpected {self._found()} after the expression")
        return node

    def _or(self) -> Node:
        return self._logical("or", self._and)

    def _and(self) -> Node:
        return self._logical("and", self._not)

    def _logical(self, op: str, operand: Callable[[], Node]) -> Node:
        operands = [operand()]
        while self._is(op):
            self._next()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else Logical(op, tuple(operands))

    def _not(self) -> Node:
        if not (self._is("not") and not self._is("in", self._peek())):
            return self._comparison()
        self._next()
        self._enter()
        node = Not(self._not())
        self.depth -= 1
        return node

    def _comparison(self) -> Node:
        left = self._primary()
        op = self._comparison_op()
        if op is None:
            return left
        node = Compare(op, left, self._primary())
        if self._comparison_op(peek=True):
            raise _refuse(self.token.column, "comparisons cannot be chained: use and")
        return node

    def _comparison_op(self, peek: bool = False) -> str | None:
        token = self.token
        if token.kind == "op" and token.text in COMPARISONS:
            op, width = token.text, 1
        elif self._is("in"):
            op, width = "in", 1
        elif self._is("not") and self._is("in", self._peek()):
            op, width = "not in", 2
        else:
            return None
        if not peek:
            self.at += width
        return op

    def _primary(self) -> Node:
        token = self.token
        if token.kind in ("number", "string"):
            node: Node = Literal(self._next().value)
        elif self._is("("):
            node = self._nested(self._or, ")")
        elif self._is("["):
            node = self._nested(self._list_items, "]")
        elif token.kind == "name" and token.text in CONSTANTS:
            node = Literal(CONSTANTS[self._next().text])
        elif token.kind == "name" and token.text not in KEYWORDS:
            node = self._name()
        else:
            raise _refuse(token.column, f"expected a value, found {self._found()}")
        if self._is("."):
            node = Access(node, self._path())
        if self._is("("):
            what = "only a function's name can be called"
            raise _refuse(self.token.column, f"{what}; {self._calls_allowed()}")
        return node

    def _nested(self, inner: Callable[[], Node], closing: str) -> Node:
        self._next()
        self._enter()
        node = inner()
        self._expect(closing)
        self.depth -= 1
        return node

    def _name(self) -> Node:
        token = self._next()
        self._check_segment(token)
        if not self._is("("):
            return Field((token.text, *self._path()))
        if token.text not in self.functions:
            raise _refuse(token.column, f"{token.text}() is unknown; {self._calls_allowed()}")
        self._next()
        self._enter()
        args: list[Node] = []
        while not self._is(")"):
            args.append(self._or())
            self._separator(")")
        self._next()
        self.depth -= 1
        return Call(token.text, tuple(args))

    def _path(self) -> tuple[str, ...]:
        """``.segment`` repeated, as a tuple (a flat node, however long the path)."""
        segments: list[str] = []
        while self._is("."):
            self._next()
            if self.token.kind != "name":
                raise _refuse(self.token.column, f"expected a field name, found {self._found()}")
            self._check_segment(self.token)
            segments.append(self._next().text)
        return tuple(segments)

    def _list_items(self) -> Node:
        items: list[Node] = []
        while not self._is("]"):
            items.append(self._bare_word() or self._or())
            self._separator("]")
        return ListOf(tuple(items))

    def _separator(self, closing: str) -> None:
        if self._is(","):
            self._next()
        elif not self._is(closing):
            found = self._found()
            raise _refuse(self.token.column, f"expected ',' or {closing!r}, found {found}")

    def _bare_word(self) -> Node | None:
        """A list item that is only a (dotted) word is a string: ``[candidate, staging]``."""
        start = self.at
        words: list[str] = []
        while self.token.kind == "name" and self.token.text not in KEYWORDS:
            self._check_segment(self.token)
            words.append(self._next().text)
            if not self._is(".") or self._peek().kind != "name":
                break
            self._next()
        if words and (self._is(",") or self._is("]")):
            return Literal(".".join(words))
        self.at = start
        return None

    def _check_segment(self, token: Token) -> None:
        if token.text.startswith("_"):
            raise _refuse(token.column, f"names starting with '_' are not allowed ({token.text})")

    def _calls_allowed(self) -> str:
        if not self.functions:
            return "calls are not allowed here"
        return "calls are limited to " + ", ".join(f"{name}()" for name in self.functions)


def parse(text: str, functions: Collection[str]) -> Node:
    """The tree of ``text``; InvalidInputError naming the column of anything outside the
    grammar, including calls to functions other than ``functions``."""
    if len(text) > MAX_LENGTH:
        raise _refuse(MAX_LENGTH + 1, f"longer than {MAX_LENGTH} characters")
    return _Parser(tokenize(text), tuple(functions)).parse()
