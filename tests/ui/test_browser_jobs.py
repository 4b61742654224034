"""A running job's page in a real browser: its DAG turns green live, step by step, while a
worker runs the job on the local executor (no reload: the page's SSE connection)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from executors.worker import Worker
from tests.executor_support import register, step, wait_for_step, write_code
from tests.ui.browser_support import PAGE_WAIT_S, Screenshots, Site, sign_in

STEPS = [
    step("prepare", "sleepy", outputs=["out"]),
    step("train", "sleepy", outputs=["out"], inputs={"table": "prepare.out"}),
    step("report", "sleepy", outputs=["out"], inputs={"table": "prepare.out"}),
    step("evaluate", "sleepy", outputs=["out"], inputs={"model": "train.out"}),
]


def _step(page: Any, name: str, state: str = "") -> Any:
    where = f'#job-dag .step[data-step="{name}"]'
    return page.locator(f'{where}[data-state="{state}"]' if state else where)


def _wait_until(page: Any, name: str, state: str) -> None:
    _step(page, name, state).wait_for(timeout=(PAGE_WAIT_S + 30) * 1000)


def test_a_running_jobs_dag_turns_green_live(
    page: Any, site: Site, screenshots: Screenshots, tmp_path: Path
) -> None:
    with site.ledger() as ledger:
        register(ledger, "slow-train", write_code(tmp_path / "code"), STEPS, sleep_s=2.0)
        job_id = str(ledger.jobs.submit("slow-train", reason="watch it run").id)
    sign_in(page, site, "contributor")
    worker = Worker(site.store.settings(executor="local"))
    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(worker.run_job(job_id)))
    runner.start()
    try:
        with site.ledger() as ledger:
            wait_for_step(ledger, job_id, "prepare")
        page.goto(f"/ui/jobs/{job_id}")
        page.evaluate("window.sameDocument = true")  # gone if the page reloaded
        assert page.get_by_role("heading", level=1).inner_text().startswith("Job")
        live = page.locator("#job-dag-live")
        assert live.get_attribute("sse-connect") == f"/ui/jobs/{job_id}/live"
        # The server's views may not have the step's start yet when the page loads (its
        # follower polls on SQLite): the live stream brings it. prepare runs for 2 s;
        # evaluate is 4 s away.
        _step(page, "prepare").and_(page.locator(':not([data-state="pending"])')).wait_for()
        assert _step(page, "evaluate", "pending").count() == 1
        assert page.locator("#cancel-form").is_visible()
        screenshots.take(page, "job-running")

        _wait_until(page, "prepare", "succeeded")
        _wait_until(page, "train", "succeeded")
        assert _step(page, "evaluate", "succeeded").count() == 0  # one step at a time
        _wait_until(page, "report", "succeeded")
        _wait_until(page, "evaluate", "succeeded")
        page.locator("#job-status", has_text="succeeded").wait_for()
        assert "✓ succeeded" in _step(page, "evaluate").text_content()
        assert page.locator("#dag-summary").inner_text().startswith("4 of 4 steps succeeded")
        assert page.evaluate("window.sameDocument") is True
        assert page.locator("#cancel-form").count() == 0  # over: nothing to cancel
        assert page.locator("#rerun-form").is_visible()
        screenshots.take(page, "job-succeeded")
        page.get_by_role("link", name="Jobs", exact=True).click()
        page.locator("#jobs").get_by_role("link", name=job_id).wait_for()
        assert "succeeded" in page.locator("#jobs tbody tr").first.inner_text()
        screenshots.take(page, "jobs")
    finally:
        runner.join(timeout=120)
        worker.close()
    assert outcome == ["succeeded"]
