"""Pipeline specs: the steps of a pipeline, their inputs, outputs and resources.

A pipeline file (YAML or JSON) looks like::

    description: Train an iris classifier
    code: .                      # directory stored with the pipeline (relative to the file)
    environment: sklearn         # registered environment, NAME or NAME:VERSION
    parameters: {n_estimators: 100}
    steps:
      - name: prepare
        run: steps:prepare       # a Python callable, module:function
        inputs: {raw: "data:iris", test_size: "param:test_size"}
        outputs: [train, test]
      - name: train
        command: python train.py {inputs.train} {outputs.model}
        inputs: {train: prepare.train}
        outputs: [model]
        environment: torch-gpu   # this step's own environment
        resources: {cpus: 1, gpus: 0, memory_mb: 512}
        retries: 2

An input is ``data:NAME[:VERSION]`` (a data asset), ``param:NAME`` (a parameter)
or ``STEP.OUTPUT`` (an earlier step's output, which also orders the steps).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger.errors import InvalidInputError

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$"
CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
STEP_OUTPUT = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)$")


class InputRef(BaseModel):
    """Where an input comes from: a data asset, a parameter, or another step's output."""

    kind: Literal["data", "param", "step"]
    name: str  # data asset ref, parameter name, or step name
    output: str = ""  # the step's output (kind "step")

    @classmethod
    def parse(cls, text: str) -> InputRef:
        if text.startswith("data:") and len(text) > 5:
            return cls(kind="data", name=text[5:])
        if text.startswith("param:") and len(text) > 6:
            return cls(kind="param", name=text[6:])
        match = STEP_OUTPUT.fullmatch(text)
        if match:
            return cls(kind="step", name=match[1], output=match[2])
        raise ValueError(f"input {text!r}: expected data:NAME[:VERSION], param:NAME or STEP.OUTPUT")


class Resources(BaseModel):
    """What one step needs from the executor."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1, ge=0, le=1024)
    gpus: float = Field(0, ge=0, le=64)
    memory_mb: int = Field(0, ge=0, description="0: no reservation")


class StepSpec(BaseModel):
    """One step: a Python callable (``run``) or a command, with its inputs and outputs."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENTIFIER)
    run: str = Field("", description="module:function, called with a StepContext")
    command: str | list[str] = Field("", description="a command line; {inputs.x} etc. expand")
    inputs: dict[str, str] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    environment: str = Field("", description="environment NAME[:VERSION] (default: the pipeline's)")
    resources: Resources = Field(default_factory=Resources)
    retries: int = Field(0, ge=0, le=10, description="further attempts after a failure")
    timeout_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> StepSpec:
        if bool(self.run) == bool(self.command):
            raise ValueError(f"step {self.name!r} needs exactly one of `run` or `command`")
        if self.run and not CALLABLE.fullmatch(self.run):
            raise ValueError(f"step {self.name!r}: run must be module:function, not {self.run!r}")
        for name in [*self.inputs, *self.outputs]:
            if not re.fullmatch(IDENTIFIER, name):
                raise ValueError(f"step {self.name!r}: {name!r} is not a valid input/output name")
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"step {self.name!r} lists an output twice")
        for text in self.inputs.values():
            InputRef.parse(text)
        # Reading another step's output orders this step after it.
        upstream = [ref.name for ref in self.input_refs().values() if ref.kind == "step"]
        self.depends_on = list(dict.fromkeys([*self.depends_on, *upstream]))
        return self

    def input_refs(self) -> dict[str, InputRef]:
        return {name: InputRef.parse(text) for name, text in self.inputs.items()}


class CodeFile(BaseModel):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class CodeSnapshot(BaseModel):
    """The pipeline's code directory, stored file by file in the artifact store."""

    model_config = ConfigDict(extra="forbid")

    digest: str = Field(description="sha256 over the files' paths and digests")
    git_commit: str = Field("", description="the commit, with '-dirty' for local changes")
    files: list[CodeFile]


class PipelineSpec(BaseModel):
    """A pipeline version: its steps form a DAG (checked by ``validate_dag``)."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    code: CodeSnapshot | None = Field(None, description="the code stored with this version")
    environment: str = Field("", description="registered environment NAME[:VERSION]")
    parameters: dict[str, Any] = Field(default_factory=dict, description="defaults")
    steps: list[StepSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> PipelineSpec:
        steps = {step.name: step for step in self.steps}
        for step in self.steps:
            for input_name, ref in step.input_refs().items():
                where = f"step {step.name!r} input {input_name!r}"
                if ref.kind == "param" and ref.name not in self.parameters:
                    raise ValueError(f"{where}: no parameter {ref.name!r} is declared")
                if ref.kind == "step":
                    if ref.name not in steps:
                        raise ValueError(f"{where}: no step {ref.name!r}")
                    if ref.output not in steps[ref.name].outputs:
                        raise ValueError(f"{where}: step {ref.name!r} has no output {ref.output!r}")
        return self

    def environment_of(self, step: StepSpec) -> str:
        return step.environment or self.environment

    def data_refs(self) -> list[str]:
        """The data assets the steps read, in order of first use."""
        refs = [
            ref.name
            for step in self.steps
            for ref in step.input_refs().values()
            if ref.kind == "data"
        ]
        return list(dict.fromkeys(refs))


def parse_pipeline_spec(data: dict[str, Any]) -> PipelineSpec:
    """Validate a pipeline spec, with every problem in one clear message."""
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise InvalidInputError(f"invalid pipeline spec: {problems}") from None


def merge_parameters(spec: PipelineSpec, given: dict[str, Any]) -> dict[str, Any]:
    """The spec's defaults overridden by ``given``; an undeclared parameter is refused."""
    unknown = sorted(set(given) - set(spec.parameters))
    if unknown:
        declared = ", ".join(sorted(spec.parameters)) or "none"
        raise InvalidInputError(f"unknown parameter(s) {unknown}; the pipeline declares {declared}")
    return {**spec.parameters, **given}
