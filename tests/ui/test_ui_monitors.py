"""The monitor pages through the app: every monitor with its latest verdicts and open
alerts; a monitor's drift per feature over its windows (SVG charts against thresholds),
its windows and alerts; deleting one (deployers, with a reason)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from ledger.api.ui.graphics.drift_chart import DriftPoint, DriftSeries, drift_chart
from ledger.domain.monitor import ColumnResult
from ledger.ledger import Ledger
from tests.conftest import Api
from tests.ui.ui_support import Browser, browser, views_caught_up

# x0 by a distance (drift above 0.1), x1 by a test's p-value (drift below 0.05).
X0 = [0.02, 0.3, 0.25, 0.03]
X1 = [0.5, 0.4, 0.01, 0.6]
DASH = "\u2013"  # the pages' en dash: a range, or nothing to show
CHART = re.compile(r'<svg class="drift-chart".*?</svg>', re.S)


def _result(column: str, metric: str, value: float | None, threshold: float) -> ColumnResult:
    if value is None:
        verdict = "insufficient_data"
    elif metric == "ks":
        verdict = "drift" if value < threshold else "no_drift"
    else:
        verdict = "drift" if value > threshold else "no_drift"
    return {"signal": "data_drift", "column": column, "metric": metric, "value": value,
            "threshold": threshold, "verdict": verdict, "samples": 500}  # fmt: skip


def record_windows(ledger: Ledger, name: str, extra: list[ColumnResult] | None = None) -> None:
    """Four hourly windows: x0 drifts in the 2nd and 3rd, x1 in the 3rd; the dataset
    drifts when both do; a null-rate breach of x1 in the 3rd stays open."""
    for hour, (x0, x1) in enumerate(zip(X0, X1, strict=True)):
        results = [_result("x0", "wasserstein", x0, 0.1), _result("x1", "ks", x1, 0.05)]
        drifting = [r["column"] for r in results if r["verdict"] == "drift"]
        results.append(_result("*", "drift_share", len(drifting) / 2, 0.75))
        quality = hour >= 2
        results.append({"signal": "data_quality", "column": "x1", "metric": "null_rate",
                        "value": 0.3 if quality else 0.0, "threshold": 0.05,
                        "verdict": "breach" if quality else "ok", "samples": 500})  # fmt: skip
        if hour == 0:
            results += extra or []
        ledger.monitors.record_window(
            name,
            window_start=f"2026-12-01T{hour:02}:00:00+00:00",
            window_end=f"2026-12-01T{hour + 1:02}:00:00+00:00",
            rows=500 + hour,
            results=results,
            drift_shares={"data_drift": len(drifting) / 2},
            breaches={"data_drift": drifting, "data_quality": ["x1"] if quality else []},
        )


@pytest.fixture
def monitored(api: Api, model_dir: Path) -> str:
    """Endpoint shop serving iris:1, monitor drift on it with four windows recorded."""
    with Ledger(api.settings) as ledger:
        ledger.models.register_version("iris", model_dir)
        ledger.endpoints.create("shop", "online")
        ledger.endpoints.deploy("shop", "blue", "iris:1")
        thresholds: Any = {"x0": {"metric": "wasserstein", "value": 0.1},
                           "x1": {"metric": "ks", "value": None}}  # fmt: skip
        ledger.monitors.create("drift", endpoint="shop", reference="data:train:1", every_s=7200,
                               thresholds=thresholds, features=["x0", "x1"])  # fmt: skip
        ledger.monitors.create("quiet", endpoint="shop", deployment="blue", reference="training")
        record_windows(ledger, "drift", [_result("<b>bad</b>", "psi", 0.5, 0.2)])
        views_caught_up(api)
    return "drift"


def _row(page: str, name: str) -> str:
    table = page.split('<table id="monitors">')[1].split("</table>")[0]
    [row] = [r for r in table.split("<tr>") if f'href="/ui/monitors/{name}"' in r]
    return row


def test_the_list_shows_each_monitor_with_its_latest_status_and_alerts(
    api: Api, monitored: str
) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/monitors")
        assert page.status_code == 200 and page.text.count("<h1>") == 1
        drift = html.unescape(_row(page.text, "drift"))
        assert '<a href="/ui/endpoints/shop">shop</a>' in drift
        assert "x0, x1" in drift and "every 2 hours" in drift and "data:train:1" in drift
        assert "x0: wasserstein > 0.1" in drift
        assert "x1: ks p < the metric's default" in drift
        assert "data_drift: ok" in drift and "data_quality: breach" in drift  # the latest
        assert "data_quality: x1" in drift  # the open alert
        assert ">4<" in drift  # windows
        quiet = html.unescape(_row(page.text, "quiet"))
        assert ">blue<" in quiet and "no window yet" in quiet and "none" in quiet


def test_a_monitor_page_charts_each_features_drift_against_its_threshold(
    api: Api, monitored: str
) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/monitors/drift")
        assert page.status_code == 200 and page.text.count("<h1>") == 1
        charts = {
            re.search(r'data-column="([^"]*)"', chart).group(1): chart  # type: ignore[union-attr]
            for chart in CHART.findall(page.text)
        }
        assert set(charts) == {"x0", "x1", "*", "&lt;b&gt;bad&lt;/b&gt;"}
        for chart in charts.values():
            assert 'class="threshold" stroke-dasharray="6 4"' in chart
            assert 'role="img"' in chart and "<title id=" in chart
        assert charts["x0"].count('class="point over"') == 2  # 0.3 and 0.25 over 0.1
        assert charts["x0"].count('class="point"') == 2
        assert charts["x1"].count('class="point over"') == 1  # p = 0.01 under 0.05
        assert "p-value, drift below the threshold" in charts["x1"]
        assert 'class="score"' in charts["x0"]
        assert "<b>bad</b>" not in page.text  # a column's name is text, in the SVG too
        two = person.get("/ui/monitors/drift?limit=2").text
        assert 'id="window-limit" name="limit" type="number" min="1" max="1000" value="2"' in two
        x0 = next(c for c in CHART.findall(two) if 'data-column="x0"' in c)
        assert x0.count("<circle") == 2 and x0.count('class="point over"') == 1  # 0.25 only


def test_a_monitor_page_lists_windows_and_alerts(api: Api, monitored: str) -> None:
    with browser(api, "reader") as person:
        page = person.get("/ui/monitors/drift").text
        windows = page.split('<table id="windows">')[1].split("</table>")[0]
        body = windows.split("<tbody>")[1]
        assert body.count("<tr>") == 4
        latest, third = body.split("<tr>")[1:3]
        assert f"2026-12-01T03:00:00+00:00 {DASH} 2026-12-01T04:00:00+00:00" in latest
        assert "503" in latest and "no drift" in latest and "p = 0.6" in latest
        assert "p = 0.01" in third and ">drift<" in third and "0.25" in third
        assert "data_quality: x1 null_rate 0.3" in third
        alerts = page.split('<table id="alerts">')[1].split("</table>")[0]
        rows = [html.unescape(r) for r in alerts.split("<tbody>")[1].split("<tr>")[1:]]
        events = [re.findall(r"<td>([^<]*)</td>", r)[:3] for r in rows]
        assert events == [
            ["DriftResolved", "data_drift", DASH],
            ["DataQualityBreached", "data_quality", "x1"],
            ["DriftDetected", "data_drift", "x0"],
        ]
        resolved, quality, drift = rows
        assert "alert-resolution" in resolved
        assert "alert-open" in quality and "0.3" in quality and "0.05" in quality
        assert "alert-resolved" in drift and ">0.3 <" in drift and ">0.1<" in drift


def test_readers_see_no_delete_and_cannot_post_one(api: Api, monitored: str) -> None:
    with browser(api, "contributor") as person:
        page = person.get("/ui/monitors/drift")
        assert "Delete monitor" not in page.text and 'id="delete-monitor"' not in page.text
        refused = person.submit("/ui/monitors/drift/delete", {"reason": "mine"})
        assert refused.status_code == 403 and "this needs deployer" in refused.text


def test_deployers_delete_a_monitor_with_a_reason(api: Api, monitored: str) -> None:
    with browser(api, "deployer") as person:
        page = person.get("/ui/monitors/drift")
        assert 'id="delete-monitor"' in page.text and 'for="delete-monitor-reason"' in page.text
        forged = person.client.post(
            "/ui/monitors/drift/delete", data={"csrf_token": "forged", "reason": "x"}
        )
        assert forged.status_code == 403 and "CSRF check failed" in forged.text
        blank = person.submit("/ui/monitors/drift/delete", {"reason": "  "})
        assert blank.status_code == 400 and "error: a reason is required" in blank.text
        done = person.submit("/ui/monitors/drift/delete", {"reason": "model retired"})
        assert done.status_code == 303 and done.headers["location"] == "/ui/monitors"
        listed = person.get("/ui/monitors").text
        assert 'href="/ui/monitors/drift"' not in listed and 'href="/ui/monitors/quiet"' in listed
        gone = person.get("/ui/monitors/drift")
        assert gone.status_code == 404
        assert "error: monitor &#39;drift&#39; does not exist" in gone.text
        again = person.submit("/ui/monitors/drift/delete", {"reason": "again"})
        assert again.status_code == 409 and "is deleted" in again.text
        trail = person.get("/ui/audit", params={"entity": "monitor:drift", "actor": "deployer-bot"})
        assert "Monitor.Deleted" in trail.text and "model retired" in trail.text


def test_an_unknown_monitor_and_none_at_all(api: Api) -> None:
    assert Browser(api).get("/ui/monitors").status_code == 303  # not signed in
    with browser(api, "reader") as person:
        assert "No monitors yet." in person.get("/ui/monitors").text
        missing = person.get("/ui/monitors/nope")
        assert missing.status_code == 404
        assert "error: monitor &#39;nope&#39; does not exist" in missing.text
        assert person.get("/ui/monitors/nope?limit=0").status_code == 422


def test_the_chart_escapes_strings_breaks_at_gaps_and_draws_one_window() -> None:
    points = [
        DriftPoint("2026-12-01T01:00:00+00:00", 0.2, 0.1, True),
        DriftPoint('2026-12-01T02:00"<x>', None, 0.1, False),
        DriftPoint("2026-12-01T03:00:00+00:00", 0.05, 0.1, False),
    ]
    series = DriftSeries("data_drift", '"><script>x</script>', "psi", False, points)
    chart = str(drift_chart(series, 'c"1'))
    assert "<script>" not in chart and "&lt;script&gt;" in chart
    assert 'id="c&quot;1"' in chart
    assert 'class="score"' not in chart  # each value stands alone between the gap
    assert chart.count("<circle") == 2
    single = str(drift_chart(DriftSeries("data_drift", "x", "ks", True, points[:1]), "c2"))
    assert single.count("<circle") == 1 and 'class="threshold"' in single
