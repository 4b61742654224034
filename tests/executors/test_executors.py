"""Pipelines and jobs on the local and Ray executors, driven by the worker.

Real Ray (one local instance per session), real NATS JetStream, both stores.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from executors.graph import TaskCall
from executors.plugins import executor_names, load_executor
from executors.worker import Worker
from ledger.bus.relay import Relay
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from projections.views import Views
from tests.bus_support import in_background
from tests.conftest import Api, Cli, StoreFactory, assert_user_error
from tests.executor_support import (
    events,
    register,
    step,
    wait_for_step,
    wait_until_finished,
    write_code,
)
from tests.paths import REPO

EXAMPLE = REPO / "examples" / "iris"


def _run_example(ledger: Ledger) -> str:
    ledger.assets.register_data("iris", EXAMPLE / "iris.csv")
    spec = {k: v for k, v in _example_spec().items() if k not in ("name", "code")}
    ledger.assets.register_pipeline("iris-train", spec, code_dir=EXAMPLE)
    job = ledger.jobs.submit("iris-train", parameters={"n_estimators": 20})
    return str(job.id)


def _example_spec() -> dict[str, Any]:
    import yaml

    spec: dict[str, Any] = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    return spec


def _assert_example_succeeded(ledger: Ledger, views: Views, job_id: str) -> None:
    job = wait_until_finished(ledger, job_id, timeout=120)
    assert job.status == "succeeded", job.error
    assert [s["status"] for s in job.steps.values()] == ["completed"] * 5
    (model_ref,) = job.steps["register"]["models"]
    version = ledger.models.get_version(model_ref)
    assert version.spec["lineage"] == {
        "job": job_id,
        "pipeline": "iris-train:1",
        "data": ["iris:1"],
    }
    assert version.spec["metrics"]["accuracy"] > 0.8
    assert job.steps["evaluate"]["metrics"]["forest_accuracy"] > 0.8
    views.updater.catch_up()
    upstream = set(views.lineage(f"model:{model_ref}", depth=3).nodes)
    assert {f"job:{job_id}", "data:iris:1", "pipeline:iris-train:1"} <= upstream


def test_example_runs_on_the_local_executor_through_the_in_process_bus(
    store: StoreFactory,
) -> None:
    settings = store.settings(executor="local")
    worker = Worker(settings)
    ledger, views = Ledger(settings), Views.open(settings)
    try:
        with in_background(worker.run):
            job_id = _run_example(ledger)
            _assert_example_succeeded(ledger, views, job_id)
        assert ledger.jobs.get(job_id).executor == "local"
    finally:
        ledger.close()
        views.close()


@pytest.mark.slow
def test_example_runs_on_ray_through_nats_and_independent_steps_overlap(
    nats_store: StoreFactory, ray_started: None, tmp_path: Path
) -> None:
    settings = nats_store.settings(executor="ray")
    worker = Worker(settings)
    ledger, views = Ledger(settings), Views.open(settings)
    try:
        with in_background(worker.run, Relay(settings).run):
            job_id = _run_example(ledger)
            _assert_example_succeeded(ledger, views, job_id)
            # Two independent steps that wait for each other: they can only both succeed
            # if Ray runs them at the same time.
            code = write_code(tmp_path / "code")
            (markers := tmp_path / "markers").mkdir()
            meeting = [step(n, "meet", outputs=["out"]) for n in ("left", "right")]
            register(ledger, "pair", code, meeting, marker_dir=str(markers), meeting="left,right")
            pair = str(ledger.jobs.submit("pair").id)
            job = wait_until_finished(ledger, pair, timeout=120)
        assert job.status == "succeeded", job.error
        assert job.executor == "ray"
        history = ledger.jobs.history(pair)
        started = [e.timestamp for e in history if e.event == "StepStarted"]
        completed = [e.timestamp for e in history if e.event == "StepCompleted"]
        assert max(started) < min(completed)  # both were running at once
    finally:
        ledger.close()
        views.close()


def test_step_retries_then_succeeds_and_a_failure_fails_the_job(
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    code = write_code(tmp_path / "code")
    markers = tmp_path / "markers"
    markers.mkdir()
    steps = [
        step("first", "flaky", outputs=["out"], retries=1),
        step("then", "write", outputs=["out"], inputs={"previous": "first.out"}),
    ]
    register(ledger, "flaky", code, steps, marker_dir=str(markers))
    worker = Worker(store.settings(executor="local"))
    try:
        job_id = str(ledger.jobs.submit("flaky").id)
        assert worker.run_job(job_id) == "succeeded"
        job = ledger.jobs.get(job_id)
        assert job.steps["first"]["attempt"] == 2
        (failure,) = events(ledger, job_id, "StepFailed")
        assert failure["attempt"] == 1 and failure["will_retry"] is True
        assert "flaky failure on the first attempt" in failure["error"]
        log = Path(failure["log_uri"].removeprefix("file://")).read_text()
        assert "Traceback" in log and "RuntimeError" in log

        register(ledger, "broken", code, [step("only", "broken", retries=2)])
        broken_id = str(ledger.jobs.submit("broken").id)
        assert worker.run_job(broken_id) == "failed"
        job = ledger.jobs.get(broken_id)
        assert job.status == "failed"
        assert "step 'only' failed after 3 attempt(s): ValueError: always broken" in job.error
        log = Path(events(ledger, broken_id, "StepFailed")[0]["log_uri"][7:]).read_text()
        assert "about to fail" in log and "ValueError: always broken" in log

        register(ledger, "exits", code, [step("only", "exits")])
        exits_id = str(ledger.jobs.submit("exits").id)
        assert worker.run_job(exits_id) == "failed"
        assert "the step called sys.exit(3)" in ledger.jobs.get(exits_id).error
        assert [e["will_retry"] for e in events(ledger, broken_id, "StepFailed")] == [
            True,
            True,
            False,
        ]
    finally:
        worker.close()


def test_a_step_that_runs_too_long_is_stopped(
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    code = write_code(tmp_path / "code")
    spec = [step("slow", "sleepy", outputs=["out"], timeout_s=1.5)]
    register(ledger, "slow", code, spec, sleep_s=0.1)  # the timeout is per attempt
    register(ledger, "slower", code, spec, sleep_s=3.0)
    worker = Worker(store.settings(executor="local"))
    try:
        assert worker.run_job(str(ledger.jobs.submit("slow").id)) == "succeeded"
        job_id = str(ledger.jobs.submit("slower").id)
        assert worker.run_job(job_id) == "failed"
        assert "timed out after 1.5 s" in ledger.jobs.get(job_id).error
    finally:
        worker.close()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_cancel_stops_the_running_steps(
    executor: str,
    ledger: Ledger,
    store: StoreFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_started")
    code = write_code(tmp_path / "code")
    markers = tmp_path / "markers"
    markers.mkdir()
    command = [
        sys.executable,
        "-c",
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)",
        "{params.marker_dir}/shell.pid",
    ]
    steps = [
        step("python", "spin"),
        {"name": "shell", "command": command},
        step("never", "write", depends_on=["python", "shell"]),
    ]
    register(ledger, "endless", code, steps, marker_dir=str(markers))
    worker = Worker(store.settings(executor=executor))
    outcome: list[str] = []
    try:
        job_id = str(ledger.jobs.submit("endless", executor=executor).id)
        runner = threading.Thread(target=lambda: outcome.append(worker.run_job(job_id)))
        runner.start()
        pids = [markers / "python.pid", markers / "shell.pid"]
        deadline = time.monotonic() + 30
        while not all(p.exists() and p.read_text() for p in pids):
            assert time.monotonic() < deadline, "the steps never started"
            time.sleep(0.02)
        assert ledger.jobs.cancel(job_id, reason="not needed").status == "cancelling"
        runner.join(60)
        assert outcome == ["cancelled"]
        job = ledger.jobs.get(job_id)
        assert job.status == "cancelled" and job.executor == executor
        assert "never" not in job.steps
        shell_pid = int(pids[1].read_text())
        deadline = time.monotonic() + 30
        while _alive(shell_pid):
            assert time.monotonic() < deadline, "the command step still runs"
            time.sleep(0.05)
        if executor == "ray":  # Ray kills the process of a Python step too
            python_pid = int(pids[0].read_text())
            while _alive(python_pid):
                assert time.monotonic() < deadline, "the Python step still runs"
                time.sleep(0.05)
    finally:
        worker.close()


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_resumed_and_records_each_output_once(
    store: StoreFactory, tmp_path: Path
) -> None:
    env = {**os.environ, **store.env(), "LEDGER_EXECUTOR": "local", "LEDGER_WORKER_LEASE_S": "1"}
    settings = store.settings(executor="local", worker_lease_s=1)
    ledger = Ledger(settings)
    code = write_code(tmp_path / "code")
    steps = [
        step("first", "write", outputs=["out"]),
        step("middle", "sleepy", outputs=["out"], inputs={"previous": "first.out"}, retries=1),
        step("last", "register", inputs={"source": "middle.out"}),
    ]
    register(ledger, "resumable", code, steps, sleep_s=2.0)
    job_id = str(ledger.jobs.submit("resumable").id)
    first = _start_worker(env, tmp_path / "worker1.log")
    try:
        wait_for_step(ledger, job_id, "middle")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        assert ledger.jobs.get(job_id).status == "running"
        second = _start_worker(env, tmp_path / "worker2.log")
        try:
            job = wait_until_finished(ledger, job_id, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert job.status == "succeeded", job.error
    (taken,) = events(ledger, job_id, "TakenOver")
    assert taken["worker"] != taken["previous_worker"]
    completed = [e["step"] for e in events(ledger, job_id, "StepCompleted")]
    assert sorted(completed) == ["first", "last", "middle"]  # each output recorded once
    (interrupted,) = events(ledger, job_id, "StepFailed")
    assert interrupted["step"] == "middle" and "interrupted" in interrupted["error"]
    assert job.steps["middle"]["attempt"] == 2
    assert ledger.models.get("toy").latest_version == 1
    ledger.close()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "ledger"), "worker"], env=env, stdout=out, stderr=out
        )


def test_each_step_runs_with_its_environment_recorded_in_the_snapshot_and_lineage(
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    from ledger.specs import EnvironmentSpec

    ledger.assets.register_environment("english", EnvironmentSpec(variables={"GREETING": "hello"}))
    ledger.assets.register_environment("spanish", EnvironmentSpec(variables={"GREETING": "hola"}))
    shout = "import os, sys; open(sys.argv[1], 'w').write(os.environ['GREETING'])"
    steps = [
        {"name": "say", "command": [sys.executable, "-c", shout, "{outputs.out}"],
         "outputs": ["out"]},
        step("model", "greet", environment="spanish:1"),
    ]  # fmt: skip
    spec = {"environment": "english", "steps": steps}
    ledger.assets.register_pipeline("greetings", spec, code_dir=write_code(tmp_path / "code"))
    worker = Worker(store.settings())
    try:
        job_id = str(ledger.jobs.submit("greetings").id)
        assert worker.run_job(job_id) == "succeeded", ledger.jobs.get(job_id).error
    finally:
        worker.close()
    job = ledger.jobs.get(job_id)
    assert job.snapshot["environment"] == "english:1"
    assert job.snapshot["environments"] == {"say": "english:1", "model": "spanish:1"}
    said = job.steps["say"]["outputs"]["out"].removeprefix("sha256:")
    assert ledger.artifacts.blob_path(said).read_text() == "hello"
    (model,) = job.steps["model"]["models"]
    version = ledger.models.get_version(model)
    assert version.spec["lineage"]["environment"] == "spanish:1"
    greeting = version.spec["files"][0]["sha256"]
    assert ledger.artifacts.blob_path(greeting).read_text() == "hola"


def test_rerun_repeats_the_snapshot_with_the_same_code_and_outputs(
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    code = write_code(tmp_path / "code")
    register(ledger, "single", code, [step("only", "write", outputs=["out"])], value=3)
    worker = Worker(store.settings(executor="local"))
    try:
        original = str(ledger.jobs.submit("single", parameters={"value": 5}).id)
        assert worker.run_job(original) == "succeeded"
        (code / "testing_steps.py").write_text("raise ImportError('the code changed')\n")
        rerun = ledger.jobs.rerun(original, reason="reproduce")
        assert worker.run_job(str(rerun.id)) == "succeeded"
    finally:
        worker.close()
    first, second = ledger.jobs.get(original), ledger.jobs.get(str(rerun.id))
    assert second.rerun_of == original and second.snapshot == first.snapshot
    assert first.snapshot["parameters"] == {"value": 5}
    assert first.snapshot["code_digest"] and first.snapshot["executor"] == "local"
    assert second.steps["only"]["outputs"] == first.steps["only"]["outputs"]


PLUGIN = '''
from executors.scheduler import TaskPoolExecutor


class InlineExecutor(TaskPoolExecutor):
    """Runs each task at once, on the scheduler's thread."""

    name = "inline"
    calls = []

    def start_task(self, task, call):
        InlineExecutor.calls.append(task.name)
        try:
            return ("ok", task.function(call))
        except Exception as error:
            return ("error", error)

    def wait_any(self, handles, timeout):
        return list(handles)

    def result(self, handle):
        if handle[0] == "error":
            raise handle[1]
        return handle[1]

    def cancel_task(self, handle):
        pass


