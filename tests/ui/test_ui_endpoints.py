"""The endpoints pages through the app: the list, an endpoint's deployments, split and
traffic timeline (now and as of a past point), and the deployer's actions by form."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.conftest import Api
from tests.ui.ui_support import Browser, browser

SHOP = "/ui/endpoints/shop"


class _Tables(HTMLParser):
    """The text of each cell of each row of the tables with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table(html: str, table_id: str) -> list[list[str]]:
    """The rows of table#``table_id`` (header row first), each a list of cell texts."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables[table_id]


def _register(api: Api, name: str = "iris") -> None:
    response = api.client.post(
        f"/models/{name}/versions",
        files=[("files", ("model.bin", b"weights"))],
        data={"reason": "trained"},
        headers=api.auth("contributor"),
    )
    assert response.status_code == 201, response.text


def _write(api: Api, method: str, url: str, body: dict[str, Any]) -> None:
    response = api.client.request(method, url, json=body, headers=api.auth("deployer"))
    assert response.status_code in (200, 201), response.text


@pytest.fixture
def shop(api: Api) -> int:
    """Endpoint shop: blue (iris:1) with all traffic, green (iris:2) with none. The log
    position before the canary (the last event so far)."""
    _register(api)
    _register(api)
    _write(
        api, "POST", "/endpoints", {"name": "shop", "description": "the shop", "reason": "launch"}
    )
    deploy = "/endpoints/shop/deployments"
    _write(api, "POST", deploy, {"deployment": "blue", "model": "iris:1", "reason": "first"})
    _write(api, "POST", deploy, {"deployment": "green", "model": "iris:2", "reason": "candidate"})
    return api.head()


def _canary(person: Browser, blue: int = 90, green: int = 10, reason: str = "canary 10%") -> Any:
    person.get(SHOP)
    return person.submit(
        f"{SHOP}/traffic", {"weight:blue": str(blue), "weight:green": str(green), "reason": reason}
    )


def test_the_list_shows_each_endpoint_with_its_split(api: Api, shop: int) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/endpoints")
        assert page.status_code == 200, page.text
        rows = table(page.text, "endpoints")
        assert rows[1] == ["shop", "online", "the shop", "blue iris:1 green iris:2", "blue 100%"]
        assert f'href="{SHOP}"' in page.text
        assert 'id="create-endpoint-form"' not in page.text  # a reader deploys nothing


def test_the_list_as_of_a_past_position(api: Api, shop: int) -> None:
    _write(api, "POST", "/endpoints", {"name": "later", "reason": "second"})
    with browser(api, "reader") as person:
        page = person.get(f"/ui/endpoints?as_of={shop}")
        assert page.status_code == 200
        assert 'id="as-of-banner"' in page.text and f"log position {shop}" in page.text
        assert [row[0] for row in table(page.text, "endpoints")[1:]] == ["shop"]
        assert f'href="{SHOP}?as_of={shop}"' in page.text


def test_the_endpoint_page_shows_deployments_split_and_timeline(api: Api, shop: int) -> None:
    with browser(api, "reader") as person:
        page = person.get(SHOP)
        assert page.status_code == 200, page.text
        assert page.text.count("<h1>") == 1 and "Endpoint shop" in page.text
        deployments = table(page.text, "deployments")
        assert [row[0] for row in deployments[1:]] == ["blue", "green"]
        blue = deployments[1]
        assert blue[1] == "iris:1" and blue[2] == "default"
        assert blue[3] == "1.0 CPU · 0 GPU · 1024 MB · 1 replica"
        assert blue[4] == "pending" and blue[5] == "off"
        assert blue[6:8] == ["100%", "0%"] and blue[8].startswith("deployer-bot ")
        assert 'href="/ui/models/iris/versions/1"' in page.text
        assert table(page.text, "traffic")[1:] == [
            ["blue", "iris:1", "100", "0"],
            ["green", "iris:2", "0", "0"],
        ]
        assert 'id="traffic-chart"' in page.text and 'class="split-bar"' in page.text
        timeline = table(page.text, "traffic-timeline")[1:]
        assert [row[1:5] for row in timeline] == [
            ["deployer-bot", "deployed green (iris:2)", "candidate", "blue 100% (iris:1)"],
            ["deployer-bot", "traffic split changed", "first", "blue 100% (iris:1)"],
            ["deployer-bot", "deployed blue (iris:1)", "first", "none"],
            ["deployer-bot", "endpoint created (online)", "launch", "none"],
        ]
        assert 'id="traffic-form"' not in page.text and 'id="deploy-form"' not in page.text


def test_a_health_report_shows_with_its_time(api: Api, shop: int) -> None:
    _write(
        api,
        "PUT",
        "/endpoints/shop/deployments/blue/health",
        {"status": "healthy", "detail": "2 replicas", "reason": "replicas started"},
    )
    with browser(api, "reader") as person:
        page = person.get(SHOP)
        blue = table(page.text, "deployments")[1]
        assert re.fullmatch(r"healthy 2 replicas \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", blue[4])
        assert table(page.text, "traffic-timeline")[1][2] == "blue health healthy: 2 replicas"


def test_moving_traffic_adds_a_timeline_row_by_the_deployer(api: Api, shop: int) -> None:
    with browser(api, "deployer") as person:
        moved = _canary(person)
        assert moved.status_code == 303 and moved.headers["location"] == SHOP
        page = person.get(SHOP)
        newest = table(page.text, "traffic-timeline")[1]
        assert newest[1:5] == [
            "deployer-bot",
            "traffic split changed",
            "canary 10%",
            "blue 90% (iris:1), green 10% (iris:2)",
        ]
        assert table(page.text, "traffic")[1:] == [
            ["blue", "iris:1", "90", "0"],
            ["green", "iris:2", "10", "0"],
        ]
        endpoint = api.client.get("/endpoints/shop", headers=api.auth("reader")).json()
        assert endpoint["traffic"] == {"blue": 90, "green": 10}
        audit = api.client.get(
            "/audit", params={"entity": "endpoint:shop"}, headers=api.auth("reader")
        ).json()
        last = audit["items"][-1]
        assert (last["actor"], last["reason"]) == ("deployer-bot", "canary 10%")


def _colour(html: str, deployment: str) -> str:
    """The fill of ``deployment``'s share in the split bar."""
    found = re.search(
        rf'data-deployment="{deployment}"><title>[^<]*</title><rect [^>]*fill="(#\w+)"', html
    )
    assert found is not None, html
    return found.group(1)


