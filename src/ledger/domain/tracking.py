"""What MLflow tracking's experiments, runs and logged models share: ids, artifact locations,
and the checks MLflow's server makes on keys and values (``mlflow/utils/validation.py``).

Ids are MLflow's: experiments are decimal numbers ("0" is the default experiment,
"Default"), runs 32 hex digits, logged models ``m-`` and 32 hex digits. Artifact locations
follow ``mlflow server --artifacts-destination``: everything lives under
``mlflow-artifacts:/<experiment id>``, which the artifact proxy serves.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
from uuid import UUID

from ledger.domain.base import aggregate_id
from ledger.errors import InvalidInputError
from ledger.validation import check_value

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
ARTIFACTS_SCHEME = "mlflow-artifacts:"
MAX_KEY = 250  # MLflow's MAX_ENTITY_KEY_LENGTH
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_NAME = 500
MAX_EXPERIMENT_TAG_VALUE = 20_000
MAX_MODEL_TAG_VALUE = 100_000  # logged model tags hold e.g. the versions registered from it
INT64 = range(-(2**63), 2**63)

_KEY = re.compile(r"[/\w.\- :]*")
_EXPERIMENT_ID = re.compile(r"[0-9]{1,19}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
# The non-finite metric values MLflow accepts, as its JSON writes them (JSON has no NaN).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def experiment_aggregate_id(experiment_id: str) -> UUID:
    return aggregate_id("mlflow_experiment", experiment_id)


def run_aggregate_id(run_id: str) -> UUID:
    return aggregate_id("mlflow_run", run_id)


def logged_model_aggregate_id(model_id: str) -> UUID:
    return aggregate_id("mlflow_logged_model", model_id)


def experiment_artifact_location(experiment_id: str) -> str:
    return f"{ARTIFACTS_SCHEME}/{experiment_id}"


def run_artifact_uri(experiment_location: str, run_id: str) -> str:
    return f"{experiment_location.rstrip('/')}/{run_id}/artifacts"


def model_artifact_location(experiment_location: str, model_id: str) -> str:
    return f"{experiment_location.rstrip('/')}/models/{model_id}/artifacts"


def check_experiment_id(experiment_id: str) -> str:
    """A decimal experiment id ("" is the default experiment, as in MLflow)."""
    experiment_id = experiment_id or DEFAULT_EXPERIMENT_ID
    if not _EXPERIMENT_ID.fullmatch(experiment_id) or int(experiment_id) not in INT64:
        raise InvalidInputError(
            f"invalid experiment id {experiment_id[:60]!r}: an experiment id is an integer"
        )
    return str(int(experiment_id))


def is_run_id(text: str) -> bool:
    return bool(_RUN_ID.fullmatch(text))


def is_model_id(text: str) -> bool:
    return bool(_MODEL_ID.fullmatch(text))


def check_text(what: str, text: str, limit: int) -> str:
    """Text the stores can hold (no NUL, no lone surrogate), at most ``limit`` characters."""
    check_value(what, text)
    if len(text) > limit:
        raise InvalidInputError(f"{what} has {len(text)} characters; at most {limit} are allowed")
    return text


def check_key(what: str, key: str) -> str:
    """A metric, parameter or tag key as MLflow takes them: letters, digits, '_', '-', '.',
    ' ', ':' and '/', at most 250, and not a path that resolves to another name."""
    check_value(what, key)
    if not _KEY.fullmatch(key):
        raise InvalidInputError(
            f"invalid {what} {key[:100]!r}: names may only contain alphanumerics, underscores "
            "(_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)"
        )
    normal = posixpath.normpath(key)
    if normal != key or normal == "." or normal.startswith(("..", "/")):
        raise InvalidInputError(
            f"invalid {what} {key[:100]!r}: names may be treated as files, and this one "
            f"would resolve to {normal!r}"
        )
    if len(key) > MAX_KEY:
        raise InvalidInputError(f"{what} {key[:60]!r}... is longer than {MAX_KEY} characters")
    return key


def check_tags(what: str, tags: dict[str, str], value_limit: int) -> dict[str, str]:
    for key, value in tags.items():
        check_key(f"{what} key", key)
        check_text(f"{what} {key!r}", value, value_limit)
    return dict(tags)


def check_int64(what: str, number: int) -> int:
    if number not in INT64:
        raise InvalidInputError(f"{what} {number} is outside the signed 64-bit range")
    return number


def encode_metric_value(value: float) -> float | str:
    """The value as events hold it: a finite number, or "NaN", "Infinity", "-Infinity"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def decode_metric_value(value: float | str) -> float:
    return NON_FINITE[value] if isinstance(value, str) else float(value)


_ADJECTIVES = (
    "able", "bold", "brave", "bright", "calm", "casual", "clever", "crisp", "dapper", "eager",
    "fair", "gentle", "glad", "honest", "jolly", "keen", "kind", "lively", "merry", "mighty",
    "neat", "nimble", "polite", "proud", "quick", "quiet", "rare", "sharp", "shy", "smooth",
    "sunny", "swift", "tidy", "upbeat", "vast", "warm", "wise", "witty", "zany", "zealous",
)  # fmt: skip
_NOUNS = (
    "ant", "bass", "bat", "bear", "bee", "carp", "cat", "colt", "crab", "crow", "deer", "doe",
    "dove", "duck", "eel", "elk", "finch", "fox", "frog", "goat", "hare", "hawk", "hen", "jay",
    "lark", "lynx", "mole", "moth", "mule", "newt", "owl", "panda", "seal", "shrew", "slug",
    "snail", "squid", "swan", "toad", "trout", "wolf", "wren", "yak",
)  # fmt: skip


def generated_run_name(run_id: str) -> str:
    """A name like MLflow's ("casual-shrew-789"), derived from the run id so that a command
    run again names the run the same."""
    digest = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")
    adjective = _ADJECTIVES[digest % len(_ADJECTIVES)]
    noun = _NOUNS[(digest // len(_ADJECTIVES)) % len(_NOUNS)]
    return f"{adjective}-{noun}-{digest % 1000}"
