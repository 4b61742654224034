"""The audit page through the app: filters as `ledger audit` has them, paging, links to
entities and to the registry as of each event, escaping, bad filters refused clearly."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.ledger import Ledger
from tests.conftest import Api
from tests.ui.ui_support import browser, views_caught_up

ROW = re.compile(r'<tr data-position="(\d+)" data-actor="([^"]*)" data-event="([^"]*)">')
NEXT = re.compile(r'<a rel="next" href="([^"]+)">Next page</a>')
SCRIPT = "<script>alert('owned')</script>"


def rows(page: str) -> list[tuple[int, str, str]]:
    """(position, actor, event type) of each row of table#audit."""
    assert '<table id="audit">' in page
    return [(int(p), html.unescape(a), e) for p, a, e in ROW.findall(page)]


@pytest.fixture
def middle(api: Api, model_dir: Path) -> str:
    """Alice registers iris:1 and creates endpoint shop (reason: a script); later Bob
    registers iris:2 and tags it. Returns a time between the two."""
    with Ledger(api.settings) as ledger:
        with ledger.on_behalf_of("alice", correlation_id="req-alice"):
            ledger.models.register_version("iris", model_dir, reason="first cut")
            ledger.endpoints.create("shop", "online", reason=SCRIPT)
        time.sleep(0.02)
        between = datetime.now(UTC).isoformat()
        time.sleep(0.02)
        with ledger.on_behalf_of("bob"):
            ledger.models.register_version("iris", model_dir, reason="second")
            ledger.models.set_tags("iris:2", {"stage": "dev"}, reason="try it")
        views_caught_up(api)
    return between


def test_the_audit_log_links_each_event_to_its_entity_and_the_past(api: Api, middle: str) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/audit")
        assert page.status_code == 200
        listed = rows(page.text)
        positions = [position for position, _, _ in listed]
        assert positions == sorted(positions) and len(positions) == len(set(positions))
        assert {"alice", "bob"} <= {actor for _, actor, _ in listed}
        assert '<a href="/ui/models/iris">iris</a>' in page.text
        assert '<a href="/ui/models/iris/versions/2">iris:2</a>' in page.text
        assert '<a href="/ui/endpoints/shop">shop</a>' in page.text
        for position in positions:
            assert f'<a href="/ui/models?as_of={position}">the registry as of here</a>' in page.text
        assert "<details>" in page.text and "first cut" in page.text
        assert "&#34;tags&#34;" in page.text or "&quot;tags&quot;" in page.text  # the details
        for label in ("Actor", "Event type", "Entity (KIND or KIND:NAME)", "Correlation id",
                      "Since (time, UTC)", "Until (time, UTC)", "After log position"):  # fmt: skip
            assert f">{label}</label>" in page.text


def test_each_filter_narrows_the_log_as_the_cli_does(api: Api, middle: str) -> None:
    with browser(api, "reader") as person:

        def events(**filters: str) -> list[tuple[int, str, str]]:
            page = person.get("/ui/audit", params=filters)
            assert page.status_code == 200, page.text
            return rows(page.text)

        everything = events()
        assert {actor for _, actor, _ in events(actor="alice")} == {"alice"}
        assert len(events(actor="alice")) == sum(actor == "alice" for _, actor, _ in everything)
        assert [e for _, _, e in events(event_type="Endpoint.Created")] == ["Endpoint.Created"]
        assert {e for _, _, e in events(event_type="Registered")} == {
            "Model.Registered", "ModelVersion.Registered"
        }  # fmt: skip
        model = events(entity="model:iris")
        assert len(model) == sum(a in ("alice", "bob") for _, a, _ in everything) - 1  # no shop
        assert [e for _, _, e in events(entity="endpoint")] == ["Endpoint.Created"]
        version = events(entity="model_version:iris:2")
        assert {a for _, a, _ in version} == {"bob"} and len(version) == 2
        assert events(correlation_id="req-alice") == events(actor="alice")
        assert {a for _, a, _ in events(since=middle)} == {"bob"}
        assert "bob" not in {a for _, a, _ in events(until=middle)}
        cut = everything[2][0]
        assert [p for p, _, _ in events(after=str(cut))] == [p for p, _, _ in everything[3:]]
        both = events(actor="bob", event_type="Tagged", entity="model_version:iris:2")
        assert [e for _, _, e in both] == ["ModelVersion.Tagged"]
        assert events(actor="nobody") == []
        nothing = person.get("/ui/audit", params={"actor": "nobody"})
        assert "No events match these filters." in nothing.text
        assert 'value="nobody"' in nothing.text  # the form keeps what was asked