def test_as_of_before_the_canary_shows_the_old_split(api: Api, shop: int) -> None:
    with browser(api, "deployer") as person:
        _canary(person)
        colour = _colour(person.get(SHOP).text, "blue")
        page = person.get(f"{SHOP}?as_of={shop}")
        assert _colour(page.text, "blue") == colour  # a deployment keeps its colour
        assert page.status_code == 200, page.text
        assert 'id="as-of-banner"' in page.text and f"log position {shop}" in page.text
        assert "Traffic split as of position" in page.text
        assert table(page.text, "traffic")[1:] == [
            ["blue", "iris:1", "100", "0"],
            ["green", "iris:2", "0", "0"],
        ]
        timeline = table(page.text, "traffic-timeline")[1:]
        assert len(timeline) == 4 and "canary 10%" not in page.text
        assert table(page.text, "deployments")[2][8].startswith("deployer-bot ")
        assert 'id="traffic-form"' not in page.text  # the past is not changed from here


def test_as_of_a_time_and_before_the_endpoint(api: Api, shop: int) -> None:
    with browser(api, "reader") as person:
        now = person.get(f"{SHOP}?as_of=2999-01-01T00:00")
        assert now.status_code == 200 and 'id="as-of-banner"' in now.text
        assert table(now.text, "traffic")[1][2] == "100"
        before = person.get(f"{SHOP}?as_of=1")
        assert before.status_code == 404
        assert "error: endpoint &#39;shop&#39; did not exist at position 1" in before.text
        assert person.get(f"{SHOP}?as_of=yesterday").status_code == 400


