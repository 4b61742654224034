"""The MLflow filter and order_by parser, on its own (no store): the grammar
(ledger.mlflow_filter) and the registry's mapping of it (the HTTP tests check that these
errors answer INVALID_PARAMETER_VALUE)."""

from __future__ import annotations

import pytest

from ledger.api.mlflow.search_filter import (
    MODEL_ATTRIBUTES,
    MODEL_ORDER_KEYS,
    VERSION_ATTRIBUTES,
    VERSION_ORDER_KEYS,
    parse_filter,
    parse_order_by,
)
from ledger.errors import InvalidInputError
from ledger.mlflow_filter import Comparison, tokenize
from ledger.mlflow_filter import parse_filter as parse_comparisons
from projections.mlflow_search import Condition as TrackingCondition
from projections.mlflow_search import parse_filter as parse_tracking_filter
from projections.registry_filters import Condition, Order, like_to_glob


def test_what_the_client_sends_parses() -> None:
    client = "name LIKE 'm%' AND tag.`mlflow.prompt.is_prompt` != 'true'"
    assert parse_filter(client, MODEL_ATTRIBUTES) == (
        Condition("name", "LIKE", "m%"),
        Condition("tag", "!=", "true", "mlflow.prompt.is_prompt"),
    )
    assert parse_filter("name='m1' and tag.x != 'y'", VERSION_ATTRIBUTES) == (
        Condition("name", "=", "m1"),
        Condition("tag", "!=", "y", "x"),
    )
    assert parse_filter("", MODEL_ATTRIBUTES) == ()
    assert parse_filter("   ", MODEL_ATTRIBUTES) == ()


@pytest.mark.parametrize(
    "text,condition",
    [
        ('name = "it\'s"', Condition("name", "=", "it's")),
        ("name = 'it''s'", Condition("name", "=", "it's")),
        ("attributes.name ILIKE '%X%'", Condition("name", "ILIKE", "%X%")),
        ("`name` <> 'a'", Condition("name", "!=", "a")),
        ("name == 'a'", Condition("name", "=", "a")),
        ("run_id IN ('a','b' , 'c')", Condition("run_id", "IN", ("a", "b", "c"))),
        ("name not in ('a')", Condition("name", "NOT IN", ("a",))),
        ("source_path LIKE 's3://x/%'", Condition("source", "LIKE", "s3://x/%")),
        ("version_number >= 3", Condition("version", ">=", 3)),
        ("version_number = '12'", Condition("version", "=", 12)),
        ("tags.team = 'ml'", Condition("tag", "=", "ml", "team")),
        ("tag.mlflow.user = 'me'", Condition("tag", "=", "me", "mlflow.user")),
        ("tag.\"key with space\" = ''", Condition("tag", "=", "", "key with space")),
        ("TAG.`a.b` like 'x%'", Condition("tag", "LIKE", "x%", "a.b")),
    ],
)
def test_each_comparison(text: str, condition: Condition) -> None:
    assert parse_filter(text, VERSION_ATTRIBUTES) == (condition,)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("name", "comparison operator"),
        ("name =", "a value"),
        ("name = 'a' OR name = 'b'", "OR is not supported"),
        ("name = 'a' name = 'b'", "'name' is not supported; join comparisons with AND"),
        ("name = 'a' AND", "ends with AND"),
        ("name = 'unterminated", "cannot read"),
        ("name = a", "quoted string"),
        ("name IS NULL", "not a supported comparison operator"),
        ("name > 'a'", "does not support >"),
        ("version_number LIKE '1'", "does not support LIKE"),
        ("version_number = 1.5", "whole number"),
        ("version_number = 'x'", "whole number"),
        ("run_id IN 'a'", "parentheses"),
        ("run_id IN ('a' 'b')", "expected ','"),
        ("run_id IN ('a', 1)", "quoted strings"),
        ("tag. = 'x'", "tag key"),
        ("tag.k IN ('a')", "does not support IN"),
        ("params.alpha = '1'", "'params.alpha' is not supported"),
        ("status = 'READY'", "'status' is not supported"),
        ("name = 'a'; DROP TABLE ledger_view_models", "cannot read"),
    ],
)
def test_what_is_not_supported_is_named(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_filter(text, VERSION_ATTRIBUTES)
    assert fragment in str(refused.value)


def test_models_search_only_names_and_tags() -> None:
    with pytest.raises(InvalidInputError, match="'run_id' is not supported here"):
        parse_filter("run_id = 'x'", MODEL_ATTRIBUTES)


def test_strings_keep_every_character_and_tokens_need_no_spaces() -> None:
    tokens = tokenize('name=\'a b\'AND tag.`k`!="x""y"')
    assert [t.kind for t in tokens] == ["word", "op", "string", "word", "word", "quoted",
                                        "op", "string"]  # fmt: skip
    parsed = parse_filter("name='%_\\' AND tag.k = 'x\"y'", VERSION_ATTRIBUTES)
    assert parsed == (Condition("name", "=", "%_\\"), Condition("tag", "=", 'x"y', "k"))


def test_order_by() -> None:
    assert parse_order_by([], MODEL_ORDER_KEYS) == ()
    assert parse_order_by(["name DESC", "timestamp"], MODEL_ORDER_KEYS) == (
        Order("name", True),
        Order("updated", False),
    )
    orders = parse_order_by(["version_number asc", "creation_timestamp DESC"], VERSION_ORDER_KEYS)
    assert orders == (Order("version"), Order("created", True))
    for bad in (["version_number"], ["name up"], ["name DESC extra"], [""], ["name", "name"]):
        with pytest.raises(InvalidInputError):
            parse_order_by(bad, MODEL_ORDER_KEYS)


@pytest.mark.parametrize(
    "like,glob",
    [("a%", "a*"), ("a_c", "a?c"), ("100\\%", "100%"), ("a*b?[", "a[*]b[?][[]"),
     ("\\_x", "_x"), ("x\\\\", "x\\"), ("trail\\", "trail\\")],
)  # fmt: skip
def test_like_patterns_become_sqlite_globs(like: str, glob: str) -> None:
    assert like_to_glob(like) == glob


def test_the_grammar_yields_comparisons_each_search_maps() -> None:
    text = "metrics.acc>=-1.5e-3 AND run.status = 'it''s' AND params.`a b` != \"x\" AND x.k = 1"
    assert parse_comparisons(text) == (
        Comparison("metrics", "acc", ">=", "-1.5e-3", False, "metrics.acc"),
        Comparison("attributes", "status", "=", "it's", True, "run.status"),
        Comparison("params", "a b", "!=", "x", True, "params."),
        Comparison("x", "k", "=", "1", False, "x.k"),
    )
    tracking = parse_tracking_filter(
        "metrics.acc >= -1.5e-3 AND run.status = 'it''s'", {"status": "text"}
    )
    assert tracking == [
        TrackingCondition("metrics", "acc", ">=", -0.0015),
        TrackingCondition("attributes", "status", "=", "it's"),
    ]
    with pytest.raises(InvalidInputError, match="unknown entity 'x'"):
        parse_tracking_filter("x.k = 1", {})
