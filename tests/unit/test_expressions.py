"""The safe expression grammar of filters and rule conditions (src/ledger/expressions.py)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInputError
from ledger.expressions import ExpressionError, compile_expression, lookup

FUNCTIONS = ("alias", "latest")
VERSIONS = {
    ("iris-classifier", "champion"): {"version": 3, "metrics": {"accuracy": 0.91}},
}


def alias(model: str, name: str) -> dict[str, Any] | None:
    return VERSIONS.get((model, name))


def run(text: str, context: dict[str, Any] | None = None, **functions: Any) -> Any:
    expression = compile_expression(text, functions=FUNCTIONS)
    return expression.evaluate(context or {}, {"alias": alias, **functions})


def refusal(text: str, functions: tuple[str, ...] = FUNCTIONS) -> str:
    with pytest.raises(InvalidInputError) as caught:
        compile_expression(text, functions=functions)
    assert not isinstance(caught.value, ExpressionError)
    return str(caught.value)


# --- the examples -----------------------------------------------------------


@pytest.mark.parametrize(("accuracy", "better"), [(0.95, True), (0.91, True), (0.90, False)])
def test_a_candidate_is_compared_with_the_champion(accuracy: float, better: bool) -> None:
    text = "metrics.accuracy >= alias('iris-classifier', 'champion').metrics.accuracy"
    assert run(text, {"metrics": {"accuracy": accuracy}}) is better


def test_a_missing_alias_makes_the_comparison_false() -> None:
    text = "metrics.accuracy >= alias('iris-classifier', 'nobody').metrics.accuracy"
    assert run(text, {"metrics": {"accuracy": 0.99}}) is False


@pytest.mark.parametrize(
    ("stage", "matches"), [("candidate", True), ("staging", False), (None, False)]
)
def test_a_bare_word_in_a_list_is_a_string(stage: str | None, matches: bool) -> None:
    context = {"data": {"tags": {"stage": stage} if stage else {}}}
    assert run("data.tags.stage in [candidate]", context) is matches
    assert run("data.tags.stage not in [candidate]", context) is not matches


def test_lists_mix_words_dotted_words_literals_and_expressions() -> None:
    expression = compile_expression("x in [iris-classifier, ledger.job.succeeded, 3, 'a b', y]")
    assert expression.evaluate({"x": "ledger.job.succeeded"}) is True
    assert expression.evaluate({"x": "iris-classifier"}) is True
    assert expression.evaluate({"x": 3}) is True
    assert expression.evaluate({"x": "a b"}) is True
    assert expression.evaluate({"x": "y"}) is True  # a bare word, not the field y
    assert compile_expression("[true, null, [a]]").evaluate({}) == [True, None, ["a"]]
    assert run("x in [latest('m'), 1]", {"x": 7}, latest=lambda m: 7) is True


# --- operators and precedence -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true or false and false", True),  # and binds tighter than or
        ("(true or false) and false", False),
        ("not false and false", False),  # not binds tighter than and
        ("not (false and false)", True),
        ("not a == 1", False),  # comparison binds tighter than not
        ("not a == 2", True),
        ("a == 1 and b.c != 'x' or false", True),
        ("((((a))) == ((1)))", True),
        ("not not true", True),
        ("a in [1, 2] and not a in [2]", True),
        ("-2 < a", True),
        ("1.5e0 > a", True),
        ("'abc' < 'abd'", True),
        ("'b' in 'abc'", True),
        ("'c' in b", True),  # keys of a dict
        ("'z' not in b", True),
        ("a <= 1 and a >= 1 and a > 0 and a < 2", True),
        ("true == 1", False),  # booleans are not numbers
        ("a == 1.0", True),
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert run(text, {"a": 1, "b": {"c": "y"}}) is expected


def test_missing_fields_are_none() -> None:
    context: dict[str, Any] = {"a": {"b": [10, {"c": 20}]}}
    assert run("a.b.0 == 10 and a.b.1.c == 20", context) is True
    assert run("a.b.2 == null and a.x.y == null and a.b.c == null", context) is True
    for text in ("a.x < 1", "a.x > 1", "1 <= a.x", "a.x >= a.y"):
        assert run(text, context) is False
    assert run("a.x != 1", context) is True
    assert run("1 in a.x", context) is False
    assert run("1 not in a.x", context) is True


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("'a' < 3", "cannot compare 'a' < 3"),
        ("a >= 'x'", "cannot compare 1 >= 'x'"),
        ("true < 2", "cannot compare True < 2"),
        ("[1] < [2]", "cannot compare [1] < [2]"),
        ("1 in 5", "cannot test 1 in 5"),
        ("1 in 'abc'", "cannot test 1 in 'abc'"),
    ],
)
def test_incompatible_values_raise_expression_error(text: str, shown: str) -> None:
    with pytest.raises(ExpressionError, match=f"^{shown.replace('[', '.').replace(']', '.')}$"):
        run(text, {"a": 1})


def test_a_compiled_function_missing_at_evaluation_is_an_expression_error() -> None:
    expression = compile_expression("latest('m') == 1", functions=FUNCTIONS)
    with pytest.raises(ExpressionError, match=r"latest\(\) is not available"):
        expression.evaluate({})


def test_a_call_with_the_wrong_arguments_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match=r"^alias\(\): missing a required argument"):
        run("alias('iris-classifier') == null")
    with pytest.raises(ExpressionError, match=r"^alias\(\): too many positional arguments"):
        run("alias('a', 'b', 'c') == null")


def test_text_and_lookup() -> None:
    assert compile_expression(" a  ==  1 ").text == " a  ==  1 "
    context = {"event": {"model": "iris", "versions": [{"n": 1}]}}
    assert lookup(context, "event.model") == "iris"
    assert lookup(context, "event.versions.0.n") == 1
    assert lookup(context, "event.versions.1.n") is None
    assert lookup(context, "event.model.upper") is None  # strings have no fields


def test_python_attributes_are_never_reached() -> None:
    class Thing:
        secret = "s"

    context = {"thing": Thing(), "text": "abc"}
    assert run("thing.secret == null and text.upper == null", context) is True
    assert run("''.join == null and [1].append == null and 'x'.0 == null") is True


# --- refusals, each with its column ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "what"),
    [
        ("", 1, "empty expression"),
        ("   ", 1, "empty expression"),
        ("a == 1 b", 8, "unexpected 'b' after the expression"),
        ("a == 1)", 7, "unexpected ')' after the expression"),
        ("a == 'open", 6, "unterminated string"),
        ('x in ["a", "b]', 12, "unterminated string"),
        ("a ==", 5, "expected a value, found the end"),
        ("(a == 1", 8, "expected ')', found the end"),
        ("[1, 2", 6, "expected ',' or ']', found the end"),
        ("alias('a' 'b')", 11, "expected ',' or ')', found \"'b'\""),
        ("a < b < c", 7, "comparisons cannot be chained"),
        ("a.", 3, "expected a field name"),
        ("a = 1", 3, "unexpected character '='"),
        ("a == 1 && b", 8, "unexpected character '&'"),
        ("metrics.f1 >= 0.9 and score(x)", 23, "score() is unknown; calls are limited to"),
        ("_private == 1", 1, "names starting with '_' are not allowed (_private)"),
        ("data._x == 1", 6, "names starting with '_' are not allowed (_x)"),
        ("x in [_hidden]", 7, "names starting with '_' are not allowed"),
    ],
)
def test_refusals_name_the_column(text: str, column: int, what: str) -> None:
    message = refusal(text)
    assert message.startswith(f"bad expression at column {column}: ")
    assert what in message


def test_unknown_functions_list_the_allowed_ones() -> None:
    message = refusal("evaluate(1)")
    assert message == (
        "bad expression at column 1: evaluate() is unknown; calls are limited to alias(), latest()"
    )
    assert "calls are not allowed here" in refusal("alias('a', 'b')", functions=())


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("__class__", 1),
        ("().__class__", 2),
        ("x.__dict__", 3),
        ("x.__class__.__bases__", 3),
        ("open('f')", 1),
        ("__import__('os').system('ls')", 1),
        ("a.b()", 4),
        ("alias('a', 'b').metrics.get('x')", 28),
        ("alias('a', 'b')('c')", 16),
        ("(alias)('a', 'b')", 8),
        ("lambda: 1", 7),
        ("lambda x: x", 9),
        ("[x for x in y]", 4),
        ("a if b else c", 3),
        ("1 + 1", 3),
        ("f'{x}'", 2),
        ("a;b", 2),
        ("alias('x', 'y').__class__", 17),
    ],
)
def test_hostile_inputs_are_refused_with_their_column(text: str, column: int) -> None:
    assert refusal(text).startswith(f"bad expression at column {column}: ")


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000 + "1" + ")" * 5000,
        "[" * 5000 + "]" * 5000,
        "not " * 1000 + "true",
        "alias(" * 200 + ")" * 200,
        "a == 1 and " * 400 + "true",
        "x" * 5000,
    ],
)
def test_deep_or_long_inputs_end_in_a_clean_error(text: str) -> None:
    message = refusal(text)
    assert "nested deeper than 64 levels" in message or "longer than 4096 characters" in message


def test_nesting_up_to_the_cap_is_allowed() -> None:
    assert run("(" * 64 + "a" + ")" * 64, {"a": 5}) == 5
    assert run("a and " * 600 + "a", {"a": 1}) is True  # flat, however long
    assert "nested deeper" in refusal("(" * 65 + "a" + ")" * 65)


GRAMMAR_PIECES = st.sampled_from(
    [
        "a",
        "b.c",
        "_x",
        "alias",
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        "'s'",
        '"t',
        "1",
        "-2.5",
        "==",
        "<",
        ">=",
        "in",
        "not",
        "and",
        "or",
        "true",
        "null",
        " ",
        "0",
        "__class__",
        "open",
        ":",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(GRAMMAR_PIECES, max_size=25).map("".join)))
def test_any_text_compiles_or_is_refused_cleanly(text: str) -> None:
    try:
        expression = compile_expression(text, functions=FUNCTIONS)
    except InvalidInputError as error:
        assert str(error).startswith("bad expression at column ")
        return
    context = {"a": 1, "b": {"c": [1, "x"]}}
    with contextlib.suppress(ExpressionError):
        expression.evaluate(context, {"alias": alias, "latest": lambda *args: None})