def test_deploy_mirror_undeploy_and_delete_by_form(api: Api, shop: int) -> None:
    with browser(api, "deployer") as person:
        person.get(SHOP)
        deployed = person.submit(
            f"{SHOP}/deployments",
            {"deployment": "shadow", "model": "iris:2", "environment": "", "cpus": "2",
             "gpus": "", "memory_mb": "2048", "replicas": "3", "reason": "shadow test"},
        )  # fmt: skip
        assert deployed.status_code == 303, deployed.text
        page = person.get(SHOP)
        shadow = table(page.text, "deployments")[3]
        assert shadow[0] == "shadow" and shadow[3] == "2.0 CPU · 0 GPU · 2048 MB · 3 replicas"
        weights = {"weight:blue": "0", "weight:green": "0", "weight:shadow": "25"}
        mirrored = person.submit(f"{SHOP}/mirror", {**weights, "reason": "shadow it"})
        assert mirrored.status_code == 303, mirrored.text
        page = person.get(SHOP)
        assert table(page.text, "traffic")[3] == ["shadow", "iris:2", "0", "25"]
        assert "mirror: shadow 25%" in table(page.text, "traffic-timeline")[1][4]
        refused = person.submit(f"{SHOP}/deployments/shadow/delete", {"reason": "done"})
        assert refused.status_code == 409
        assert "receives 25% mirrored traffic; shift its traffic first" in refused.text
        person.submit(f"{SHOP}/mirror", {**weights, "weight:shadow": "0", "reason": "stop"})
        gone = person.submit(f"{SHOP}/deployments/shadow/delete", {"reason": "done"})
        assert gone.status_code == 303, gone.text
        page = person.get(SHOP)
        assert [row[0] for row in table(page.text, "deployments")[1:]] == ["blue", "green"]
        assert table(page.text, "traffic-timeline")[1][1:4] == [
            "deployer-bot", "undeployed shadow", "done",
        ]  # fmt: skip


def test_create_and_delete_an_endpoint_by_form(api: Api) -> None:
    with browser(api, "deployer") as person:
        page = person.get("/ui/endpoints")
        assert 'id="create-endpoint-form"' in page.text
        created = person.submit(
            "/ui/endpoints",
            {"name": "batchy", "kind": "batch", "description": "nightly", "reason": "new"},
        )
        assert created.status_code == 303 and created.headers["location"] == "/ui/endpoints/batchy"
        page = person.get("/ui/endpoints/batchy")
        assert 'id="delete-endpoint-form"' in page.text and "traffic-form" not in page.text
        assert table(page.text, "traffic-timeline")[1][1:4] == [
            "deployer-bot", "endpoint created (batch)", "new",
        ]  # fmt: skip
        deleted = person.submit("/ui/endpoints/batchy/delete", {"reason": "not needed"})
        assert deleted.status_code == 303 and deleted.headers["location"] == "/ui/endpoints"
        listed = table(person.get("/ui/endpoints").text, "endpoints")[1]
        assert listed[0] == "batchy (deleted)"
        page = person.get("/ui/endpoints/batchy")
        assert "delete-endpoint-form" not in page.text and "deploy-form" not in page.text


@pytest.mark.parametrize(
    ("url", "form", "status", "message"),
    [
        (f"{SHOP}/traffic", {"weight:blue": "50", "weight:green": "40"}, 400,
         "error: traffic weights must sum to 100, got 90"),
        (f"{SHOP}/traffic", {"weight:blue": "ninety", "weight:green": "10"}, 400,
         "error: traffic for &#39;blue&#39; must be a whole percentage, got &#39;ninety&#39;"),
        (f"{SHOP}/deployments/blue/delete", {}, 409,
         "error: cannot undeploy &#39;blue&#39; from endpoint &#39;shop&#39;: it still receives "
         "100% live traffic; shift its traffic first"),
        (f"{SHOP}/deployments", {"deployment": "red", "model": "iris:9"}, 404, "iris"),
        (f"{SHOP}/delete", {}, 409, "undeploy them first"),
        ("/ui/endpoints", {"name": "shop"}, 409, "error: endpoint &#39;shop&#39; already exists"),
        ("/ui/endpoints", {"name": "bad name"}, 400, "invalid endpoint name"),
    ],
)  # fmt: skip
def test_refusals_read_as_the_cli_prints_them(
    api: Api, shop: int, url: str, form: dict[str, str], status: int, message: str
) -> None:
    with browser(api, "deployer") as person:
        person.get(SHOP)
        refused = person.submit(url, {**form, "reason": "try"})
        assert refused.status_code == status, refused.text
        assert message in refused.text
        assert api.head() == shop  # nothing written


