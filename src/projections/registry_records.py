"""Models and versions as flat records, for another registry's wire format (MLflow's):
with their last update, where each version came from (its origin), tags and aliases.

Each read is one statement whose first column says what each row is (one round trip on
PostgreSQL): the wanted models or versions, then their tags and aliases.
"""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict

from ledger.errors import NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from projections.registry import (
    ALIASES,
    MODEL_TAGS,
    MODELS,
    VERSION_SPECS,
    VERSION_TAGS,
    VERSIONS,
)


class VersionRecord(TypedDict):
    """A live model version: times in microseconds, origin fields "" when not recorded."""

    model: str
    version: int
    created_at_us: int
    created_by: str
    updated_at_us: int
    description: str
    run_id: str
    source: str
    model_id: str
    run_link: str
    tags: dict[str, str]
    aliases: list[str]
    position: NotRequired[int]  # of its registration in the log (the order of creation)


class ModelRecord(TypedDict):
    """A live model with its newest live version (none when it has none)."""

    name: str
    description: str
    created_at_us: int
    created_by: str
    updated_at_us: int
    tags: dict[str, str]
    aliases: dict[str, int]
    latest: list[VersionRecord]
    position: NotRequired[int]  # of its creation in the log


# Every statement's rows have these columns (NULL where a kind of row has none; typed, as
# PostgreSQL types a UNION's columns from its first rows).
COLUMNS = {
    "model": "TEXT", "version": "BIGINT", "text": "TEXT", "text2": "TEXT", "created": "BIGINT",
    "updated": "BIGINT", "run_id": "TEXT", "source": "TEXT", "model_id": "TEXT",
    "run_link": "TEXT", "position": "BIGINT",
}  # fmt: skip


def select_row(what: str, **values: str) -> str:
    """``SELECT 'what', ...`` with ``values`` (SQL) in their columns, NULL in the others."""
    given = [values.get(column, f"CAST(NULL AS {kind})") for column, kind in COLUMNS.items()]
    return f"SELECT '{what}', {', '.join(given)}"


def version_rows(keys: str) -> str:
    """SQL for the rows of the versions named by ``keys`` (a relation with columns model and
    version): 'v' rows, then their tags ('vt') and aliases ('va'). Deleted ones are left out."""
    version = select_row(
        "v", model="v.model", version="v.version", text="v.created_by", text2="s.description",
        created="v.created_at_us", updated="s.updated_at_us", run_id="s.run_id",
        source="s.source", model_id="s.model_id", run_link="s.run_link",
        position="v.created_position",
    )  # fmt: skip
    tag = select_row("vt", model="t.model", version="t.version", text="t.key", text2="t.value")
    alias = select_row("va", model="a.model", version="a.version", text="a.alias")
    return (
        f"{version} FROM {keys} k JOIN {VERSIONS.name} v "
        "ON v.model = k.model AND v.version = k.version "
        f"JOIN {VERSION_SPECS.name} s ON s.model = k.model AND s.version = k.version "
        "WHERE v.status != 'deleted' "
        f"UNION ALL {tag} FROM {keys} k JOIN {VERSION_TAGS.name} t "
        "ON t.model = k.model AND t.version = k.version "
        f"UNION ALL {alias} FROM {keys} k JOIN {ALIASES.name} a "
        "ON a.model = k.model AND a.version = k.version"
    )


