"""Running one pipeline step where the executor put it: inputs in, outputs stored.

:func:`run_step` is what executors call (on a thread, or in a Ray worker). It
needs only the artifact store, by URL (a directory or an object store: no volume
shared with the worker), and the logs directory, never the event store: the
worker records the result it returns.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from executors.graph import TaskCall, task_cancelled
from executors.step_io import materialize_code, materialize_output, store_output
from executors.streams import captured_output
from ledger.artifacts.store import ArtifactStore
from ledger.data_objects import fetch_data
from ledger.errors import LedgerError
from ledger.job_logs import log_path
from ledger.pipeline_spec import StepSpec
from ledger.step_results import ModelRequest, StepOutcome

KILL_GRACE_S = 5.0


class StepError(Exception):
    """A step attempt failed; the message is short, the traceback is in the step's log."""

    def __init__(self, message: str, log_uri: str = "", duration_s: float = 0.0) -> None:
        super().__init__(message)
        self.log_uri = log_uri
        self.duration_s = duration_s

    def __reduce__(self) -> tuple[Any, ...]:  # keep the details across processes (Ray)
        return (StepError, (str(self), self.log_uri, self.duration_s))


@dataclass(frozen=True)
class StepPayload:
    """Everything a step needs to run, resolved by the worker when the job starts."""

    job_id: str
    step: StepSpec
    data_paths: dict[str, str]  # data asset ref -> its URI (file:// or an object's URL)
    parameters: dict[str, Any]
    code_digest: str
    code_files: list[dict[str, Any]]
    variables: dict[str, str]  # from the environment spec
    artifacts_url: str  # the artifact store, by URL: a step needs no shared volume
    logs_dir: str
    # data asset ref -> sha256 the data was registered with (an object is checked on fetch)
    data_digests: dict[str, str] = field(default_factory=dict)


@dataclass
class StepContext:
    """What a Python step function receives.

    ``inputs``: each input by name: a local path for data and step outputs, the
    value for parameters. Write each output to ``output(name)`` (a file or a
    directory). Return a dict of metrics, or call ``log_metric``.
    """

    job_id: str
    step: str
    attempt: int
    inputs: dict[str, Any]
    params: dict[str, Any]
    work_dir: Path
    variables: dict[str, str]
    _artifacts: ArtifactStore
    metrics: dict[str, float] = field(default_factory=dict)
    models: list[ModelRequest] = field(default_factory=list)

    def output(self, name: str) -> Path:
        """Where to write output ``name`` (declared in the step's ``outputs``)."""
        return self.work_dir / "outputs" / name

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name] = float(value)

    def log(self, message: str) -> None:
        print(message, flush=True)

    @property
    def cancelled(self) -> bool:
        """True once the job is being cancelled (long local steps should check it)."""
        event = task_cancelled.get()
        return event is not None and event.is_set()

    def register_model(
        self,
        name: str,
        path: Path | str,
        *,
        flavor: str = "custom",
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        description: str = "",
        signature: dict[str, Any] | None = None,
    ) -> None:
        """Register the files at ``path`` as the model's next version when the step
        completes; its lineage names this job, its data, environment and pipeline."""
        files = self._artifacts.put_tree(Path(path))
        self.models.append(
            ModelRequest(
                name=name,
                files=files,
                flavor=flavor,
                metrics=dict(metrics or {}),
                tags=dict(tags or {}),
                description=description,
                signature=dict(signature or {}),
            )
        )


