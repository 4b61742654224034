"""Rule files: what a rule reacts to, when it acts, and what it does.

A rules file (YAML) is a list of rules::

    - name: evaluate-candidates
      on: ledger.model_version.registered          # a subject pattern (* and > wildcards)
      match: {model: iris-classifier, tags: {stage: candidate}}
      do: {run_pipeline: evaluate, params: {model: "${event.model}:${event.version}"}}
    - name: canary-if-better
      on: ledger.job.succeeded
      match: {pipeline: evaluate}
      when: "metrics.accuracy >= alias('iris-classifier', 'champion').metrics.accuracy"
      do: {deploy: {endpoint: shop, deployment: green, model: "${job.params.model}"},
           traffic: {blue: 90, green: 10}, require_approval: deployer}
      cooldown: PT5M                               # or a number of seconds

``match`` compares event fields (equality, a glob with * or ?, a list of choices, a
nested mapping); ``when`` is a ``ledger.expressions`` condition, compiled here so that a
bad one is refused with the rule's name and the column; ``${path}`` in actions is
filled from the event's context by ``render`` when the rule fires.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ledger.bus.events import check_pattern
from ledger.domain.monitor import parse_duration
from ledger.domain.token import Role
from ledger.errors import InvalidInputError
from ledger.expressions import Expression, compile_expression, lookup

RULE_FUNCTIONS = ("alias", "latest")
RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
MAX_TEXT = 1024 * 1024  # characters in a rules file
MAX_SPEC = 64 * 1024  # characters in one rule as stored (JSON)
MAX_DEPTH = 32  # lists and mappings within each other, the file's list included
_TOO_DEEP = f"the rules file nests lists and mappings too deeply (over {MAX_DEPTH} levels)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetAlias(_Strict):
    model: str
    alias: str
    version: int | str  # a number, or a ${placeholder} filled when the rule fires


class RemoveAlias(_Strict):
    model: str
    alias: str


class SetTag(_Strict):
    """A tag on a model version, or on the model itself when ``version`` is absent."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    model: str
    version: int | str | None = None
    key: str
    value: str


class RemoveTag(_Strict):
    model: str
    version: int | str | None = None
    key: str


class Deploy(_Strict):
    endpoint: str
    deployment: str
    model: str = Field(description="NAME:VERSION (or NAME@ALIAS), placeholders allowed")
    environment: str | None = None

    @field_validator("model")
    @classmethod
    def _model_ref(cls, model: str) -> str:
        if "${" not in model and (":" not in model and "@" not in model):
            raise ValueError(f"model {model!r}: give NAME:VERSION or NAME@ALIAS")
        return model


Weight = Annotated[int, Field(ge=0, le=100)]
ACTIONS = (
    "run_pipeline",
    "set_alias",
    "remove_alias",
    "set_tag",
    "remove_tag",
    "deploy",
    "traffic",
    "webhook",
)


class RuleActions(_Strict):
    """What a rule does (at least one action); ``require_approval`` holds them all for a
    person of that role."""

    run_pipeline: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    set_alias: SetAlias | None = None
    remove_alias: RemoveAlias | None = None
    set_tag: SetTag | None = None
    remove_tag: RemoveTag | None = None
    deploy: Deploy | None = None
    traffic: dict[str, Weight] | None = None
    webhook: str | None = Field(None, description="a webhook subscription's name")
    require_approval: Role | None = None

    @model_validator(mode="after")
    def _check(self) -> RuleActions:
        if not self.chosen():
            raise ValueError(f"no action: give at least one of {', '.join(ACTIONS)}")
        if self.params and not self.run_pipeline:
            raise ValueError("params are a pipeline's parameters: give run_pipeline too")
        return self

    def chosen(self) -> list[str]:
        """The names of the actions given, in the order they run."""
        return [name for name in ACTIONS if getattr(self, name) is not None]


class RuleSpec(_Strict):
    """One rule; ``model_dump(mode="json")`` is what the ledger stores."""

    name: str = Field(pattern=RULE_NAME)
    on: str = Field(description="subject pattern, e.g. ledger.model_version.*")
    match: dict[str, Any] = Field(default_factory=dict)
    when: str = ""
    do: RuleActions
    cooldown_s: float = Field(
        0, ge=0, validation_alias=AliasChoices("cooldown", "cooldown_s"), allow_inf_nan=False
    )
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as True (parse_rules avoids it; others may not).
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("on")
    @classmethod
    def _pattern(cls, on: str) -> str:
        try:
            return check_pattern(on)
        except InvalidInputError as error:
            raise ValueError(str(error)) from None

    @field_validator("match")
    @classmethod
    def _finite(cls, match: dict[str, Any]) -> dict[str, Any]:
        todo: list[Any] = [match]
        while todo:
            value = todo.pop()
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{value} is no value an event carries: give a number")
            if isinstance(value, Mapping | list):
                todo.extend(_items(value))
        return match

    @field_validator("when")
    @classmethod
    def _condition(cls, when: str, info: ValidationInfo) -> str:
        if when.strip():
            functions = (info.context or {}).get("functions", RULE_FUNCTIONS)
            try:
                compile_expression(when, functions=functions)
            except InvalidInputError as error:
                raise ValueError(str(error)) from None
        return when

    @field_validator("cooldown_s", mode="before")
    @classmethod
    def _duration(cls, cooldown: Any) -> Any:
        if isinstance(cooldown, str):
            try:
                return parse_duration(cooldown, "cooldown").total_seconds()
            except InvalidInputError as error:
                raise ValueError(f"{error}, or a number of seconds") from None
        return cooldown

    def condition(self, functions: Collection[str] = RULE_FUNCTIONS) -> Expression | None:
        """The compiled ``when`` (None when the rule has no condition)."""
        return compile_expression(self.when, functions=functions) if self.when.strip() else None