def test_pages_follow_next_page_links_keeping_the_filters(api: Api, middle: str) -> None:
    with browser(api, "reader") as person:
        everything = rows(person.get("/ui/audit").text)
        url: str | None = "/ui/audit?limit=2"
        seen: list[tuple[int, str, str]] = []
        while url:
            page = person.get(url)
            assert page.status_code == 200
            found = rows(page.text)
            assert 0 < len(found) <= 2
            seen += found
            link = NEXT.search(page.text)
            url = html.unescape(link.group(1)) if link else None
        assert seen == everything
        first = person.get("/ui/audit?limit=1&actor=bob")
        link = NEXT.search(first.text)
        assert link is not None and "actor=bob" in html.unescape(link.group(1))
        second = person.get(html.unescape(link.group(1)))
        assert [a for _, a, _ in rows(second.text)] == ["bob"]
        assert rows(second.text)[0][0] > rows(first.text)[0][0]


def test_user_strings_are_shown_as_text(api: Api, middle: str) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/audit", params={"entity": "endpoint:shop", "actor": SCRIPT[:40]})
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        listed = person.get("/ui/audit", params={"entity": "endpoint:shop"})
        assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in listed.text
        assert "<script>alert" not in listed.text


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"entity": "widget:x"}, "error: unknown entity kind 'widget'; expected one of model"),
        ({"entity": ":iris"}, "error: an entity name needs its kind"),
        ({"event_type": "Exploded"}, "error: unknown event type 'Exploded'"),
        ({"since": "yesterday"}, "error: since 'yesterday' is not an ISO 8601 time"),
        ({"until": "2026-13-45"}, "error: until '2026-13-45' is not an ISO 8601 time"),
        ({"after": "-1"}, "error: after '-1' is not a log position"),
        ({"page_token": "garbage"}, "error: invalid page token"),
    ],
)
def test_a_bad_filter_is_refused_on_the_page_with_the_form(
    api: Api, filters: dict[str, str], message: str
) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/audit", params=filters)
        assert page.status_code == 400
        assert message in html.unescape(page.text)
        assert '<table id="audit">' in page.text and 'role="search"' in page.text
        assert rows(page.text) == []


def test_a_stranger_is_sent_to_sign_in_and_a_huge_limit_refused(api: Api) -> None:
    with browser(api) as person:
        answer = person.get("/ui/audit?actor=alice")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login?next=")
        person.sign_in(api.tokens["reader"])
        refused = person.get("/ui/audit?limit=100000")
        assert refused.status_code == 422 and "invalid form: limit" in refused.text


def test_monitor_events_can_be_filtered_by_kind_and_type(api: Api, model_dir: Path) -> None:
    with Ledger(api.settings) as ledger:
        ledger.models.register_version("iris", model_dir)
        ledger.endpoints.create("shop", "online")
        ledger.endpoints.deploy("shop", "blue", "iris:1")
        ledger.monitors.create("drift", endpoint="shop", reference="training", reason="watch")
        views_caught_up(api)
    with browser(api, "reader") as person:
        page = person.get("/ui/audit", params={"entity": "monitor:drift"})
        assert [e for _, _, e in rows(page.text)] == ["Monitor.Created"]
        assert '<a href="/ui/monitors/drift">drift</a>' in page.text
        by_type = person.get("/ui/audit", params={"event_type": "Created"})
        assert "Monitor.Created" in {e for _, _, e in rows(by_type.text)}
