"""The models pages through the app: the list (search, pages, as of), a model's page (versions,
chart, compare form, as of), comparing versions, and the actions by role."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

from ledger.ledger import Ledger
from tests.conftest import Api
from tests.ui.ui_support import browser

SCRIPT = "<script>alert(1)</script>"


def register(
    api: Api,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    flavor: str = "custom",
    content: bytes = b"weights",
) -> dict[str, Any]:
    response = api.client.post(
        f"/models/{name}/versions",
        files=[("files", ("model.bin", content))],
        data={
            "tags": json.dumps(tags or {}),
            "metrics": json.dumps(metrics or {}),
            "flavor": flavor,
        },
        headers=api.auth("contributor"),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def rows_of(html: str, table: str) -> list[str]:
    """The body rows of the table with id ``table``."""
    found = re.search(rf'<table id="{table}">(.*?)</table>', html, re.S)
    assert found, f"no table#{table}"
    body = found.group(1).split("<tbody>", 1)[1]
    return re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)


def listed(html: str) -> list[str]:
    """The model names the list shows, in order."""
    return [
        re.search(r'<a href="/ui/models/([^"?]+)', row).group(1)  # type: ignore[union-attr]
        for row in rows_of(html, "models")
        if "/ui/models/" in row
    ]


def audit(api: Api, entity: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/audit?entity={entity}", headers=api.auth("admin"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_the_list_searches_by_prefix_tags_alias_and_flavor(api: Api) -> None:
    register(api, "iris", tags={"stage": "prod", "team": "a"}, flavor="onnx")
    register(api, "iris", tags={"stage": "dev"}, flavor="sklearn")
    register(api, "iris-small", tags={"stage": "dev"})
    register(api, "wine", tags={"stage": "prod"}, flavor="sklearn")
    admin = api.auth("admin")
    api.client.put("/models/wine/aliases/champion", json={"version": 1}, headers=admin)
    api.client.put("/models/wine/tags", json={"tags": {"owner": "ml"}}, headers=admin)
    with browser(api, "reader") as person:
        everything = person.get("/ui/models")
        assert everything.status_code == 200
        assert listed(everything.text) == ["iris", "iris-small", "wine"]
        assert 'role="search"' in everything.text and 'name="q"' in everything.text
        assert "Name starts with" in everything.text
        assert "one of its live versions" in everything.text
        searches = {
            "q=iris": ["iris", "iris-small"],
            "tag=stage%3Dprod": ["iris", "wine"],
            # one version must carry both: iris:1 is prod of team a, iris:2 dev
            "tag=stage%3Ddev&tag=team%3Da": [],
            "tag=stage%3Dprod&tag=team%3Da": ["iris"],
            "tag=owner%3Dml": ["wine"],  # the model's own tag
            "tag=owner%3Dml&tag=stage%3Dprod": ["wine"],  # the model's tag and its version's
            "alias=champion": ["wine"],
            "flavor=sklearn": ["iris", "wine"],
            "flavor=sklearn&tag=stage%3Dprod": ["wine"],
            "q=iris&flavor=sklearn&tag=stage%3Ddev": ["iris"],
            "q=w&tag=": ["wine"],  # an empty tag field is no filter
        }
        for search, expected in searches.items():
            page = person.get(f"/ui/models?{search}")
            assert page.status_code == 200, (search, page.text)
            assert listed(page.text) == expected, search
        refused = person.get("/ui/models?tag=novalue")
        assert refused.status_code == 400
        assert "error: invalid tag filter 'novalue': expected key=value" in unescape(refused.text)


def test_the_list_is_paged_fifty_at_a_time(api: Api) -> None:
    with Ledger(api.settings) as ledger:
        for n in range(53):
            ledger.models.create_model(f"m{n:03d}", reason="fill")
    with browser(api, "reader") as person:
        first = person.get("/ui/models")
        assert listed(first.text) == [f"m{n:03d}" for n in range(50)]
        following = re.search(r'<a rel="next" href="([^"]+)">Next page</a>', first.text)
        assert following
        second = person.get(following.group(1).replace("&amp;", "&"))
        assert listed(second.text) == ["m050", "m051", "m052"]
        assert "Next page" not in second.text
        assert person.get("/ui/models?page_token=garbage").status_code == 400


def test_the_list_as_of_a_past_position(api: Api) -> None:
    register(api, "iris", tags={"stage": "dev"})
    before = api.head()
    register(api, "wine")
    api.client.put("/models/iris/versions/1/tags", json={"tags": {"stage": "prod"}},
                   headers=api.auth("admin"))  # fmt: skip
    with browser(api, "reader") as person:
        now = person.get("/ui/models?tag=stage%3Dprod")
        assert listed(now.text) == ["iris"]
        past = person.get(f"/ui/models?as_of={before}")
        assert past.status_code == 200
        assert 'id="as-of-banner"' in past.text and f"log position {before}" in past.text
        assert listed(past.text) == ["iris"]  # wine came later
        assert f'href="/ui/models/iris?as_of={before}"' in past.text
        assert listed(person.get(f"/ui/models?as_of={before}&tag=stage%3Dprod").text) == []
        assert listed(person.get(f"/ui/models?as_of={before}&tag=stage%3Ddev").text) == ["iris"]
        assert person.get("/ui/models?as_of=yesterday").status_code == 400


def test_a_model_page_shows_its_versions_a_chart_and_the_compare_form(api: Api) -> None:
    for n in range(3):
        register(api, "iris", tags={"stage": f"s{n}"}, metrics={"accuracy": 0.8 + n / 100})
    admin = api.auth("admin")
    api.client.put("/models/iris/aliases/champion", json={"version": 2}, headers=admin)
    api.client.put("/models/iris/tags", json={"tags": {"team": "vision"}}, headers=admin)
    api.client.post("/endpoints", json={"name": "shop"}, headers=admin)
    api.client.post("/endpoints/shop/deployments", json={"deployment": "blue", "model": "iris:2"},
                    headers=admin)  # fmt: skip
    with browser(api, "reader") as person:
        page = person.get("/ui/models/iris")
        assert page.status_code == 200
        html = page.text
        assert html.count("<h1>") == 1 and "<h1>Model iris</h1>" in html
        rows = rows_of(html, "versions")
        assert [re.search(r'href="/ui/models/iris/versions/(\d+)"', r).group(1)  # type: ignore[union-attr]
                for r in rows] == ["3", "2", "1"]  # fmt: skip
        assert "@champion" in rows[1] and 'href="/ui/endpoints/shop"' in rows[1]
        assert "accuracy" in rows[0] and "0.82" in rows[0] and "s2" in rows[0]
        assert "team" in html and "vision" in html and "contributor-bot" in html
        assert '<svg id="metric-chart"' in html
        assert html.count('class="point"') == 3
        assert 'action="/ui/models/iris/compare"' in html
        assert html.count('name="v"') == 3
        assert "Change the model" not in html and 'method="post" action="/ui/models' not in html
        other = person.get("/ui/models/iris?metric=nope")
        assert "accuracy across versions" in other.text  # an unknown metric: the first
        missing = person.get("/ui/models/nope")
        assert missing.status_code == 404
        assert "error: model 'nope' does not exist" in unescape(missing.text)


def test_a_model_page_pages_its_versions_and_shows_the_past(api: Api) -> None:
    with Ledger(api.settings) as ledger:
        ledger.models.create_model("big", reason="fill")
    for n in range(52):
        register(api, "big", metrics={"loss": 1 / (n + 1)}, content=str(n).encode())
        if n == 1:
            early = api.head()
    api.client.post("/models/big/versions/52/archive", headers=api.auth("admin"))
    with browser(api, "reader") as person:
        first = person.get("/ui/models/big")
        assert len(rows_of(first.text, "versions")) == 50
        assert "archived" in rows_of(first.text, "versions")[0]
        assert first.text.count('class="point"') == 52  # the chart covers every version
        second = person.get("/ui/models/big?page_token=3")
        assert [r.count("/ui/models/big/versions/") for r in rows_of(second.text, "versions")] == [
            1, 1]  # fmt: skip
        assert "/ui/models/big/versions/2" in second.text
        past = person.get(f"/ui/models/big?as_of={early}")
        assert past.status_code == 200 and 'id="as-of-banner"' in past.text
        assert len(rows_of(past.text, "versions")) == 2
        assert past.text.count('class="point"') == 2
        assert "Change" not in rows_of(past.text, "versions")[0]
        gone = person.get("/ui/models/later?as_of=1")
        assert gone.status_code == 404 and "did not exist at position 1" in gone.text
        assert person.get("/ui/models/big?page_token=x").status_code == 400


def test_compare_puts_versions_side_by_side_and_marks_differences(api: Api) -> None:
    register(api, "iris", tags={"stage": "dev", "team": "a"}, metrics={"acc": 0.9})
    register(api, "iris", tags={"stage": "prod", "team": "a"}, metrics={"acc": 0.95},
             content=b"other")  # fmt: skip
    with browser(api, "reader") as person:
        page = person.get("/ui/models/iris/compare?v=1&v=2")
        assert page.status_code == 200
        rows = rows_of(page.text, "compare")

        def row(label: str) -> str:
            return next(r for r in rows if re.search(rf"</span> {label}</th>|<th scope=\"row\">"
                                                      rf"{label}</th>", r))  # fmt: skip

        assert "(differs)" in row("acc") and "0.9" in row("acc") and "0.95" in row("acc")
        assert "(differs)" in row("stage") and "(differs)" not in row("team")
        assert "(differs)" in row("model.bin")  # another digest
        assert "(differs)" not in row("Flavor") and "(differs)" not in row("Status")
        assert 'href="/ui/models/iris/versions/2"' in page.text
        one = person.get("/ui/models/iris/compare?v=1")
        assert one.status_code == 400 and "two or more versions" in one.text
        assert person.get("/ui/models/iris/compare?v=1&v=9").status_code == 404


def test_each_action_as_a_contributor_records_who_and_why(api: Api) -> None:
    register(api, "iris")
    register(api, "iris")
    with browser(api, "contributor") as person:
        page = person.get("/ui/models/iris?change=2")
        assert "Change the model" in page.text and 'id="change-version"' in page.text
        base = "/ui/models/iris"
        steps = [
            (f"{base}/tags", {"key": "team", "value": "vision"}, "Model.Tagged"),
            (f"{base}/tags/delete", {"key": "team"}, "Model.Untagged"),
            (f"{base}/aliases", {"alias": "champion", "version": "2"}, "Model.AliasSet"),
            (f"{base}/aliases/delete", {"alias": "champion"}, "Model.AliasRemoved"),
            (f"{base}/versions/2/tags", {"key": "stage", "value": "prod"}, "ModelVersion.Tagged"),
            (f"{base}/versions/2/tags/delete", {"key": "stage"}, "ModelVersion.Untagged"),
            (f"{base}/versions/2/archive", {}, "ModelVersion.Archived"),
            (f"{base}/versions/2/restore", {}, "ModelVersion.Restored"),
            (f"{base}/versions/1/delete", {}, "ModelVersion.Deleted"),
        ]
        for url, fields, event_type in steps:
            reason = f"because of {event_type}"
            done = person.submit(url, {**fields, "reason": reason})
            assert done.status_code == 303, (url, done.text)
            assert done.headers["location"] == "/ui/models/iris"
            events = [e for e in audit(api, "model:iris") if e["reason"] == reason]
            assert [(e["event_type"], e["actor"]) for e in events] == [
                (event_type, "contributor-bot")], url  # fmt: skip
        here = "/ui/models/iris/versions/2"
        back = person.submit(f"{base}/versions/2/tags", {"key": "k", "reason": "r", "back": here})
        assert back.headers["location"] == "/ui/models/iris/versions/2"
        away = "https://evil.example/"
        elsewhere = person.submit(
            f"{base}/versions/2/tags", {"key": "j", "reason": "r", "back": away}
        )
        assert elsewhere.headers["location"] == "/ui/models/iris"
        sneaky = person.submit("/ui/models/iris:2/tags", {"key": "k", "reason": "r"})
        assert sneaky.status_code == 400 and "invalid model name" in sneaky.text
        after = person.get("/ui/models/iris?deleted=true")
        assert "deleted" in rows_of(after.text, "versions")[1]


def test_a_reader_sees_no_forms_and_is_refused(api: Api) -> None:
    register(api, "iris")
    with browser(api, "reader") as person:
        page = person.get("/ui/models/iris?change=1")
        assert 'method="post" action="/ui/models' not in page.text
        assert 'id="change-version"' not in page.text
        refused = person.submit("/ui/models/iris/tags", {"key": "a", "value": "b", "reason": "r"})
        assert refused.status_code == 403
        assert "has role reader; this needs contributor" in refused.text
        refused = person.submit("/ui/models/iris/versions/1/delete", {"reason": "r"})
        assert refused.status_code == 403
        assert all(e["event_type"] != "ModelVersion.Deleted" for e in audit(api, "model:iris"))


def test_a_write_without_the_csrf_token_is_refused(api: Api) -> None:
    register(api, "iris")
    with browser(api, "contributor") as person:
        person.get("/ui/models/iris")
        head = api.head()
        refused = person.client.post(
            "/ui/models/iris/versions/1/archive", data={"reason": "r", "csrf_token": "forged"}
        )
        assert refused.status_code == 403 and "CSRF check failed" in refused.text
        assert api.head() == head


def test_a_reason_is_required(api: Api) -> None:
    register(api, "iris")
    with browser(api, "contributor") as person:
        person.get("/ui/models/iris")
        head = api.head()
        refused = person.submit("/ui/models/iris/versions/1/archive", {"reason": "  "})
        assert refused.status_code == 400
        assert "error: a reason is required" in refused.text
        assert api.head() == head


def test_deleting_a_deployed_version_shows_the_clis_refusal(api: Api) -> None:
    register(api, "iris")
    admin = api.auth("admin")
    api.client.post("/endpoints", json={"name": "shop"}, headers=admin)
    api.client.post("/endpoints/shop/deployments", json={"deployment": "blue", "model": "iris:1"},
                    headers=admin)  # fmt: skip
    with browser(api, "contributor") as person:
        person.get("/ui/models/iris?change=1")
        refused = person.submit("/ui/models/iris/versions/1/delete", {"reason": "cleanup"})
        assert refused.status_code == 409
        refusal = re.search(r'<p class="error" id="refusal">error: ([^<]*)</p>', refused.text)
        assert refusal and "used by deployment" in refusal.group(1)
        archived = person.submit("/ui/models/iris/versions/1/archive", {"reason": "cleanup"})
        assert archived.status_code == 409


def test_user_strings_are_shown_as_text(api: Api) -> None:
    register(api, "iris", tags={"note": SCRIPT}, metrics={SCRIPT: 1.0})
    register(api, "iris", tags={"note": "plain"}, metrics={SCRIPT: 2.0})
    api.client.put("/models/iris/tags", json={"tags": {SCRIPT: SCRIPT}}, headers=api.auth("admin"))
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    with browser(api, "contributor") as person:
        for url in ("/ui/models", "/ui/models?tag=note%3D%3Cscript%3Ealert(1)%3C%2Fscript%3E",
                    "/ui/models/iris?change=1", "/ui/models/iris/compare?v=1&v=2"):  # fmt: skip
            page = person.get(url)
            assert page.status_code == 200, url
            assert SCRIPT not in page.text, url
            assert escaped in page.text or "&lt;script&gt;" in page.text, url
        chart = person.get("/ui/models/iris").text
        svg = re.search(r'<svg id="metric-chart".*?</svg>', chart, re.S)
        assert svg and "<script" not in svg.group(0) and "&lt;script&gt;" in svg.group(0)


def test_nul_bytes_huge_values_and_odd_names_are_refused_as_pages(api: Api) -> None:
    with Ledger(api.settings) as ledger:
        ledger.models.create_model("iris", reason="fill")
    with browser(api, "contributor") as person:
        head = api.head()
        for url in ("/ui/models?q=ir%00is", "/ui/models?tag=a%00=b", "/ui/models/ir%00is"):
            page = person.get(url)
            assert page.status_code in (400, 404), (url, page.text)
            assert "error: " in page.text and "Traceback" not in page.text
        person.get("/ui/models/iris")
        refusals = [
            person.submit("/ui/models/iris/tags", {"key": "a\0b", "value": "v", "reason": "r"}),
            person.submit("/ui/models/iris/tags", {"key": "k", "value": "v", "reason": "x" * 5000}),
            person.submit("/ui/models/iris/tags", {"key": "k", "value": "v" * 6000, "reason": "r"}),
            person.submit("/ui/models/..%2F..%2Fetc/tags", {"key": "k", "reason": "r"}),
        ]
        for refused in refusals:
            assert 400 <= refused.status_code < 500, refused.text
            assert "error: " in refused.text and "Traceback" not in refused.text
        assert api.head() == head  # nothing half-written
