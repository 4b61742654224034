"""MLflow's search filter and order_by, parsed (a tokenizer and a small recursive parser,
no eval) into the registry search's conditions and orders.

The filter is comparisons joined by ``AND``::

    name = 'iris'    name LIKE 'ir%'    name ILIKE '%IS'    name != 'x'
    name IN ('a', 'b')    run_id = '...'    run_id IN ('...')    source_path = '...'
    version_number >= 3    tag.stage = 'prod'    tags.`mlflow.prompt.is_prompt` != 'true'

(models: ``name`` and tags; versions: also ``run_id``, ``source_path`` and
``version_number``). Strings are quoted with ``'`` or ``"`` (a doubled quote inside is
one); tag keys with dots or spaces with backticks or double quotes. Anything else is an
MlflowError(INVALID_PARAMETER_VALUE) saying what is not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.api.mlflow.fields import invalid
from projections.registry_filters import Condition, Order

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<quoted>`[^`]*`)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<number>-?\d+)(?![\w.])
    | (?P<word>[A-Za-z_][\w.\-]*)
    )""",
    re.VERBOSE,
)
_ATTRIBUTE_PREFIXES = ("attribute.", "attributes.")
_TAG_PREFIXES = ("tag.", "tags.")
# Each entity's searchable attributes, as MLflow names them -> the registry's field.
MODEL_ATTRIBUTES = {"name": "name"}
VERSION_ATTRIBUTES = {
    "name": "name", "run_id": "run_id", "source_path": "source", "version_number": "version",
}  # fmt: skip
_TIMES = {"creation_timestamp": "created", "last_updated_timestamp": "updated"}
MODEL_ORDER_KEYS = {"name": "name", "timestamp": "updated", **_TIMES}
VERSION_ORDER_KEYS = {"name": "name", "version_number": "version", **_TIMES}
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Token:
    kind: str  # string, quoted, op, punct, number, word
    text: str


def tokenize(text: str) -> list[Token]:
    """The filter's tokens; INVALID_PARAMETER_VALUE at the first character that starts none."""
    tokens, position, text = [], 0, text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            rest = text[position:].strip()
            raise invalid(f"invalid filter: cannot read {rest[:40]!r} (at character {position})")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_filter(text: str, attributes: dict[str, str]) -> tuple[Condition, ...]:
    """The conditions of ``text`` ("" for none), over ``attributes`` and tags."""
    tokens = tokenize(text)
    conditions: list[Condition] = []
    position = 0
    while position < len(tokens):
        condition, position = _comparison(tokens, position, attributes)
        conditions.append(condition)
        if position < len(tokens):
            word = tokens[position]
            if word.kind != "word" or word.text.upper() != "AND":
                what = "OR is" if word.text.upper() == "OR" else f"{word.text!r} is"
                raise invalid(f"invalid filter: {what} not supported; join comparisons with AND")
            position += 1
            if position == len(tokens):
                raise invalid("invalid filter: it ends with AND")
    return tuple(conditions)


def _take(tokens: list[Token], position: int, what: str) -> Token:
    if position >= len(tokens):
        raise invalid(f"invalid filter: it ends where {what} was expected")
    return tokens[position]


def _comparison(
    tokens: list[Token], position: int, attributes: dict[str, str]
) -> tuple[Condition, int]:
    field, key, position = _identifier(tokens, position, attributes)
    op, position = _operator(tokens, position)
    numeric = field == "version"
    allowed: tuple[str, ...]
    if numeric:
        allowed = _NUMBER_OPS
    else:
        allowed = _STRING_OPS if field in ("name", "run_id") else _STRING_OPS[:4]
    if op not in allowed:
        subject = f"tag {key!r}" if field == "tag" else _mlflow_name(field, attributes)
        raise invalid(f"invalid filter: {subject} does not support {op} (use {', '.join(allowed)})")
    if op in ("IN", "NOT IN"):
        values, position = _value_list(tokens, position)
        return Condition(field, op, values, key), position
    token = _take(tokens, position, "a value")
    if numeric:
        return Condition(field, op, _number(token), key), position + 1
    if token.kind != "string":
        raise invalid(f"invalid filter: expected a quoted string, got {token.text!r}")
    return Condition(field, op, _unquote(token.text), key), position + 1