def make(settings):
    return InlineExecutor()
'''


def test_a_third_party_executor_plugs_in_through_an_entry_point(
    ledger: Ledger, store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    dist_info = site / "inline_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: inline-plugin\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[lifecycle_ledger.executors]\ninline = inline_executor_plugin:make\n"
    )
    (site / "inline_executor_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "inline_executor_plugin", raising=False)
    assert "inline" in executor_names()

    code = write_code(tmp_path / "code")
    steps = [step("a", "write", outputs=["out"]), step("b", "write", inputs={"x": "a.out"})]
    register(ledger, "plugged", code, steps)
    worker = Worker(store.settings(executor="local"))
    try:
        job_id = str(ledger.jobs.submit("plugged", executor="inline").id)
        assert worker.run_job(job_id) == "succeeded"
        ghost_id = str(ledger.jobs.submit("plugged", executor="ghost").id)
        assert worker.run_job(ghost_id) == "failed"
    finally:
        worker.close()
    import inline_executor_plugin  # type: ignore[import-not-found]

    assert inline_executor_plugin.InlineExecutor.calls == ["a", "b"]
    assert ledger.jobs.get(job_id).executor == "inline"
    assert "unknown executor 'ghost'" in ledger.jobs.get(ghost_id).error
    with pytest.raises(InvalidInputError, match="available: local, ray, inline"):
        load_executor("ghost", store.settings())


def test_the_scheduler_runs_independent_tasks_together_on_the_local_executor() -> None:
    from executors.graph import Task
    from executors.local import LocalExecutor

    running, peak, lock = [0], [0], threading.Lock()
    together = threading.Barrier(3, timeout=30)  # a, b and c get past it only all at once

    def work(call: TaskCall) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if call.task in "abc":
            together.wait()
        with lock:
            running[0] -= 1
        return call.task + "".join(sorted(call.upstream.values()))

    class Recorder:
        def __init__(self) -> None:
            self.log: list[tuple[str, str, int]] = []

        def task_started(self, task: str, attempt: int) -> None:
            self.log.append(("started", task, attempt))

        def task_succeeded(self, task: str, attempt: int, result: Any) -> None:
            self.log.append(("succeeded", task, attempt))

        def task_failed(
            self, task: str, attempt: int, error: BaseException, retrying: bool
        ) -> None:
            self.log.append(("failed", task, attempt))

    executor = LocalExecutor(max_workers=4)
    tasks = [Task(n, work) for n in "abc"] + [Task("d", work, depends_on=("a", "b", "c"))]
    recorder = Recorder()
    outcome = executor.submit(tasks, recorder).wait(60)
    executor.close()
    assert outcome is not None and outcome.status == "succeeded"
    assert outcome.results["d"] == "dabc" and peak[0] == 3
    assert recorder.log[-2:] == [("started", "d", 1), ("succeeded", "d", 1)]
    with pytest.raises(ValueError, match="unknown task"):
        LocalExecutor().submit([Task("x", work, depends_on=("y",))], recorder)


def test_cli_pipelines_and_jobs(cli: Cli, store: StoreFactory, tmp_path: Path) -> None:
    example = tmp_path / "iris"
    shutil.copytree(EXAMPLE, example)
    assert cli("data", "register", "iris", str(example / "iris.csv")).code == 0
    registered = cli("pipeline", "register", str(example / "pipeline.yaml"))
    assert registered.code == 0 and "iris-train:1" in registered.out
    assert "Unchanged" in cli("pipeline", "register", str(example / "pipeline.yaml")).out
    assert "iris-gpu:1" in cli("pipeline", "clone", "iris-train:1", "iris-gpu").out
    shown = cli("pipeline", "show", "iris-train")
    assert "prepare" in shown.out and "iris_steps:train_forest" in shown.out

    submitted = cli("job", "submit", "iris-train", "-p", "n_estimators=10", "--json")
    job: dict[str, Any] = submitted.json()  # type: ignore[assignment]
    assert job["status"] == "submitted" and job["snapshot"]["parameters"]["n_estimators"] == 10
    ledger = Ledger(store.settings(executor="local"))
    worker = Worker(store.settings())
    try:
        assert worker.run_job(job["id"]) == "succeeded"
    finally:
        worker.close()
        ledger.close()
    listed: list[dict[str, Any]] = cli("job", "list", "--json").json()  # type: ignore[assignment]
    assert [(j["id"], j["status"], j["steps_done"]) for j in listed] == [
        (job["id"], "succeeded", 5)
    ]
    assert "succeeded" in cli("job", "show", job["id"]).out
    logs = cli("job", "logs", job["id"], "--step", "prepare")
    assert "training rows" in logs.out
    assert cli("job", "show", job["id"], "--watch").code == 0

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - name: a\n    run: nope\n")
    assert_user_error(cli("pipeline", "register", str(bad)), "run must be module:function")
    assert_user_error(cli("job", "submit", "iris-train", "-p", "depth=3"), "unknown parameter")
    assert_user_error(cli("job", "submit", "ghost"), "pipeline 'ghost' does not exist")
    assert_user_error(cli("job", "logs", job["id"], "--step", "ghost"), "has no step 'ghost'")
    assert_user_error(cli("job", "cancel", job["id"]), "it is succeeded")


def test_a_clean_stop_hands_the_job_to_the_next_worker_without_using_a_retry(
    store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings()
    ledger = Ledger(settings)
    code = write_code(tmp_path / "code")
    register(ledger, "long", code, [step("only", "sleepy", outputs=["out"])], sleep_s=1.0)
    job_id = str(ledger.jobs.submit("long").id)
    first = Worker(settings)
    with in_background(first.run):
        wait_for_step(ledger, job_id, "only")
    (stopped,) = events(ledger, job_id, "StepFailed")
    assert stopped["counted"] is False and stopped["will_retry"] is True
    assert "shut down" in stopped["error"]
    second = Worker(settings)
    with in_background(second.run):  # the first released its lease: no wait for expiry
        job = wait_until_finished(ledger, job_id, timeout=30)
    assert job.status == "succeeded", job.error
    assert job.steps["only"]["attempt"] == 2 and job.steps["only"]["failures"] == 0
    assert job.worker == second.id and events(ledger, job_id, "TakenOver")
    ledger.close()


def test_a_worker_that_was_taken_over_can_no_longer_write(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.errors import RuleViolationError

    code = write_code(tmp_path / "code")
    register(ledger, "fenced", code, [step("only", "write", outputs=["out"])])
    job_id = str(ledger.jobs.submit("fenced").id)
    ledger.job_runs.start(job_id, "local", worker="old")
    ledger.job_runs.start_step(job_id, "only", worker="old")
    assert ledger.job_runs.take_over(job_id, "new", may_take=lambda job: False) is None
    assert ledger.job_runs.take_over(job_id, "new", may_take=lambda job: job.worker == "old")
    with pytest.raises(RuleViolationError, match="is run by 'new', not 'old'"):
        ledger.job_runs.complete_step(job_id, "only", outputs={"out": "sha256:00"}, worker="old")
    with pytest.raises(RuleViolationError, match="is run by 'new'"):
        ledger.job_runs.succeed(job_id, worker="old")
    assert ledger.jobs.get(job_id).steps["only"]["status"] == "running"


def test_a_step_wanting_more_than_the_ray_cluster_has_fails_at_once(
    ledger: Ledger, store: StoreFactory, tmp_path: Path, ray_started: None
) -> None:
    code = write_code(tmp_path / "code")
    spec = [step("gpu", "write", outputs=["out"], resources={"gpus": 1})]
    register(ledger, "gpu", code, spec)
    worker = Worker(store.settings())
    try:
        job_id = str(ledger.jobs.submit("gpu", executor="ray").id)
        assert worker.run_job(job_id) == "failed"
    finally:
        worker.close()
    error = ledger.jobs.get(job_id).error
    assert "the step needs 1 GPU(s); the Ray cluster has 0" in error


def test_jobs_over_http(api: Api, tmp_path: Path) -> None:
    ledger = Ledger(api.settings)
    register(ledger, "web", write_code(tmp_path / "code"), [step("only", "write")], value=1)
    ledger.close()
    headers = api.auth("contributor")
    submitted = api.client.post("/jobs", json={"pipeline": "web", "parameters": {"value": 2}},
                                headers=headers)  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    assert job["snapshot"]["parameters"] == {"value": 2} and job["snapshot"]["executor"] == "local"
    worker = Worker(api.settings)
    try:
        assert worker.run_job(job["id"]) == "succeeded"
    finally:
        worker.close()
    rerun = api.client.post(f"/jobs/{job['id']}/rerun", headers=headers).json()
    assert rerun["rerun_of"] == job["id"] and rerun["status"] == "submitted"
    listed = api.client.get("/jobs?status=succeeded", headers=headers).json()
    assert [(j["id"], j["steps_done"], j["steps_total"]) for j in listed] == [(job["id"], 1, 1)]
    everything = api.client.get("/jobs?pipeline=web:1", headers=headers).json()
    assert [j["id"] for j in everything] == [rerun["id"], job["id"]]
    bad = api.client.get("/jobs?status=exploded", headers=headers)
    assert bad.status_code == 422
    unknown = api.client.post("/jobs", json={"pipeline": "web", "parameters": {"depth": 1}},
                              headers=headers)  # fmt: skip
    assert unknown.status_code == 400 and "unknown parameter" in unknown.json()["detail"]
