"""Environments built as Ray runtime environments: mapped, cached, recorded, refused.

The Ray tests use the session's real Ray and PyPI; both stores share Ray's cache of
built environments, so only the first run installs the package.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest

from executors.runtime_envs import build_failure, running_python, step_environment
from executors.worker import Worker
from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec
from tests.conftest import Cli, StoreFactory

PACKAGE = "pyjokes"  # tiny, pure Python, and not in the test environment
STEPS = """
import sys


def joke(ctx):
    import pyjokes

    ctx.output("out").write_text(f"{bool(pyjokes.get_joke())} {sys.prefix}")


def noop(ctx):
    ctx.output("out").write_text("ran")
"""


def _content(**fields: object) -> dict[str, object]:
    return EnvironmentSpec.model_validate(fields).model_dump()


def test_the_same_environment_version_gives_the_same_runtime_env() -> None:
    content = _content(pip=["b==1", "a"], variables={"Z": "1", "A": "2"})
    first = step_environment("env:1", content, setup_timeout_s=30)
    again = step_environment("env:1", dict(reversed(content.items())), setup_timeout_s=30)
    assert first.runtime_env == {
        "pip": ["b==1", "a"],  # pip's order is the user's: it can matter to pip
        "env_vars": {"A": "2", "Z": "1"},
        "config": {"setup_timeout_seconds": 30},
    }
    assert list(again.runtime_env["env_vars"]) == ["A", "Z"]
    assert again == first and again.digest == first.digest and first.installs_packages
    assert step_environment("env:1", _content(), setup_timeout_s=30).runtime_env == {}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"python": "3.9"}, f"asks for Python 3.9, but the workers run Python {running_python()}"),
        ({"conda": {"dependencies": ["numpy"]}}, "conda environments cannot be built"),
        ({"base_image": "nvidia/cuda:12.4.1-runtime"}, "base_image 'nvidia/cuda:12.4.1-runtime'"),
        ({"base_image": "python:3.9-slim"}, "base_image 'python:3.9-slim' cannot be run"),
    ],
)
def test_what_ray_cannot_build_is_refused(fields: dict[str, object], says: str) -> None:
    environment = step_environment("env:1", _content(**fields), setup_timeout_s=30)
    assert environment.refused.startswith("environment env:1: ")
    assert says in environment.refused
    python = running_python()
    for image in (
        f"python:{python}-slim",
        f"python:{python}.4",
        f"docker.io/library/python:{python}",
    ):
        assert not step_environment("e:1", _content(base_image=image), setup_timeout_s=1).refused
    assert not step_environment("e:1", _content(python=f"{python}.2"), setup_timeout_s=1).refused


def test_a_build_failure_keeps_the_resolvers_error_lines() -> None:
    details = "\n".join(
        ["Traceback (most recent call last):", "  File x", "Collecting no-such-package",
         "ERROR: Could not find a version that satisfies the requirement no-such-package",
         "ERROR: No matching distribution found for no-such-package", "", "more noise"]
    )  # fmt: skip
    message = str(build_failure("bad:1", details))
    assert message == (
        "environment bad:1 could not be built: ERROR: Could not find a version that "
        "satisfies the requirement no-such-package\n"
        "ERROR: No matching distribution found for no-such-package"
    )
    assert str(build_failure("", "a\nb")) == "the runtime environment could not be built: a\nb"
    timed_out = "Failed to install runtime_env within the timeout of 2 seconds. Consider..."
    assert str(build_failure("slow:1", f"{timed_out}\nTraceback...\nTimeoutError")) == (
        "environment slow:1 could not be built: setting it up took longer than 2 s "
        "(LEDGER_RUNTIME_ENV_SETUP_TIMEOUT_S)"
    )
    left = "UserError: dest dir '/tmp/ray/x/pip/ab/virtualenv' exists"
    assert "half built" in str(build_failure("slow:1", f"Traceback\n{left}"))


def _run(
    ledger: Ledger, store: StoreFactory, tmp_path: Path, environment: EnvironmentSpec,
    *, executor: str, run: str = "noop", also: list[dict[str, Any]] | None = None,
    **settings: object,
) -> tuple[str, float]:  # fmt: skip
    """Run a pipeline of step ``only`` (and ``also``) in ``environment``: (job id,
    seconds it took)."""
    ledger.assets.register_environment("env", environment)
    (code := tmp_path / "code").mkdir()
    (code / "env_steps.py").write_text(STEPS)
    step = {"name": "only", "run": f"env_steps:{run}", "outputs": ["out"]}
    spec = {"environment": "env", "steps": [step, *(also or [])]}
    ledger.assets.register_pipeline("in-env", spec, code_dir=code)
    job_id = str(ledger.jobs.submit("in-env", executor=executor).id)
    worker = Worker(store.settings(executor=executor, **settings))
    started = time.monotonic()
    try:
        worker.run_job(job_id)
    finally:
        worker.close()
    return job_id, time.monotonic() - started


@pytest.mark.slow
def test_a_step_imports_what_its_environment_installs_and_the_job_records_it(
    ledger: Ledger, store: StoreFactory, cli: Cli, ray_started: None, tmp_path: Path
) -> None:
    assert importlib.util.find_spec(PACKAGE) is None, f"{PACKAGE} must not be installed here"
    environment = EnvironmentSpec(pip=[PACKAGE], variables={"JOKES": "yes"})
    # A command step's `python` is the environment's too (Ray activates its virtualenv).
    command = {"name": "shell", "outputs": ["out"], "command": [
        "python", "-c", "import pyjokes, sys; open(sys.argv[1], 'w').write('ok')", "{outputs.out}"
    ]}  # fmt: skip
    job_id, _ = _run(
        ledger, store, tmp_path, environment, executor="ray", run="joke", also=[command]
    )
    job = ledger.jobs.get(job_id)
    assert job.status == "succeeded", job.error
    assert job.steps["shell"]["runtime_env"] == job.steps["only"]["runtime_env"]
    joked, prefix = (
        ledger.artifacts.blob_path(job.steps["only"]["outputs"]["out"].removeprefix("sha256:"))
        .read_text()
        .split()
    )
    assert joked == "True" and "runtime_resources" in prefix  # a virtualenv Ray built
    expected = {
        "pip": [PACKAGE],
        "env_vars": {"JOKES": "yes"},
        "config": {"setup_timeout_seconds": store.settings().runtime_env_setup_timeout_s},
    }
    # As `ledger job show` and GET /jobs/{id} show it (both read the jobs view).
    shown: Any = cli("job", "show", job_id, "--json").json()
    only = shown["steps"]["only"]
    assert (only["environment"], only["runtime_env"]) == ("env:1", expected)
    assert f"pip: {PACKAGE}" in cli("job", "show", job_id).out
    assert job.steps["only"]["runtime_env"] == expected


@pytest.mark.slow
def test_a_package_that_does_not_exist_fails_the_step_with_the_resolvers_message(
    ledger: Ledger, store: StoreFactory, ray_started: None, tmp_path: Path
) -> None:
    environment = EnvironmentSpec(pip=["no-such-package-xyz-123"])
    timeout = 120
    job_id, took = _run(
        ledger, store, tmp_path, environment, executor="ray", runtime_env_setup_timeout_s=timeout
    )
    job = ledger.jobs.get(job_id)
    assert job.status == "failed"
    error = job.steps["only"]["error"]
    assert error.startswith("environment env:1 could not be built: "), error
    assert "no-such-package-xyz-123" in error
    assert took < 3 * timeout  # Ray tries three times, each within the timeout
    assert "could not be built" in job.error


@pytest.mark.slow
def test_an_environment_that_takes_longer_than_the_setup_timeout_fails_the_step(
    ledger: Ledger, store: StoreFactory, ray_started: None, tmp_path: Path
) -> None:
    # Distinct packages per store: Ray remembers a failed environment for a while, and
    # keeps the virtualenv of a try that ran past the timeout.
    requirement = "art>=0.1" if store.kind == "sqlite" else "art>=0.2"
    environment = EnvironmentSpec(pip=[requirement])
    job_id, took = _run(
        ledger, store, tmp_path, environment, executor="ray", runtime_env_setup_timeout_s=1
    )
    job = ledger.jobs.get(job_id)
    assert job.status == "failed"
    error = job.steps["only"]["error"]
    assert error.startswith("environment env:1 could not be built: "), error
    # The message is about the last of Ray's three tries: the timeout, or what the
    # first try that timed out left behind.
    assert error.endswith(
        (
            "longer than 1 s (LEDGER_RUNTIME_ENV_SETUP_TIMEOUT_S)",
            "LEDGER_RUNTIME_ENV_SETUP_TIMEOUT_S",
        )
    ), error
    assert took < 60


def test_a_python_other_than_the_running_one_fails_the_step_clearly(
    ledger: Ledger, store: StoreFactory, ray_started: None, tmp_path: Path
) -> None:
    job_id, _ = _run(ledger, store, tmp_path, EnvironmentSpec(python="3.8"), executor="ray")
    job = ledger.jobs.get(job_id)
    assert job.status == "failed"
    assert job.steps["only"]["error"] == (
        f"environment env:1: it asks for Python 3.8, but the workers run Python "
        f"{running_python()}: run it on a cluster of that Python, or change the "
        "environment's python"
    )
    assert job.steps["only"]["failures"] == 1  # not retried: it can never start


def test_the_local_executor_refuses_an_environment_that_installs_packages(
    ledger: Ledger, store: StoreFactory, tmp_path: Path
) -> None:
    environment = EnvironmentSpec(pip=[PACKAGE, "art"])
    job_id, _ = _run(ledger, store, tmp_path, environment, executor="local")
    job = ledger.jobs.get(job_id)
    assert job.status == "failed"
    assert job.steps["only"]["error"] == (
        f"environment env:1 installs packages ({PACKAGE}, art), which the local executor "
        "cannot do: run the job on the Ray executor (LEDGER_EXECUTOR=ray)"
    )
    assert job.steps["only"]["runtime_env"] == {}  # nothing was built
