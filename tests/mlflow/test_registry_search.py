"""search_registered_models and search_model_versions on the app in-process (both stores):
every filter the grammar allows against a brute-force filter over what the test wrote, the
orders, and the pages (together, exactly the whole result)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ledger.ledger import Ledger
from tests.conftest import Api
from tests.mlflow.support import call, create_model, error, ok

PROMPT = "mlflow.prompt.is_prompt"


def like(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """SQL's LIKE as a regular expression (``\\`` escapes the next character)."""
    out, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        else:
            out.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def search(api: Api, path: str, key: str, **fields: Any) -> list[dict[str, Any]]:
    """Every result, read a page of 3 at a time; checked against one page of all."""
    whole = ok(call(api, "GET", path, "reader", max_results=10_000, **fields))
    assert "next_page_token" not in whole
    items, token = [], ""
    while True:
        page = ok(call(api, "GET", path, "reader", max_results=3, page_token=token, **fields))
        items += page[key]
        assert len(page[key]) <= 3
        token = page.get("next_page_token", "")
        if not token:
            break
    assert items == whole[key], fields
    return items


# -- registered models ---------------------------------------------------------------

MODELS: dict[str, dict[str, str]] = {
    "m00": {"team": "a"}, "m01": {"team": "b", "x.y": "v1"}, "m02": {}, "m11": {"team": "a"},
    "m21": {"x.y": "w"}, "Alpha": {"team": "b"}, "beta": {PROMPT: "true"},
    "m3": {PROMPT: "false", "team": "a"},
}  # fmt: skip
MODEL_FILTERS: list[tuple[str, Any]] = [
    ("", lambda n, t: True),
    ("name = 'm01'", lambda n, t: n == "m01"),
    ("name != 'm01'", lambda n, t: n != "m01"),
    ("name LIKE 'm0%'", lambda n, t: like("m0%").fullmatch(n)),
    ("name LIKE 'm_1'", lambda n, t: like("m_1").fullmatch(n)),
    ("name ILIKE 'ALPHA'", lambda n, t: n.lower() == "alpha"),
    ("name ILIKE '%A'", lambda n, t: n.lower().endswith("a")),
    ("name LIKE '%a'", lambda n, t: n.endswith("a")),
    ("name IN ('m01', 'beta', 'zzz')", lambda n, t: n in ("m01", "beta")),
    ("name NOT IN ('m01', 'beta')", lambda n, t: n not in ("m01", "beta")),
    ("tag.team = 'a'", lambda n, t: t.get("team") == "a"),
    ("tags.team != 'a'", lambda n, t: t.get("team") != "a"),
    ("tag.`x.y` LIKE 'v%'", lambda n, t: t.get("x.y", "").startswith("v")),
    ("tag.\"x.y\" ILIKE 'W'", lambda n, t: t.get("x.y") == "w"),
    (f"name LIKE 'm%' AND tag.`{PROMPT}` != 'true'",
     lambda n, t: n.startswith("m") and t.get(PROMPT) != "true"),
    (f"tag.`{PROMPT}` = 'true'", lambda n, t: t.get(PROMPT) == "true"),
    ("tag.team = 'a' and name ILIKE '%1%' AND attribute.name != 'x'",
     lambda n, t: t.get("team") == "a" and "1" in n),
    ("name = 'm01'' OR 1=1 --'", lambda n, t: False),
]  # fmt: skip


@pytest.fixture
def models(api: Api) -> Api:
    for name, tags in MODELS.items():
        create_model(api, name, tags=[{"key": k, "value": v} for k, v in tags.items()])
    return api


def test_model_filters_match_a_brute_force_filter(models: Api) -> None:
    for text, wanted in MODEL_FILTERS:
        found = search(models, "registered-models/search", "registered_models", filter=text)
        expected = sorted(name for name, tags in MODELS.items() if wanted(name, tags))
        assert [m["name"] for m in found] == expected, text


