"""The jobs pages through the app: the list and its filters, a job's page (DAG with each
step's state, snapshot, step logs), rerun and cancel, and the live stream of the DAG."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from ledger.api.ui.graphics.dag import DagStep, dag_svg, layers
from ledger.api.ui.pages import job_live
from ledger.job_logs import log_path
from ledger.ledger import Ledger
from tests.conftest import Api
from tests.executor_support import register, step, write_code
from tests.ui.ui_support import browser, views_caught_up

STEPS = [
    step("prepare", "write", outputs=["out"], inputs={"raw": "data:rows"}),
    step("train", "write", outputs=["out"], inputs={"table": "prepare.out"}, retries=1),
    step("report", "write", depends_on=["prepare"]),
    step("evaluate", "write", inputs={"model": "train.out"}, depends_on=["report"]),
]


def _pipelines(ledger: Ledger, tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("x,y\n1,2\n3,4\n")
    ledger.assets.register_data("rows", tmp_path / "rows.csv")
    code = write_code(tmp_path / "code")
    register(ledger, "train", code, STEPS, note="plain", value=1)
    register(ledger, "copy", code, [step("only", "write")])


@pytest.fixture
def job_id(api: Api, tmp_path: Path) -> str:
    """A job of pipeline train, submitted and not started, that the app's views show."""
    with Ledger(api.settings) as ledger:
        _pipelines(ledger, tmp_path)
        job_id = str(ledger.jobs.submit("train").id)
    views_caught_up(api)
    return job_id


def _half_run(ledger: Ledger, job_id: str) -> None:
    """prepare succeeded, train failed once (to be retried), report running."""
    runs = ledger.job_runs
    runs.start(job_id, "local", worker="w1")
    runs.start_step(job_id, "prepare", worker="w1")
    runs.complete_step(job_id, "prepare", outputs={"out": "sha256:" + "ab" * 32}, worker="w1")
    runs.start_step(job_id, "train", worker="w1")
    runs.fail_step(job_id, "train", 1, "out of memory", will_retry=True, worker="w1")
    runs.start_step(job_id, "report", worker="w1")


