"""Rule files (src/ledger/rule_spec.py): parsing, refusals, matching and rendering."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from ledger.errors import InvalidInputError
from ledger.rule_actions import plan_actions
from ledger.rule_spec import RuleSpec, match_fields, parse_rules, render

EXAMPLE = textwrap.dedent(
    """\
    - name: evaluate-candidates
      on: ledger.model_version.registered
      match: {model: iris-classifier, tags: {stage: candidate}}
      do: {run_pipeline: evaluate, params: {model: "${event.model}:${event.version}"}}
    - name: canary-if-better
      on: ledger.job.succeeded
      match: {pipeline: evaluate}
      when: "metrics.accuracy >= alias('iris-classifier', 'champion').metrics.accuracy"
      do: {deploy: {endpoint: shop, deployment: green, model: "${job.params.model}"}, traffic: {blue: 90, green: 10}, require_approval: deployer}
    """  # noqa: E501 - the issue's example, as written there
)


def test_the_issues_two_example_rules_parse() -> None:
    evaluate, canary = parse_rules(EXAMPLE)
    assert evaluate.name == "evaluate-candidates"
    assert evaluate.on == "ledger.model_version.registered"
    assert evaluate.match == {"model": "iris-classifier", "tags": {"stage": "candidate"}}
    assert evaluate.when == "" and evaluate.condition() is None
    assert evaluate.do.run_pipeline == "evaluate"
    assert evaluate.do.params == {"model": "${event.model}:${event.version}"}
    assert evaluate.do.chosen() == ["run_pipeline"]
    assert (evaluate.cooldown_s, evaluate.enabled) == (0, True)

    assert canary.on == "ledger.job.succeeded"
    assert canary.do.deploy is not None and canary.do.deploy.model == "${job.params.model}"
    assert canary.do.traffic == {"blue": 90, "green": 10}
    assert canary.do.require_approval == "deployer"
    assert canary.do.chosen() == ["deploy", "traffic"]
    condition = canary.condition()
    assert condition is not None
    champion = {"metrics": {"accuracy": 0.9}}
    judge = {"alias": lambda model, alias: champion}
    assert condition.evaluate({"metrics": {"accuracy": 0.93}}, judge) is True
    assert condition.evaluate({"metrics": {"accuracy": 0.80}}, judge) is False


def test_a_stored_spec_reads_back_the_same() -> None:
    for rule in parse_rules(EXAMPLE + "  cooldown: PT5M\n  enabled: off\n"):
        stored = rule.model_dump(mode="json")
        assert RuleSpec.model_validate(stored) == rule
    assert stored["cooldown_s"] == 300 and stored["enabled"] is False and stored["on"]


@pytest.mark.parametrize(
    ("cooldown", "seconds"), [("PT5M", 300), ("P1D", 86400), ("90", 90), ("2.5", 2.5), ("0", 0)]
)
def test_cooldown_is_a_duration_or_seconds(cooldown: str, seconds: float) -> None:
    (rule,) = parse_rules(f"- {{name: r, on: ledger.>, do: {{webhook: w}}, cooldown: {cooldown}}}")
    assert rule.cooldown_s == seconds


def test_every_action_parses() -> None:
    (rule,) = parse_rules(
        textwrap.dedent(
            """\
            - name: everything
              on: ledger.model_version.*
              do:
                run_pipeline: evaluate
                params: {n: 3}
                set_alias: {model: m, alias: champion, version: "${event.version}"}
                remove_alias: {model: m, alias: old}
                set_tag: {model: m, key: epochs, value: 10}
                remove_tag: {model: m, version: 2, key: stage}
                deploy: {endpoint: e, deployment: d, model: "m:3", environment: "env:1"}
                traffic: {d: 100}
                webhook: slack
                require_approval: admin
            """
        )
    )
    actions = rule.do
    assert actions.chosen() == [
        "run_pipeline",
        *("set_alias", "remove_alias", "set_tag", "remove_tag", "deploy", "traffic", "webhook"),
    ]
    assert actions.set_tag is not None and actions.set_tag.value == "10"
    assert actions.set_tag.version is None  # a model tag
    assert actions.remove_tag is not None and actions.remove_tag.version == 2


RULE = "name: r, on: ledger.job.succeeded"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a rules file is a YAML list of rules"),
        ("name: r", "a rules file is a YAML list of rules"),
        ("[]", "a rules file is a YAML list of rules"),
        ("- [", "the rules file is not valid YAML"),
        ("- just text", "rule 1: expected a mapping with name, on and do"),
        ("- {on: ledger.>, do: {webhook: w}}", "rule 1: name: Field required"),
        ("- {name: 'bad name', on: ledger.>, do: {webhook: w}}", "rule 'bad name': name: String"),
        ("- {name: r, do: {webhook: w}}", "rule 'r': on: Field required"),
        (
            "- {name: r, on: model.registered, do: {webhook: w}}",
            "rule 'r': on: bad subject pattern",
        ),
        ("- {name: r, on: ledger.>.x, do: {webhook: w}}", "rule 'r': on: bad subject pattern"),
        (f"- {{{RULE}}}", "rule 'r': do: Field required"),
        (f"- {{{RULE}, do: {{}}}}", "rule 'r': do: no action: give at least one of run_pipeline"),
        (
            f"- {{{RULE}, do: {{require_approval: admin}}}}",
            "rule 'r': do: no action",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w, params: {{a: 1}}}}}}",
            "rule 'r': do: params are a pipeline's parameters: give run_pipeline too",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w, require_approval: boss}}}}",
            "rule 'r': do.require_approval: Input should be 'reader', 'contributor', 'deployer'",
        ),
        (f"- {{{RULE}, do: {{wbhook: w}}}}", "rule 'r': do.wbhook: Extra inputs are not permitted"),
        (f"- {{{RULE}, colour: red, do: {{webhook: w}}}}", "rule 'r': colour: Extra inputs"),
        (
            f"- {{{RULE}, do: {{deploy: {{endpoint: e, deployment: d, model: m}}}}}}",
            "rule 'r': do.deploy.model: model 'm': give NAME:VERSION or NAME@ALIAS",
        ),
        (f"- {{{RULE}, do: {{deploy: {{endpoint: e}}}}}}", "rule 'r': do.deploy.deployment: Field"),
        (f"- {{{RULE}, do: {{traffic: {{a: 101}}}}}}", "rule 'r': do.traffic.a: Input should be"),
        (
            f"- {{{RULE}, do: {{set_alias: {{model: m, alias: a}}}}}}",
            "rule 'r': do.set_alias.version: Field required",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w}}, when: 'score >= open(1)'}}",
            "rule 'r': when: bad expression at column 10: open() is unknown; "
            "calls are limited to alias(), latest()",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w}}, when: 'x.__class__'}}",
            "rule 'r': when: bad expression at column 3: names starting with '_'",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w}}, cooldown: 5 minutes}}",
            "rule 'r': cooldown: cooldown '5 minutes': give an ISO 8601 duration such as PT1H or "
            "P7D, or a number of seconds",
        ),
        (f"- {{{RULE}, do: {{webhook: w}}, cooldown: -1}}", "rule 'r': cooldown: Input should be"),
        (
            f"- {{{RULE}, do: {{webhook: w}}, match: {{x: .nan}}}}",
            "rule 'r': match: nan is no value an event carries: give a number",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w}}, match: {{x: {{y: [1, -.inf]}}}}}}",
            "rule 'r': match: -inf is no value an event carries: give a number",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w}}}}\n- {{{RULE}, do: {{webhook: v}}}}",
            "rule 'r' is defined twice (rules 1 and 2)",
        ),
        (
            f"- {{{RULE}, do: {{webhook: w}}}}\n- {{on: ledger.>}}",
            "rule 2: name: Field required; do: Field required",
        ),
    ],
)
def test_bad_rules_are_refused_with_the_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_rules(text)
    assert str(caught.value).startswith(message)
    assert "pydantic" not in str(caught.value) and "type=" not in str(caught.value)


def test_the_functions_a_condition_may_call_are_the_callers() -> None:
    text = f"- {{{RULE}, do: {{webhook: w}}, when: 'latest(\"m\") == null'}}"
    assert parse_rules(text)[0].when
    with pytest.raises(InvalidInputError, match=r"calls are limited to alias\(\)$"):
        parse_rules(text, functions=("alias",))


def test_a_bare_on_key_is_a_string_and_a_boolean_true_key_is_read_as_on() -> None:
    (rule,) = parse_rules("- name: r\n  on: ledger.job.>\n  do: {webhook: w}\n  enabled: no\n")
    assert rule.on == "ledger.job.>" and rule.enabled is False
    (dated,) = parse_rules("- {name: r, on: ledger.>, do: {webhook: w}, match: {day: 2026-12-07}}")
    assert dated.match == {"day": "2026-12-07"}  # as events carry it, and as it is stored
    loaded: dict[Any, Any] = {"name": "r", True: "ledger.job.>", "do": {"webhook": "w"}}
    assert RuleSpec.model_validate(loaded).on == "ledger.job.>"


# --- match_fields -----------------------------------------------------------------------

EVENT = {
    "model": "iris-classifier",
    "version": 3,
    "tags": {"stage": "candidate", "epochs": "10"},
    "pipeline": "evaluate-nightly",
    "flagged": False,
}


@pytest.mark.parametrize(
    "match",
    [
        {},
        {"model": "iris-classifier"},
        {"model": "iris-*"},
        {"model": "iris-?lassifier"},
        {"model": ["other", "iris-classifier"]},
        {"model": ["other", "iris*"]},
        {"version": 3},
        {"version": [2, 3]},
        {"tags": {"stage": "candidate"}},
        {"tags": {"stage": ["candidate", "staging"], "epochs": 10}},
        {"pipeline": "evaluate*", "model": "iris-classifier", "tags": {}},
        {"flagged": False},
    ],
)
def test_matching_fields(match: dict[str, Any]) -> None:
    assert match_fields(match, EVENT) is None


@pytest.mark.parametrize(
    ("match", "reason"),
    [
        ({"model": "other"}, "model is 'iris-classifier', not 'other'"),
        ({"model": "wine-*"}, "model is 'iris-classifier', not 'wine-*'"),
        ({"model": ["a", "b*"]}, "model is 'iris-classifier', not one of ['a', 'b*']"),
        ({"version": 4}, "version is 3, not 4"),
        ({"version": "3*"}, "version is 3, not '3*'"),  # globs match strings only
        ({"tags": {"stage": "prod"}}, "tags.stage is 'candidate', not 'prod'"),
        ({"tags": {"owner": "me"}}, "tags.owner is missing (wanted 'me')"),
        ({"stage": "candidate"}, "stage is missing (wanted 'candidate')"),
        ({"model": {"name": "x"}}, "model is 'iris-classifier', not a mapping"),
        ({"flagged": 0}, "flagged is False, not 0"),
        ({"model": "iris-classifier", "version": 2}, "version is 3, not 2"),
    ],
)
def test_a_miss_gives_its_reason(match: dict[str, Any], reason: str) -> None:
    assert match_fields(match, EVENT) == reason


# --- render -----------------------------------------------------------------------------

CONTEXT = {
    "event": {"model": "iris-classifier", "version": 3, "tags": {"stage": "candidate"}},
    "job": {"params": {"model": "iris-classifier:3", "weights": [90, 10]}, "ok": True},
}


def test_placeholders_are_filled_through_dicts_and_lists() -> None:
    value = {
        "model": "${event.model}:${event.version}",
        "version": "${event.version}",
        "list": ["${job.params.model}", "stage=${ event.tags.stage }", 7, None],
        "nested": {"weights": "${job.params.weights}", "text": "w=${job.params.weights}"},
        "flag": "${job.ok}",
        "plain": "no placeholders, $ and {} alone",
    }
    assert render(value, CONTEXT) == {
        "model": "iris-classifier:3",
        "version": 3,  # exactly one placeholder keeps the value's type
        "list": ["iris-classifier:3", "stage=candidate", 7, None],
        "nested": {"weights": [90, 10], "text": "w=[90, 10]"},
        "flag": True,
        "plain": "no placeholders, $ and {} alone",
    }


@pytest.mark.parametrize("text", ["${event.owner}", "by ${job.params.x.y}", "${}", "${event.0}"])
def test_a_missing_path_is_named(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        render({"a": [text]}, CONTEXT)
    path = text[text.index("${") + 2 : -1].strip()
    assert f"${{{path}}}" in str(caught.value)


def test_a_rendered_version_must_be_a_version_number() -> None:
    alias = {"model": "m", "alias": "a"}
    planned = plan_actions({"set_alias": {**alias, "version": "3"}}, {})
    assert planned == [{"action": "set_alias", **alias, "version": 3}]
    for bad in ("abc", "", "0", True, 1.5):
        with pytest.raises(InvalidInputError, match="is not a version number"):
            plan_actions({"set_alias": {**alias, "version": bad}}, {})
    tag = {"model": "m", "key": "k", "value": "v"}
    assert plan_actions({"set_tag": {**tag, "version": ""}}, {})[0]["version"] == ""
    with pytest.raises(InvalidInputError, match="set_tag: version 'x1' is not a version number"):
        plan_actions({"set_tag": {**tag, "version": "x1"}}, {})