def test_model_orders(models: Api) -> None:
    def names(*order: str) -> list[str]:
        found = search(models, "registered-models/search", "registered_models", order_by=order)
        return [m["name"] for m in found]

    assert names("name DESC") == sorted(MODELS, reverse=True)
    assert names("name asc") == sorted(MODELS)
    ok(call(models, "PATCH", "registered-models/update", name="m02", description="changed"))
    newest_first = names("last_updated_timestamp DESC")
    assert newest_first[0] == "m02" and sorted(newest_first) == sorted(MODELS)
    assert names("creation_timestamp ASC") == list(MODELS)  # created in this order
    assert names("timestamp DESC", "name ASC")[0] == "m02"


@pytest.mark.parametrize(
    "fields,fragment",
    [
        ({"filter": "name = "}, "value was expected"),
        ({"filter": "name = 'a' OR name = 'b'"}, "OR is not supported"),
        ({"filter": "run_id = 'r'"}, "'run_id' is not supported"),
        ({"filter": "name > 'a'"}, "does not support >"),
        ({"filter": "tag.k IN ('a')"}, "does not support IN"),
        ({"filter": "name = 'a' ; DROP TABLE x"}, "cannot read"),
        ({"max_results": 10_001}, "max_results"),
        ({"max_results": 0}, "max_results"),
        ({"max_results": "many"}, "integer"),
        ({"order_by": ["version_number"]}, "invalid order_by"),
        ({"order_by": ["name", "name DESC"]}, "twice"),
        ({"order_by": ["name sideways"]}, "invalid order_by"),
        ({"page_token": "not-a-token"}, "page token"),
        ({"page_token": "eyJhZnRlciI6WzFdfQ=="}, "page token"),
    ],
)
def test_bad_searches_are_invalid_parameters(
    api: Api, fields: dict[str, Any], fragment: str
) -> None:
    answer = call(api, "GET", "registered-models/search", "reader", **fields)
    assert fragment in error(answer, 400, "INVALID_PARAMETER_VALUE")


# -- model versions --------------------------------------------------------------------


def _versions(api: Api) -> dict[tuple[str, int], dict[str, Any]]:
    """Versions of three models with tags, runs and sources; one deleted (never found)."""
    written: dict[tuple[str, int], dict[str, Any]] = {}
    with Ledger(api.settings) as ledger:
        for name, count in (("iris", 6), ("wine", 5), ("ir-x", 3)):
            for number in range(1, count + 1):
                tags = {"stage": "prod" if number % 2 else "dev"}
                if number % 3 == 0:
                    tags["k.dot"] = "x"
                run = f"run-{number % 3}"
                source = f"s3://b/{name}/{number}"
                ledger.models.register_stored_files(
                    name, lambda store: [], tags=tags,
                    origin={"system": "mlflow", "run_id": run, "source": source},
                )  # fmt: skip
                written[name, number] = {"tags": tags, "run_id": run, "source": source}
        ledger.models.delete_version("wine:2")
    del written["wine", 2]
    api.client.app.state.services.sync_views()
    return written