def _identifier(
    tokens: list[Token], position: int, attributes: dict[str, str]
) -> tuple[str, str, int]:
    """(field, tag key, next position) of the identifier at ``position``."""
    token = _take(tokens, position, "a name to compare")
    text = token.text if token.kind == "word" else ""
    lowered = text.lower()
    for prefix in _TAG_PREFIXES:
        if lowered.startswith(prefix):
            key = text[len(prefix) :]
            if key:
                return "tag", key, position + 1
            quoted = _take(tokens, position + 1, "a tag key")
            if quoted.kind in ("quoted", "string") and len(quoted.text) > 2:
                return "tag", _unquote(quoted.text), position + 2
            raise invalid("invalid filter: a tag key follows 'tag.' (quote it with backticks)")
    for prefix in _ATTRIBUTE_PREFIXES:
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
    if token.kind == "quoted":
        lowered = _unquote(token.text).lower()
    if lowered in attributes:
        return attributes[lowered], "", position + 1
    supported = ", ".join([*attributes, "tag.<key>"])
    raise invalid(f"invalid filter: {token.text!r} is not supported here (use {supported})")


def _operator(tokens: list[Token], position: int) -> tuple[str, int]:
    token = _take(tokens, position, "a comparison operator")
    if token.kind == "op":
        return {"==": "=", "<>": "!="}.get(token.text, token.text), position + 1
    word = token.text.upper() if token.kind == "word" else ""
    if word in ("LIKE", "ILIKE", "IN"):
        return word, position + 1
    if word == "NOT" and position + 1 < len(tokens) and tokens[position + 1].text.upper() == "IN":
        return "NOT IN", position + 2
    raise invalid(f"invalid filter: {token.text!r} is not a supported comparison operator")


def _value_list(tokens: list[Token], position: int) -> tuple[tuple[str, ...], int]:
    if _take(tokens, position, "(").text != "(":
        raise invalid("invalid filter: IN takes a list of strings in parentheses: ('a', 'b')")
    values: list[str] = []
    position += 1
    while True:
        token = _take(tokens, position, "a quoted string")
        if token.kind != "string":
            raise invalid(f"invalid filter: IN lists hold quoted strings, got {token.text!r}")
        values.append(_unquote(token.text))
        separator = _take(tokens, position + 1, "',' or ')'")
        position += 2
        if separator.text == ")":
            return tuple(values), position
        if separator.text != ",":
            raise invalid(f"invalid filter: expected ',' or ')' in a list, got {separator.text!r}")


def _number(token: Token) -> int:
    text = _unquote(token.text) if token.kind == "string" else token.text
    if token.kind in ("number", "string") and re.fullmatch(r"-?\d{1,18}", text):
        return int(text)
    raise invalid(f"invalid filter: version_number takes a whole number, got {token.text!r}")


def _unquote(text: str) -> str:
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote) if quote in "'\"" else text[1:-1]


def _mlflow_name(field: str, attributes: dict[str, str]) -> str:
    return next(name for name, f in attributes.items() if f == field)


def parse_order_by(clauses: list[str], keys: dict[str, str]) -> tuple[Order, ...]:
    """``["name", "last_updated_timestamp DESC"]`` as orders over ``keys``."""
    orders = []
    for clause in clauses:
        parts = clause.split()
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        name = parts[0].strip("`").lower() if parts else ""
        for prefix in _ATTRIBUTE_PREFIXES:
            name = name.removeprefix(prefix)
        if len(parts) not in (1, 2) or direction not in ("ASC", "DESC") or name not in keys:
            raise invalid(
                f"invalid order_by {clause!r}: use one of {', '.join(keys)}, "
                "optionally followed by ASC or DESC"
            )
        orders.append(Order(keys[name], direction == "DESC"))
    fields = [o.field for o in orders]
    if len(set(fields)) != len(fields):
        raise invalid(f"order_by names a field twice: {clauses}")
    return tuple(orders)
