"""Pipelines, code and waiting helpers for the executor and worker tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ledger.domain.job import Job
from ledger.ledger import Ledger

STEPS_MODULE = """
import os
import time
from pathlib import Path


def write(ctx):
    ctx.output("out").write_text(f"{ctx.step}:{ctx.params.get('value', 1)}")
    return {"value": float(ctx.params.get("value", 1))}


def sleepy(ctx):
    start = time.time()
    time.sleep(float(ctx.params["sleep_s"]))
    ctx.output("out").write_text(ctx.step)
    return {"start": start, "end": time.time()}


def meet(ctx):
    # Succeeds only if every step named in `meeting` runs at the same time (within 60 s).
    here = Path(ctx.params["marker_dir"])
    (here / f"{ctx.step}.here").write_text(str(time.time()))
    deadline = time.time() + 60
    while not all((here / f"{n}.here").exists() for n in ctx.params["meeting"].split(",")):
        if time.time() > deadline:
            raise TimeoutError("the other steps did not run alongside this one")
        time.sleep(0.02)
    ctx.output("out").write_text(ctx.step)


def flaky(ctx):
    marker = Path(ctx.params["marker_dir"]) / f"{ctx.job_id}-{ctx.step}"
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("flaky failure on the first attempt")
    ctx.output("out").write_text("ok")


def broken(ctx):
    print("about to fail")
    raise ValueError("always broken")


def greet(ctx):
    model = ctx.work_dir / "model"
    model.mkdir()
    (model / "greeting.txt").write_text(ctx.variables["GREETING"])
    ctx.register_model("greeter", model)


def exits(ctx):
    raise SystemExit(3)


def spin(ctx):
    Path(ctx.params["marker_dir"], f"{ctx.step}.pid").write_text(str(os.getpid()))
    while not ctx.cancelled:
        time.sleep(0.02)


def register(ctx):
    model = ctx.work_dir / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(Path(ctx.inputs["source"]).read_bytes())
    ctx.register_model("toy", model, metrics={"score": 0.5})
"""


def write_code(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "testing_steps.py").write_text(STEPS_MODULE)
    return directory


def step(name: str, run: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "run": f"testing_steps:{run}", **fields}


def register(
    ledger: Ledger, name: str, code: Path, steps: list[dict[str, Any]], **params: Any
) -> str:
    ledger.assets.register_pipeline(name, {"parameters": params, "steps": steps}, code_dir=code)
    return name


def wait_until_finished(ledger: Ledger, job_id: str, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ledger.jobs.get(job_id)
        if job.finished:
            return job
        time.sleep(0.05)
    raise AssertionError(
        f"job {job_id} did not finish in {timeout} s: {ledger.jobs.get(job_id).status}"
    )


def wait_for_step(ledger: Ledger, job_id: str, step_name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger.jobs.get(job_id).steps.get(step_name, {}).get("status") == "running":
            return
        time.sleep(0.02)
    raise AssertionError(f"step {step_name} of job {job_id} never ran")


def events(ledger: Ledger, job_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.details for e in ledger.jobs.history(job_id) if e.event == kind]
