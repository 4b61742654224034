"""A step's environment as a Ray runtime environment (``runtime_env``).

What is mapped, when the step runs on the Ray executor:

- ``pip`` -> ``runtime_env["pip"]``: Ray makes a virtualenv on top of the node's
  interpreter (so Ray and the ledger stay importable) and pip-installs the lines.
  Ray 2.60 also has a ``uv`` field, but it first installs uv itself when the node
  has none (this image has none), so pip is the one that works everywhere.
- ``variables`` -> ``env_vars`` (the step also gets them as today, ``ctx.variables``).
- ``config.setup_timeout_seconds`` from ``LEDGER_RUNTIME_ENV_SETUP_TIMEOUT_S``: a
  stuck resolver fails the step instead of hanging the job. The limit is per try, and
  Ray tries three times (``RUNTIME_ENV_RETRY_TIMES`` in the nodes' environment), so a
  hopeless build gives up after at most about three times the setting.
- No ``working_dir``/``py_modules``: a step materialises its pipeline's code from the
  artifact store itself (``StepPayload.code_files``), so the runtime env carries no
  code and one environment version is one runtime env whatever the code version.

Caching: Ray caches a built runtime env by a hash of its content (not of its
``config``). The dict is made only from the environment version's content, which
never changes, in a fixed shape, so the same version always gives the same dict and
every step and job using it reuses one virtualenv per node; ``digest`` names it.
Ray also remembers a failed build for a while (``BAD_RUNTIME_ENV_CACHE_TTL_SECONDS``,
10 minutes): a step retried in a broken environment fails at once.

What is refused, with the reason, before anything runs:

- a ``python`` other than the running major.minor: Ray runs every worker on the
  cluster's own interpreter (the driver's must match it); another Python needs a
  container or conda, which would silently be a different environment.
- ``conda``: Ray's conda field replaces the interpreter and needs conda and Ray in
  the env on every node; a check here says nothing about the other nodes. Put the
  packages in ``pip``.
- a ``base_image`` other than the official ``python:X.Y[-variant]`` image of the same
  version: running a step in an image needs Ray's ``image_uri`` and podman on every
  node. ``base_image`` stays what the packaged model image (``ledger package``) uses.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ledger.specs import content_digest

TIMED_OUT = re.compile(r"within the timeout of (\d+) seconds")  # Ray's messages
# Ray cancels a timed-out try without removing its virtualenv: the next tries find it.
HALF_BUILT = re.compile(r"dest dir '[^']*virtualenv' exists")
PYTHON_IMAGE = re.compile(r"^(docker\.io/)?(library/)?python:(?P<version>\d+\.\d+)(\.\d+)?(-.+)?$")


@dataclass(frozen=True)
class StepEnvironment:
    """The environment a step runs in: its ref, the runtime env built from it, and,
    when no executor can build it, why (``refused``)."""

    ref: str  # NAME:VERSION
    runtime_env: dict[str, Any] = field(default_factory=dict)
    refused: str = ""

    @property
    def installs_packages(self) -> bool:
        """True when running it needs packages installed (only Ray can)."""
        return bool(self.runtime_env.get("pip"))

    @property
    def digest(self) -> str:
        return content_digest(self.runtime_env) if self.runtime_env else ""


def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def refusal(content: dict[str, Any]) -> str:
    """Why the environment ``content`` (an EnvironmentSpec's) cannot be built here; ''
    when it can."""
    wanted = ".".join(str(content.get("python", running_python())).split(".")[:2])
    if wanted != running_python():
        return (
            f"it asks for Python {wanted}, but the workers run Python {running_python()}: "
            "run it on a cluster of that Python, or change the environment's python"
        )
    if content.get("conda"):
        return "conda environments cannot be built here: list the packages under pip"
    image = str(content.get("base_image") or "")
    match = PYTHON_IMAGE.match(image)
    if image and (match is None or match["version"] != wanted):
        return (
            f"base_image {image!r} cannot be run here (steps run on the Ray nodes' own "
            f"image): use python:{wanted}-slim or leave base_image out"
        )
    return ""


def step_environment(ref: str, content: dict[str, Any], *, setup_timeout_s: int) -> StepEnvironment:
    """The runtime env of environment ``ref`` (its content as registered)."""
    problem = refusal(content)
    if problem:
        return StepEnvironment(ref, refused=f"environment {ref}: {problem}")
    runtime_env: dict[str, Any] = {}
    if content.get("pip"):
        runtime_env["pip"] = list(content["pip"])
    if content.get("variables"):
        runtime_env["env_vars"] = dict(sorted(content["variables"].items()))
    if runtime_env:
        runtime_env["config"] = {"setup_timeout_seconds": setup_timeout_s}
    return StepEnvironment(ref, runtime_env)


class UnbuildableEnvironmentError(Exception):
    """The step's environment asks for what its executor cannot build: it never starts."""


class EnvironmentBuildError(Exception):
    """Ray could not build a step's runtime environment (resolver error, timeout)."""


def build_failure(ref: str, details: str, limit: int = 1500) -> EnvironmentBuildError:
    """The error a step fails with when its environment could not be built: the useful
    part of Ray's message (pip's ERROR lines, or the timeout, rather than tracebacks)."""
    timed_out = TIMED_OUT.search(details)
    if timed_out:
        tail = (
            f"setting it up took longer than {timed_out[1]} s (LEDGER_RUNTIME_ENV_SETUP_TIMEOUT_S)"
        )
    elif HALF_BUILT.search(details):
        tail = (
            "a try that ran past the setup timeout left it half built, and Ray keeps "
            "that until its node restarts: raise LEDGER_RUNTIME_ENV_SETUP_TIMEOUT_S"
        )
    else:
        lines = [line.strip() for line in details.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")]
        tail = "\n".join(errors or lines[-6:])
    if len(tail) > limit:
        tail = "..." + tail[-limit:]
    where = f"environment {ref}" if ref else "the runtime environment"
    return EnvironmentBuildError(f"{where} could not be built: {tail}")
