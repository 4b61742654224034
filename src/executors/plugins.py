"""Choosing an executor by name: the built-in ones, or a plug-in's entry point."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from executors.graph import Executor
from ledger.errors import InvalidInputError
from ledger.settings import Settings

ENTRY_POINT_GROUP = "lifecycle_ledger.executors"


def _local(settings: Settings) -> Executor:
    from executors.local import LocalExecutor

    return LocalExecutor(settings.local_workers)


def _ray(settings: Settings) -> Executor:
    from executors.ray_executor import RayExecutor  # importing ray takes a second

    return RayExecutor(settings.ray_address, settings.ray_num_cpus)


BUILT_IN: dict[str, Callable[[Settings], Executor]] = {"local": _local, "ray": _ray}


def executor_names() -> list[str]:
    """Every executor that can be named: built-in ones, then plug-ins."""
    plugins = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return [*BUILT_IN, *(name for name in plugins if name not in BUILT_IN)]


def load_executor(name: str, settings: Settings) -> Executor:
    """A new executor named ``name``; plug-ins are factories ``(settings) -> Executor``."""
    factory = BUILT_IN.get(name)
    if factory is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise InvalidInputError(
                f"unknown executor {name!r}; available: {', '.join(executor_names())}"
            )
        factory = found[0].load()
    return factory(settings)