def _write_log(api: Api, job_id: str, step_name: str, text: str) -> None:
    """A step's log, where the step runner writes it."""
    path = log_path(api.settings.logs_dir, job_id, step_name, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _state(page: str, name: str) -> str:
    found = re.search(rf'<g class="step" data-step="{name}" data-state="(\w+)">', page)
    assert found, f"no step {name} on the DAG"
    return found.group(1)


def test_the_list_shows_jobs_newest_first_filtered_by_status_and_pipeline(
    api: Api, tmp_path: Path
) -> None:
    with Ledger(api.settings) as ledger:
        _pipelines(ledger, tmp_path)
        first = str(ledger.jobs.submit("train").id)
        copy = str(ledger.jobs.submit("copy").id)
        ledger.job_runs.fail(copy, "worker lost")
        last = str(ledger.jobs.submit("train", parameters={"value": 2}).id)
    views_caught_up(api)
    with browser(api, "reader") as person:
        page = person.get("/ui/jobs")
        assert page.status_code == 200
        table = page.text.split('<table id="jobs">')[1]
        assert [last, copy, first] == re.findall(r'href="/ui/jobs/([0-9a-f-]{36})"', table)
        assert "train:1" in table and "copy:1" in table and "tester" in table
        failed = person.get("/ui/jobs?status=failed").text
        assert copy in failed and first not in failed and last not in failed
        by_pipeline = person.get("/ui/jobs?pipeline=train").text
        assert first in by_pipeline and last in by_pipeline and copy not in by_pipeline
        exact = person.get("/ui/jobs?pipeline=copy:1&status=failed").text
        assert copy in exact and first not in exact
        assert "No jobs match these filters" in person.get("/ui/jobs?pipeline=nothing").text
        wrong = person.get("/ui/jobs?status=bogus")
        assert wrong.status_code == 400
        assert "error: unknown job status &#39;bogus&#39;" in wrong.text


def test_a_job_page_draws_the_dag_by_state_with_snapshot_and_logs(api: Api, tmp_path: Path) -> None:
    with Ledger(api.settings) as ledger:
        _pipelines(ledger, tmp_path)
        job_id = str(ledger.jobs.submit("train", parameters={"value": 7}).id)
        _half_run(ledger, job_id)
    _write_log(api, job_id, "prepare", "reading rows\nwrote 2 rows\n")
    _write_log(api, job_id, "train", "Traceback: out of memory\n")
    _write_log(api, job_id, "report", "early line\n" + "x" * 40_000 + "\nthe last line\n")
    views_caught_up(api)
    with browser(api, "reader") as person:
        page = person.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<span id="job-status" class="status-running">running</span>', html)
    assert '<svg id="job-dag"' in html
    states = {name: _state(html, name) for name in ("prepare", "train", "report", "evaluate")}
    assert states == {
        "prepare": "succeeded",
        "train": "retrying",
        "report": "running",
        "evaluate": "pending",
    }
    assert "✓ succeeded" in html and "↻ retrying" in html  # the state in words, not colour only
    edges = set(re.findall(r'data-from="(\w+)" data-to="(\w+)"', html))
    assert edges == {
        ("prepare", "train"),
        ("prepare", "report"),
        ("train", "evaluate"),
        ("report", "evaluate"),
    }
    assert 'marker-end="url(#job-dag-arrow)"' in html
    live = re.search(r'<div id="job-dag-live"([^>]*)>', html)
    assert live and f'sse-connect="/ui/jobs/{job_id}/live"' in live.group(1)
    assert 'hx-ext="sse"' in live.group(1) and 'sse-swap="dag"' in live.group(1)
    snapshot = html.split('<section id="snapshot"')[1].split("</section>")[0]
    assert "rows:1" in snapshot and "value" in snapshot and ">7<" in snapshot
    assert "note" in snapshot and "plain" in snapshot
    with Ledger(api.settings) as ledger:
        digest = ledger.assets.pipeline_version("train:1")["content"]["code"]["digest"]
    assert digest in snapshot
    logs = html.split('<section id="logs"')[1].split("</section>")[0]
    assert logs.index("prepare (attempt 1)") < logs.index("train (attempt 1)")
    assert "wrote 2 rows" in logs and "Traceback: out of memory" in logs
    assert "the last line" in logs and "early line" not in logs  # a long log: its end
    assert f"ledger job logs {job_id} --step report</code> prints it all" in logs


def test_a_finished_job_is_not_live_and_shows_what_never_ran(api: Api, tmp_path: Path) -> None:
    with Ledger(api.settings) as ledger:
        _pipelines(ledger, tmp_path)
        job_id = str(ledger.jobs.submit("train").id)
        _half_run(ledger, job_id)
        ledger.job_runs.fail(job_id, "step 'train' failed", worker="w1")
    views_caught_up(api)
    with browser(api, "contributor") as person:
        html = person.get(f"/ui/jobs/{job_id}").text
    assert "sse-connect" not in html and '<div id="job-dag-live">' in html
    assert _state(html, "prepare") == "succeeded" and _state(html, "train") == "failed"
    assert _state(html, "report") == "cancelled" and _state(html, "evaluate") == "skipped"
    assert "step &#39;train&#39; failed" in html
    assert 'id="rerun-form"' in html and 'id="cancel-form"' not in html  # over: no cancel


def test_a_contributor_reruns_and_cancels_with_a_reason(api: Api, job_id: str) -> None:
    with browser(api, "contributor") as person:
        page = person.get(f"/ui/jobs/{job_id}").text
        assert f'action="/ui/jobs/{job_id}/rerun"' in page
        assert f'action="/ui/jobs/{job_id}/cancel"' in page
        assert '<label for="rerun-reason">Reason</label>' in page
        blank = person.submit(f"/ui/jobs/{job_id}/rerun", {"reason": " "})
        assert blank.status_code == 400 and "error: a reason is required" in blank.text
        rerun = person.submit(f"/ui/jobs/{job_id}/rerun", {"reason": "same data, new seed"})
        assert rerun.status_code == 303
        new_id = rerun.headers["location"].removeprefix("/ui/jobs/")
        assert new_id != job_id
        new_page = person.get(rerun.headers["location"]).text
        assert f'<a class="mono" id="rerun-of" href="/ui/jobs/{job_id}">' in new_page
        cancel = person.submit(f"/ui/jobs/{job_id}/cancel", {"reason": "not needed"})
        assert cancel.status_code == 303 and cancel.headers["location"] == f"/ui/jobs/{job_id}"
        cancelled = person.get(f"/ui/jobs/{job_id}").text
        assert 'class="status-cancelled">cancelled</span>' in cancelled
        again = person.submit(f"/ui/jobs/{job_id}/cancel", {"reason": "twice"})
        assert again.status_code == 409 and "error: " in again.text and "cancel" in again.text
    with Ledger(api.settings) as ledger:
        (submitted,) = [e for e in ledger.jobs.history(new_id) if e.event == "Submitted"]
        assert (submitted.actor, submitted.reason) == ("contributor-bot", "same data, new seed")
        (cancel_event,) = [e for e in ledger.jobs.history(job_id) if e.event == "Cancelled"]
        assert (cancel_event.actor, cancel_event.reason) == ("contributor-bot", "not needed")


def test_a_reader_sees_no_actions_and_cannot_post_them(api: Api, job_id: str) -> None:
    with browser(api, "reader") as person:
        head = api.head()
        page = person.get(f"/ui/jobs/{job_id}").text
        assert "rerun-form" not in page and "cancel-form" not in page
        for action in ("rerun", "cancel"):
            refused = person.submit(f"/ui/jobs/{job_id}/{action}", {"reason": "try"})
            assert refused.status_code == 403
            assert "has role reader; this needs contributor" in refused.text
        assert api.head() == head


def test_actions_need_the_csrf_token(api: Api, job_id: str) -> None:
    with browser(api, "admin") as person:
        head = api.head()
        person.get(f"/ui/jobs/{job_id}")
        person.csrf = "forged"
        for action in ("rerun", "cancel"):
            refused = person.submit(f"/ui/jobs/{job_id}/{action}", {"reason": "try"})
            assert refused.status_code == 403 and "CSRF check failed" in refused.text
        assert api.head() == head


def test_user_strings_are_escaped(api: Api, tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    with Ledger(api.settings) as ledger:
        _pipelines(ledger, tmp_path)
        job_id = str(ledger.jobs.submit("train", parameters={"note": evil}).id)
        _half_run(ledger, job_id)
        ledger.job_runs.fail(job_id, f"broke: {evil}", worker="w1")
    _write_log(api, job_id, "report", f"printed {evil}\n")
    views_caught_up(api)
    with browser(api, "reader") as person:
        html = person.get(f"/ui/jobs/{job_id}").text
        listing = person.get(f"/ui/jobs?pipeline={evil}").text
    assert "<script>alert" not in html and "<script>alert" not in listing
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"broke: {escaped}" in html  # the error
    assert f"printed {escaped}" in html  # the log
    assert f'<span class="value">{escaped}</span>' in html  # the parameter
    assert f'value="{escaped}"' in listing  # the filter, shown back


def test_unknown_jobs_and_bad_ids_are_refused_as_pages(api: Api) -> None:
    with browser(api, "reader") as person:
        missing = person.get("/ui/jobs/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and "does not exist" in missing.text
        bad = person.get("/ui/jobs/not-a-job")
        assert bad.status_code == 400 and "error: invalid job id" in bad.text
        assert person.get("/ui/jobs/not-a-job/live").status_code == 400


def test_a_batch_job_has_a_page(api: Api, tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "rows.csv").write_text("x,y\n1,2\n3,4\n")
    with Ledger(api.settings) as ledger:
        ledger.models.register_version("clf", model_dir, flavor="sklearn")
        ledger.endpoints.create("nightly", "batch")
        ledger.endpoints.deploy("nightly", "main", "clf:1")
        ledger.endpoints.set_traffic("nightly", {"main": 100})
        job_id = str(ledger.batch_jobs.invoke("nightly", tmp_path / "rows.csv").id)
        ledger.batch_jobs.start(job_id, "w1", may_take=lambda job: True)
        ledger.batch_jobs.progress(job_id, "w1", 1)
    views_caught_up(api)
    with browser(api, "reader") as person:
        listing = person.get("/ui/jobs").text
        assert f'href="/ui/jobs/{job_id}"' in listing and "batch:nightly" in listing
        html = person.get(f"/ui/jobs/{job_id}").text
    assert "<h1>Batch job" in html and 'href="/ui/endpoints/nightly"' in html
    assert 'href="/ui/models/clf/versions/1"' in html
    assert '<progress id="batch-progress" max="2" value="1">' in html
    assert "rows.csv" in html and 'class="status-running">running<' in html


def _events(body: str) -> list[tuple[str, str]]:
    """The (event, data) pairs of an SSE body, data lines joined as EventSource does."""
    found = []
    for block in body.split("\n\n"):
        lines = block.split("\n")
        names = [line[7:] for line in lines if line.startswith("event: ")]
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if names:
            found.append((names[0], data))
    return found


def test_the_live_stream_sends_the_dag_on_each_change_and_ends_with_the_job(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_live, "KEEPALIVE_S", 0.3)
    with Ledger(api.settings) as ledger:
        _pipelines(ledger, tmp_path)
        job_id = str(ledger.jobs.submit("copy").id)
        ledger.job_runs.start(job_id, "local", worker="w1")
    views_caught_up(api)

    def run_the_job() -> None:
        with Ledger(api.settings) as ledger:
            time.sleep(1.0)  # quiet: the stream keeps the connection alive meanwhile
            ledger.job_runs.start_step(job_id, "only", worker="w1")
            time.sleep(0.6)
            _write_log(api, job_id, "only", "step says hi\n")
            time.sleep(1.2)
            ledger.job_runs.complete_step(job_id, "only", worker="w1")
            ledger.job_runs.succeed(job_id, worker="w1")

    runner = threading.Thread(target=run_the_job)
    with browser(api, "reader") as person:
        runner.start()
        response = person.get(f"/ui/jobs/{job_id}/live")  # returns once the stream ends
        runner.join()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    body = response.text
    assert ": keepalive" in body
    events = _events(body)
    assert events[-1] == ("end", job_id)
    dags = [data for name, data in events if name == "dag"]
    states = [_state(data, "only") for data in dags]
    assert states[0] == "pending" and states[-1] == "succeeded" and "running" in states
    assert len(states) >= 3
    assert any("step says hi" in data for data in dags)  # the logs refresh too
    final = dags[-1]
    assert '<svg id="job-dag"' in final and 'hx-swap-oob="true"' in final
    assert 'class="status-succeeded">succeeded</span>' in final
    assert "job-cancel" not in final  # a reader has no cancel form to take away


def test_the_live_stream_of_a_finished_job_sends_it_once_and_ends(api: Api, tmp_path: Path) -> None:
    with Ledger(api.settings) as ledger:
        _pipelines(ledger, tmp_path)
        job_id = str(ledger.jobs.submit("copy").id)
        ledger.jobs.cancel(job_id, reason="not needed")
    views_caught_up(api)
    with browser(api, "reader") as person:
        body = person.get(f"/ui/jobs/{job_id}/live").text
    events = _events(body)
    assert [name for name, _ in events] == ["dag", "end"]
    assert _state(events[0][1], "only") == "skipped"


def test_the_live_stream_needs_a_sign_in(api: Api, tmp_path: Path) -> None:
    with browser(api) as stranger:
        response = stranger.get("/ui/jobs/00000000-0000-0000-0000-000000000000/live")
    assert response.status_code == 303 and "/ui/login" in response.headers["location"]


def test_the_dag_is_layered_by_dependencies_and_escapes_names() -> None:
    steps = [
        DagStep("d", ("b", "c", "ghost"), "pending"),
        DagStep("a", (), "succeeded"),
        DagStep("c", ("a",), "running"),
        DagStep("b", ("a",), "failed"),
        DagStep("loop", ("loop",), "pending"),
    ]
    assert layers(steps) == [["a", "loop"], ["c", "b"], ["d"]]
    svg = str(dag_svg([DagStep('<i a="1">&', (), "pending")], "<title>"))
    assert '<i a="1">' not in svg and '<title id="job-dag-title">&lt;title&gt;</title>' in svg
    assert 'data-step="&lt;i a=&quot;1&quot;&gt;&amp;"' in svg