VERSION_FILTERS: list[tuple[str, Any]] = [
    ("", lambda n, v, x: True),
    ("name = 'iris'", lambda n, v, x: n == "iris"),
    ("name LIKE 'ir%'", lambda n, v, x: n.startswith("ir")),
    ("name ILIKE 'IRIS'", lambda n, v, x: n == "iris"),
    ("name IN ('wine', 'ir-x')", lambda n, v, x: n in ("wine", "ir-x")),
    ("run_id = 'run-1'", lambda n, v, x: x["run_id"] == "run-1"),
    ("run_id IN ('run-1', 'run-9')", lambda n, v, x: x["run_id"] == "run-1"),
    ("run_id != 'run-1'", lambda n, v, x: x["run_id"] != "run-1"),
    ("source_path LIKE 's3://b/wine/%'", lambda n, v, x: n == "wine"),
    ("source_path = 's3://b/iris/3'", lambda n, v, x: (n, v) == ("iris", 3)),
    ("version_number >= 3", lambda n, v, x: v >= 3),
    ("version_number < 2", lambda n, v, x: v < 2),
    ("version_number != '4' AND name = 'wine'", lambda n, v, x: n == "wine" and v != 4),
    ("tag.stage = 'prod'", lambda n, v, x: x["tags"]["stage"] == "prod"),
    ("tag.stage != 'prod'", lambda n, v, x: x["tags"]["stage"] != "prod"),
    ("tag.`k.dot` = 'x' and name != 'wine'",
     lambda n, v, x: x["tags"].get("k.dot") == "x" and n != "wine"),
    ("tag.`k.dot` != 'x'", lambda n, v, x: x["tags"].get("k.dot") != "x"),
    (f"tag.`{PROMPT}` != 'true'", lambda n, v, x: True),
    ("tag.stage LIKE 'p%' AND version_number <= 5 AND name LIKE '%i%'",
     lambda n, v, x: x["tags"]["stage"] == "prod" and v <= 5 and "i" in n),
]  # fmt: skip


def test_version_filters_and_orders_match_a_brute_force_filter(api: Api) -> None:
    written = _versions(api)  # in the order they were registered
    for text, wanted in VERSION_FILTERS:
        matching = [key for key, x in written.items() if wanted(*key, x)]
        found = search(api, "model-versions/search", "model_versions", filter=text)
        expected = sorted(matching, key=lambda k: (k[0], -k[1]))
        assert [(v["name"], int(v["version"])) for v in found] == expected, text
        # Newest first (with a tag to equal: walking that tag's index), and oldest first.
        for order, expected in (("DESC", matching[::-1]), ("ASC", matching)):
            found = search(api, "model-versions/search", "model_versions", filter=text,
                           order_by=[f"creation_timestamp {order}"])  # fmt: skip
            assert [(v["name"], int(v["version"])) for v in found] == expected, (text, order)
    keys = sorted(written)
    orders: list[tuple[list[str], Any]] = [
        (["version_number ASC"], lambda k: (k[1], k[0])),
        (["name DESC", "version_number ASC"], None),
        (["version_number DESC", "name DESC"], None),
    ]
    for order, sort_key in orders:
        found = search(api, "model-versions/search", "model_versions", order_by=order)
        got = [(v["name"], int(v["version"])) for v in found]
        if sort_key is not None:
            assert got == sorted(keys, key=sort_key), order
        elif order[0] == "name DESC":
            assert got == sorted(keys, key=lambda k: (tuple(-ord(c) for c in k[0]), k[1]))
        else:
            assert got == sorted(keys, key=lambda k: (-k[1], tuple(-ord(c) for c in k[0])))
    ok(call(api, "POST", "model-versions/set-tag", name="wine", version="3", key="a", value="b"))
    ok(call(api, "PATCH", "model-versions/update", name="iris", version="2", description="x"))
    found = search(api, "model-versions/search", "model_versions",
                   order_by=["last_updated_timestamp DESC"])  # fmt: skip
    assert (found[0]["name"], found[0]["version"]) == ("iris", "2")


def test_bad_version_searches_are_invalid_parameters(api: Api) -> None:
    for fields, fragment in (
        ({"filter": "version_number = 'x'"}, "whole number"),
        ({"filter": "version_number LIKE '1%'"}, "does not support LIKE"),
        ({"filter": "source_path IN ('a')"}, "does not support IN"),
        ({"filter": "status = 'READY'"}, "'status' is not supported"),
        ({"order_by": ["run_id"]}, "invalid order_by"),
        ({"max_results": 200_000}, "max_results"),
    ):
        answer = call(api, "GET", "model-versions/search", "reader", **fields)
        assert fragment in error(answer, 400, "INVALID_PARAMETER_VALUE"), fields