def run_step(payload: StepPayload, call: TaskCall) -> StepOutcome:
    """Run one attempt of a step; raise StepError when it fails."""
    spec = payload.step
    artifacts = ArtifactStore(payload.artifacts_url)
    log_file = log_path(Path(payload.logs_dir), payload.job_id, spec.name, call.attempt)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_uri = log_file.resolve().as_uri()
    work_dir = Path(tempfile.mkdtemp(prefix=f"ledger-step-{spec.name}-"))
    started = time.monotonic()
    try:
        with log_file.open("a", buffering=1) as log:
            try:
                code_dir = (
                    materialize_code(artifacts, payload.code_digest, payload.code_files)
                    if payload.code_files
                    else None
                )
                context = StepContext(
                    job_id=payload.job_id,
                    step=spec.name,
                    attempt=call.attempt,
                    inputs=_resolve_inputs(payload, call, artifacts, work_dir),
                    params=dict(payload.parameters),
                    work_dir=work_dir,
                    variables=dict(payload.variables),
                    _artifacts=artifacts,
                )
                (work_dir / "outputs").mkdir()
                if spec.run:
                    _run_callable(spec.run, code_dir, context, log)
                else:
                    _run_command(spec, code_dir, context, log)
                outputs = _store_outputs(spec, context, artifacts)
                metrics = _checked_metrics(context.metrics)
            except (Exception, SystemExit) as error:  # sys.exit() in a step fails the step
                duration = time.monotonic() - started
                if not isinstance(error, StepError):
                    traceback.print_exc(file=log)
                message = str(error) if isinstance(error, StepError) else _describe(error)
                print(f"step failed after {duration:.2f} s: {message}", file=log)
                raise StepError(message, log_uri, duration) from None
        return StepOutcome(
            outputs=outputs,
            metrics=metrics,
            duration_s=time.monotonic() - started,
            log_uri=log_uri,
            models=context.models,
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"the step called sys.exit({error.code!r})"
    return f"{type(error).__name__}: {error}"


def _resolve_inputs(
    payload: StepPayload, call: TaskCall, artifacts: ArtifactStore, work_dir: Path
) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name, ref in payload.step.input_refs().items():
        if ref.kind == "param":
            inputs[name] = payload.parameters[ref.name]
        elif ref.kind == "data":
            uri, digest = payload.data_paths[ref.name], payload.data_digests.get(ref.name, "")
            try:  # an object in a store is streamed into the step's folder, and checked
                path = fetch_data(uri, digest, work_dir / "data" / name)
            except LedgerError as error:
                raise StepError(f"input {name!r}: data asset {ref.name}: {error}") from None
            if not path.exists():
                raise StepError(f"input {name!r}: data asset {ref.name} is gone from {path}")
            inputs[name] = path
        else:
            upstream: StepOutcome = call.upstream[ref.name]
            reference = upstream.outputs[ref.output]
            inputs[name] = materialize_output(artifacts, reference, work_dir / "inputs" / name)
    return inputs


_import_lock = threading.Lock()


def load_callable(target: str, code_dir: Path | None) -> Callable[[StepContext], Any]:
    """Import ``module:function``, from ``code_dir`` when the pipeline stored its code.

    A module of the same name imported earlier from another code version (a
    long-lived Ray worker runs many jobs) is imported afresh.
    """
    module_name, function_name = target.split(":")
    top = module_name.split(".")[0]
    with _import_lock:
        if code_dir is not None and _provides(code_dir, top):
            loaded = sys.modules.get(top)
            if loaded is not None and not _loaded_from(loaded, code_dir):
                for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
                    del sys.modules[name]
            sys.path.insert(0, str(code_dir))
            try:
                module = importlib.import_module(module_name)
            finally:
                sys.path.remove(str(code_dir))
        else:
            module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise StepError(f"{target}: {module_name} has no function {function_name!r}")
    return function  # type: ignore[no-any-return]


def _provides(code_dir: Path, top: str) -> bool:
    return (code_dir / f"{top}.py").is_file() or (code_dir / top).is_dir()


def _loaded_from(module: Any, code_dir: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(code_dir.resolve())


def _run_callable(target: str, code_dir: Path | None, context: StepContext, log: TextIO) -> None:
    try:
        function = load_callable(target, code_dir)
    except ImportError as error:
        raise StepError(f"cannot import {target}: {error}") from None
    with captured_output(log):
        returned = function(context)
    if returned is not None:
        if not isinstance(returned, dict):
            raise StepError(f"{target} returned {type(returned).__name__}; return metrics or None")
        for name, value in returned.items():
            context.log_metric(str(name), value)


class _Namespace:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def command_line(spec: StepSpec, context: StepContext) -> list[str]:
    """The step's command with ``{inputs.x}``, ``{outputs.x}`` and ``{params.x}`` filled in."""
    fields = {
        "inputs": _Namespace({k: str(v) for k, v in context.inputs.items()}),
        "outputs": _Namespace({name: str(context.output(name)) for name in spec.outputs}),
        "params": _Namespace({k: str(v) for k, v in context.params.items()}),
    }
    words = shlex.split(spec.command) if isinstance(spec.command, str) else list(spec.command)
    try:
        return [word.format(**fields) for word in words]
    except (AttributeError, KeyError, IndexError, ValueError) as error:
        raise StepError(f"command of step {spec.name!r}: cannot fill in {error}") from None


def _run_command(spec: StepSpec, code_dir: Path | None, context: StepContext, log: TextIO) -> None:
    argv = command_line(spec, context)
    metrics_file = context.work_dir / "metrics.json"
    env = {
        **os.environ,
        **context.variables,
        "LEDGER_JOB_ID": context.job_id,
        "LEDGER_STEP": context.step,
        "LEDGER_STEP_ATTEMPT": str(context.attempt),
        "LEDGER_METRICS_FILE": str(metrics_file),
    }
    print(f"$ {shlex.join(argv)}", file=log, flush=True)
    try:
        process = subprocess.Popen(
            argv,
            cwd=code_dir or context.work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    except OSError as error:
        raise StepError(f"cannot run {argv[0]!r}: {error.strerror or error}") from None
    with _stopped_on_cancel(process):
        status = process.wait()
    if context.cancelled:
        raise StepError("cancelled")
    if status != 0:
        raise StepError(f"command exited with status {status}")
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text())
        except ValueError as error:
            raise StepError(f"$LEDGER_METRICS_FILE is not JSON: {error}") from None
        if not isinstance(metrics, dict):
            raise StepError("$LEDGER_METRICS_FILE must hold a JSON object of metrics")
        for name, value in metrics.items():
            context.log_metric(name, value)


@contextmanager
def _stopped_on_cancel(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """Terminate (then kill) ``process`` if the task is cancelled while it runs."""
    event = task_cancelled.get()
    if event is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.05):
            if event.is_set():
                process.terminate()
                try:
                    process.wait(KILL_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()


def _store_outputs(
    spec: StepSpec, context: StepContext, artifacts: ArtifactStore
) -> dict[str, str]:
    missing = [name for name in spec.outputs if not context.output(name).exists()]
    if missing:
        raise StepError(f"the step did not write output(s) {missing}")
    return {name: store_output(artifacts, context.output(name)) for name in spec.outputs}


def _checked_metrics(metrics: dict[str, float]) -> dict[str, float]:
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise StepError(f"metric {name!r} is {value}; metrics must be finite numbers")
    return metrics