def test_a_write_needs_a_reason(api: Api, shop: int) -> None:
    with browser(api, "deployer") as person:
        refused = _canary(person, reason="  ")
        assert refused.status_code == 400
        assert "error: a reason is required" in refused.text
        assert api.head() == shop


def test_a_contributor_sees_no_forms_and_cannot_post(api: Api, shop: int) -> None:
    with browser(api, "contributor") as person:
        page = person.get(SHOP)
        for form in ("traffic-form", "mirror-form", "deploy-form", "/delete"):
            assert form not in page.text
        assert "create-endpoint-form" not in person.get("/ui/endpoints").text
        for url, form in [
            (f"{SHOP}/traffic", {"weight:blue": "90", "weight:green": "10"}),
            (f"{SHOP}/mirror", {"weight:green": "10"}),
            (f"{SHOP}/deployments", {"deployment": "red", "model": "iris:1"}),
            (f"{SHOP}/deployments/green/delete", {}),
            (f"{SHOP}/delete", {}),
            ("/ui/endpoints", {"name": "mine"}),
        ]:
            refused = person.submit(url, {**form, "reason": "let me"})
            assert refused.status_code == 403, url
            assert "this needs deployer" in refused.text
        assert api.head() == shop


def test_a_write_without_the_csrf_token_is_refused(api: Api, shop: int) -> None:
    with browser(api, "deployer") as person:
        person.get(SHOP)
        person.csrf = "forged"
        form = {"weight:blue": "90", "weight:green": "10", "reason": "canary"}
        refused = person.submit(f"{SHOP}/traffic", form)
        assert refused.status_code == 403 and "CSRF check failed" in refused.text
        assert api.head() == shop


def test_user_strings_are_shown_as_text(api: Api) -> None:
    _register(api)
    script = "<script>alert(1)</script>"
    _write(api, "POST", "/endpoints", {"name": "x", "description": script, "reason": script})
    _write(api, "POST", "/endpoints/x/deployments",
           {"deployment": "blue", "model": "iris:1", "reason": f"go {script}"})  # fmt: skip
    with browser(api, "deployer") as person:
        for url in ("/ui/endpoints", "/ui/endpoints/x"):
            page = person.get(url)
            assert "<script>alert" not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        # the chart's tooltips carry the reason, escaped too
        chart = re.search(r'<svg id="traffic-chart".*?</svg>', page.text, re.S)
        assert chart is not None and "go &lt;script&gt;" in chart.group(0)


def test_an_unknown_endpoint_is_a_404_page(api: Api) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/endpoints/nowhere")
        assert page.status_code == 404
        assert "error: endpoint &#39;nowhere&#39; does not exist" in page.text


def test_a_batch_endpoint_offers_no_mirror(api: Api) -> None:
    _register(api)
    _write(api, "POST", "/endpoints", {"name": "nightly", "kind": "batch", "reason": "batch"})
    _write(api, "POST", "/endpoints/nightly/deployments",
           {"deployment": "main", "model": "iris:1", "reason": "go"})  # fmt: skip
    with browser(api, "deployer") as person:
        page = person.get("/ui/endpoints/nightly")
        assert 'id="traffic-form"' in page.text and 'id="mirror-form"' not in page.text
        assert table(page.text, "deployments")[1][6] == "100%"