class _RulesLoader(yaml.SafeLoader):
    """YAML 1.1 without on/off as booleans, so that a rule's `on:` stays a key, and without
    timestamps, so that a date stays the text events carry (and a stored rule reads back
    the same). Anchors and aliases are refused: a few bytes of them can expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (& and *) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


_RulesLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if not (tag == _BOOL and first in "oO") and tag != _TIMESTAMP
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_rules(text: str, *, functions: Collection[str] = RULE_FUNCTIONS) -> list[RuleSpec]:
    """The rules of a YAML rules file; InvalidInputError naming the rule (or its place) and
    the field of every problem, or a name used twice."""
    if len(text) > MAX_TEXT:
        raise InvalidInputError(f"the rules file is too large (over {MAX_TEXT} characters)")
    try:
        data = yaml.load(text, Loader=_RulesLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise InvalidInputError(f"the rules file is not valid YAML: {error}") from None
    except RecursionError:
        raise InvalidInputError(_TOO_DEEP) from None
    return parse_rule_data(data, functions=functions)


def parse_rule_data(data: Any, *, functions: Collection[str] = RULE_FUNCTIONS) -> list[RuleSpec]:
    """The rules of a rules file already read (a list of mappings, e.g. from JSON)."""
    if not isinstance(data, list) or not data:
        raise InvalidInputError("a rules file is a YAML list of rules (- name: ..., on: ...)")
    if _depth(data) > MAX_DEPTH:
        raise InvalidInputError(_TOO_DEEP)
    rules = [_parse_rule(item, index, tuple(functions)) for index, item in enumerate(data)]
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules, start=1):
        if rule.name in seen:
            raise InvalidInputError(
                f"rule {rule.name!r} is defined twice (rules {seen[rule.name]} and {index})"
            )
        seen[rule.name] = index
        if len(json.dumps(rule.model_dump(mode="json"))) > MAX_SPEC:
            raise InvalidInputError(f"rule {rule.name!r} is too large (over {MAX_SPEC} characters)")
    return rules


def _depth(data: Any) -> int:
    """How deeply lists and mappings nest in ``data`` (without recursing)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, Mapping | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                todo.extend((item, depth + 1) for item in _items(value))
    return deepest


def _items(value: Mapping[str, Any] | list[Any]) -> list[Any]:
    return list(value.values()) if isinstance(value, Mapping) else value


def _parse_rule(item: Any, index: int, functions: tuple[str, ...]) -> RuleSpec:
    name = item.get("name") if isinstance(item, dict) else None
    label = f"rule {name!r}" if isinstance(name, str) and name else f"rule {index + 1}"
    if not isinstance(item, dict):
        raise InvalidInputError(f"{label}: expected a mapping with name, on and do")
    try:
        return RuleSpec.model_validate(item, context={"functions": functions})
    except ValidationError as error:
        raise InvalidInputError(f"{label}: {_problems(error)}") from None


def _problems(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        where = ".".join(map(str, problem["loc"]))
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


# --- matching and rendering -----------------------------------------------------------


def match_fields(match: Mapping[str, Any], fields: Mapping[str, Any]) -> str | None:
    """None when every key of ``match`` matches ``fields``, else why not (the first miss)."""
    return _match_mapping(match, fields, "")


def _match_mapping(match: Mapping[str, Any], fields: Mapping[str, Any], prefix: str) -> str | None:
    for key, wanted in match.items():
        path = f"{prefix}{key}"
        if key not in fields:
            return f"{path} is missing (wanted {_show(wanted)})"
        actual = fields[key]
        if isinstance(wanted, Mapping):
            if not isinstance(actual, Mapping):
                return f"{path} is {_show(actual)}, not a mapping"
            reason = _match_mapping(wanted, actual, f"{path}.")
            if reason:
                return reason
        elif isinstance(wanted, list):
            if not any(_matches(choice, actual) for choice in wanted):
                return f"{path} is {_show(actual)}, not one of {_show(wanted)}"
        elif not _matches(wanted, actual):
            return f"{path} is {_show(actual)}, not {_show(wanted)}"
    return None


def _matches(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, str) and ("*" in wanted or "?" in wanted):
        return isinstance(actual, str) and fnmatch.fnmatchcase(actual, wanted)
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    if isinstance(wanted, str) != isinstance(actual, str) and _is_number(wanted, actual):
        return str(wanted) == str(actual)  # a tag "10" matches 10 written in YAML
    return bool(wanted == actual)


def _is_number(*values: Any) -> bool:
    return any(isinstance(value, int | float) for value in values)


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """``value`` with every ``${path}`` in its strings (through dicts and lists) replaced by
    ``lookup(context, path)``; a string that is one placeholder keeps the value's type."""
    if isinstance(value, str):
        return _render_text(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    return value


def _render_text(text: str, context: Mapping[str, Any]) -> Any:
    whole = _PLACEHOLDER.fullmatch(text)
    if whole:
        return _resolve(whole[1], context)
    return _PLACEHOLDER.sub(lambda found: _as_text(_resolve(found[1], context)), text)


def _resolve(path: str, context: Mapping[str, Any]) -> Any:
    value = lookup(context, path.strip())
    if value is None:
        raise InvalidInputError(f"${{{path}}}: there is no {path.strip() or 'path'} here")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
