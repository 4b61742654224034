"""Pipelines: versioned DAGs of steps; cloning starts a new pipeline from an old one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.domain.base import aggregate_id
from ledger.domain.versioned import VersionedAsset
from ledger.errors import InvalidInputError


def pipeline_id(name: str) -> UUID:
    return aggregate_id("pipeline", name)


def validate_dag(spec: dict[str, Any]) -> list[str]:
    """Check ``spec["steps"]`` forms a DAG; return the step names in a runnable order."""
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        raise InvalidInputError("a pipeline needs a non-empty list of steps")
    depends: dict[str, list[str]] = {}
    for step in steps:
        name = step.get("name") if isinstance(step, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidInputError("every pipeline step needs a name")
        if name in depends:
            raise InvalidInputError(f"pipeline step {name!r} is defined twice")
        depends[name] = list(step.get("depends_on", []))
    for name, deps in depends.items():
        unknown = [d for d in deps if d not in depends]
        if unknown:
            raise InvalidInputError(f"step {name!r} depends on unknown step(s) {unknown}")
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise InvalidInputError(f"pipeline steps form a cycle through {name!r}")
        visiting.add(name)
        for dep in depends[name]:
            visit(dep)
        visiting.discard(name)
        done.add(name)
        order.append(name)

    for name in depends:
        visit(name)
    return order


class Pipeline(VersionedAsset):
    """A pipeline name; each version is a DAG spec identified by its digest."""

    kind = "pipeline"

    @classmethod
    def create(cls, name: str, cloned_from: str = "") -> Pipeline:
        return cls._create(cls.Created, id=pipeline_id(name), name=name, origin=cloned_from)