def model_rows(names: str) -> str:
    """SQL for the rows of the models named by ``names`` (a relation with a column name):
    'm' rows, their tags ('mt') and aliases ('ma'), and their newest live versions."""
    latest = (
        f"(SELECT n.name AS model, (SELECT v.version FROM {VERSIONS.name} v "
        "WHERE v.model = n.name AND v.status != 'deleted' ORDER BY v.version DESC LIMIT 1) "
        f"AS version FROM {names} n)"
    )
    model = select_row(
        "m", model="m.name", text="m.created_by", text2="m.description",
        created="m.created_at_us", updated="m.updated_at_us", position="m.created_position",
    )  # fmt: skip
    tag = select_row("mt", model="t.model", text="t.key", text2="t.value")
    alias = select_row("ma", model="a.model", version="a.version", text="a.alias")
    return (
        f"{model} FROM {names} n JOIN {MODELS.name} m ON m.name = n.name "
        f"UNION ALL {tag} FROM {names} n JOIN {MODEL_TAGS.name} t ON t.model = n.name "
        f"UNION ALL {alias} FROM {names} n JOIN {ALIASES.name} a ON a.model = n.name "
        f"UNION ALL {version_rows(latest)}"
    )


def gather_versions(rows: list[Row]) -> dict[tuple[str, int], VersionRecord]:
    """The version records in ``rows`` (by model and number), with tags and aliases."""
    versions: dict[tuple[str, int], VersionRecord] = {}
    for what, model, number, text, text2, created, updated, *origin, position in rows:
        if what == "v":
            run_id, source, model_id, run_link = origin
            versions[model, number] = VersionRecord(
                model=model, version=number, created_at_us=created, created_by=text,
                updated_at_us=updated, description=text2, run_id=run_id, source=source,
                model_id=model_id, run_link=run_link, tags={}, aliases=[], position=position,
            )  # fmt: skip
    for what, model, number, text, text2, *_ in rows:
        found = versions.get((model, number))
        if found is None:
            continue
        if what == "vt":
            found["tags"][text] = text2
        elif what == "va":
            found["aliases"].append(text)
    for found in versions.values():
        found["aliases"].sort()
    return versions


def gather_models(rows: list[Row]) -> dict[str, ModelRecord]:
    """The model records in ``rows`` (by name), each with its newest live version."""
    models: dict[str, ModelRecord] = {}
    for what, name, _, created_by, description, created, updated, *_, position in rows:
        if what == "m":
            models[name] = ModelRecord(
                name=name, description=description, created_at_us=created,
                created_by=created_by, updated_at_us=updated, tags={}, aliases={}, latest=[],
                position=position,
            )  # fmt: skip
    for what, name, number, text, text2, *_ in rows:
        if what == "mt":
            models[name]["tags"][text] = text2
        elif what == "ma":
            models[name]["aliases"][text] = number
    for (name, _), version in gather_versions(rows).items():
        models[name]["latest"] = [version]
    return models


def model_record(db: LedgerDatabase, name: str) -> ModelRecord:
    """A live model, with its newest live version; NotFoundError when there is none."""
    rows = db.execute(f"WITH wanted AS (SELECT ? AS name) {model_rows('wanted')}", (name,))
    found = gather_models(rows).get(name)
    if found is None:
        raise NotFoundError(f"registered model {name!r} does not exist")
    return found


def version_record(db: LedgerDatabase, name: str, number: int) -> VersionRecord:
    """A live version; NotFoundError when it does not exist or is deleted."""
    rows = db.execute(
        f"WITH wanted AS (SELECT ? AS model, ? AS version) {version_rows('wanted')}",
        (name, number),
    )
    found = gather_versions(rows).get((name, number))
    if found is None:
        raise NotFoundError(f"model version {name}:{number} does not exist")
    return found


def aliased_version_record(db: LedgerDatabase, name: str, alias: str) -> VersionRecord:
    """The version ``name@alias`` points at; NotFoundError for an unknown alias."""
    rows = db.execute(
        f"WITH wanted AS (SELECT model, version FROM {ALIASES.name} WHERE model = ? "
        f"AND alias = ?) {version_rows('wanted')}",
        (name, alias),
    )
    found = list(gather_versions(rows).values())
    if not found:
        raise NotFoundError(f"registered model {name!r} has no alias {alias!r}")
    return found[0]


def model_exists(db: LedgerDatabase, name: str) -> bool:
    """Whether ``name`` is a live model."""
    return bool(db.execute(f"SELECT 1 FROM {MODELS.name} WHERE name = ?", (name,)))
