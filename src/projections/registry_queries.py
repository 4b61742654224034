"""Reading the registry and endpoint views: what `model list/show` and `endpoint show` print."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from ledger.errors import NotFoundError
from ledger.refs import Ref, parse_ref
from ledger.shapes import DeploymentOut, EndpointOut, ModelOut, VersionOut, version_out
from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from ledger.storage.timestamps import iso
from projections.endpoints import DEPLOYMENTS, ENDPOINTS, deployment_view
from projections.registry import (
    ALIASES,
    MODEL_TAGS,
    MODELS,
    VERSION_DEPLOYMENTS,
    VERSION_SPECS,
    VERSION_TAGS,
    VERSIONS,
)


class RegistryQueries:
    """Models, versions and endpoints, read from the views."""

    def __init__(self, db: LedgerDatabase) -> None:
        self.db = db

    # -- models --------------------------------------------------------------------------

    def models(self) -> list[ModelOut]:
        """Every model, in registration order, with tags, aliases and live version count."""
        tags = self._grouped(f"SELECT model, key, value FROM {MODEL_TAGS.name}")
        aliases = self._grouped(f"SELECT model, alias, version FROM {ALIASES.name}")
        live: dict[str, int] = dict(
            self.db.execute(
                f"SELECT model, count(*) FROM {VERSIONS.name} WHERE status != 'deleted' "
                "GROUP BY model"
            )
        )
        return [
            self._model(row, tags.get(row[0], {}), aliases.get(row[0], {}), live.get(row[0], 0))
            for row in self.db.execute(
                f"SELECT name, description, latest_version, created_at_us, created_by "
                f"FROM {MODELS.name} ORDER BY created_position"
            )
        ]

    def model(self, name: str) -> ModelOut:
        rows = self.db.execute(
            f"SELECT name, description, latest_version, created_at_us, created_by "
            f"FROM {MODELS.name} WHERE name = ?",
            (name,),
        )
        if not rows:
            raise NotFoundError(f"model {name!r} does not exist")
        tags = self._pairs(f"SELECT key, value FROM {MODEL_TAGS.name} WHERE model = ?", name)
        aliases = self._pairs(f"SELECT alias, version FROM {ALIASES.name} WHERE model = ?", name)
        live = self.db.execute(
            f"SELECT count(*) FROM {VERSIONS.name} WHERE model = ? AND status != 'deleted'",
            (name,),
        )[0][0]
        return self._model(rows[0], tags, aliases, live)

    @staticmethod
    def _model(row: Row, tags: dict[str, Any], aliases: dict[str, Any], live: int) -> ModelOut:
        name, description, latest, created_at_us, created_by = row
        return ModelOut(
            name=name,
            description=description,
            latest_version=latest,
            live_versions=live,
            tags=tags,
            aliases=aliases,
            created_at=iso(created_at_us),
            created_by=created_by,
        )

    # -- versions ------------------------------------------------------------------------

    def versions(
        self, model: str, *, limit: int = 50, include_deleted: bool = False, before: int = 0
    ) -> list[VersionOut]:
        """The model's versions, newest first (``before``: only those numbered below it)."""
        self.model(model)
        hide = "" if include_deleted else "AND status != 'deleted'"
        below = "AND version < ? " if before else ""
        newest = (
            f"WITH wanted AS (SELECT version FROM {VERSIONS.name} WHERE model = ? {hide} "
            f"{below}ORDER BY version DESC LIMIT ?) "
        )
        params = (model, *([before] if before else []), limit)
        return self._read_versions(
            model, "version IN (SELECT version FROM wanted)", (), prefix=(newest, params)
        )

    def version(self, ref_text: str) -> VersionOut:
        """Resolve ``name`` (latest live version), ``name:3`` or ``name@alias``."""
        ref: Ref = parse_ref(ref_text)
        self.model(ref.name)
        if ref.alias is not None:
            found = self.db.execute(
                f"SELECT version FROM {ALIASES.name} WHERE model = ? AND alias = ?",
                (ref.name, ref.alias),
            )
            if not found:
                raise NotFoundError(f"model {ref.name!r} has no alias {ref.alias!r}")
            return self.version_of(ref.name, found[0][0])
        if ref.version is not None:
            return self.version_of(ref.name, ref.version)
        found = self.db.execute(
            f"SELECT max(version) FROM {VERSIONS.name} WHERE model = ? AND status != 'deleted'",
            (ref.name,),
        )
        if found[0][0] is None:
            raise NotFoundError(f"model {ref.name!r} has no live versions")
        return self.version_of(ref.name, found[0][0])

    def version_of(self, model: str, number: int) -> VersionOut:
        found = self._read_versions(model, "version = ?", (number,))
        if not found:
            raise NotFoundError(f"model version {model}:{number} does not exist")
        return found[0]

    def _read_versions(
        self,
        model: str,
        wanted: str,
        params: tuple[Any, ...],
        prefix: tuple[str, tuple[Any, ...]] = ("", ()),
    ) -> list[VersionOut]:
        """The model's versions whose number meets ``wanted`` (SQL on ``version``, with
        ``params``; ``prefix``: a WITH clause it uses), newest first, with their tags,
        aliases and deployments: one statement whose first column says what each row is
        (one round trip on PostgreSQL)."""
        rows = self.db.execute(
            f"{prefix[0]}SELECT 'v', v.version, v.status, v.created_by, v.created_at_us, s.spec "
            f"FROM {VERSIONS.name} v JOIN {VERSION_SPECS.name} s "
            "ON s.model = v.model AND s.version = v.version "
            f"WHERE v.model = ? AND v.{wanted} "
            "UNION ALL SELECT 't', version, key, value, NULL, NULL "
            f"FROM {VERSION_TAGS.name} WHERE model = ? AND {wanted} "
            "UNION ALL SELECT 'a', version, alias, NULL, NULL, NULL "
            f"FROM {ALIASES.name} WHERE model = ? AND {wanted} "
            "UNION ALL SELECT 'd', version, endpoint, deployment, NULL, NULL "
            f"FROM {VERSION_DEPLOYMENTS.name} WHERE model = ? AND {wanted} "
            "ORDER BY 2 DESC, 1, 3, 4",
            (*prefix[1], *(model, *params) * 4),
        )
        versions: dict[int, VersionOut] = {}
        for what, number, *values in rows:
            if what == "v":
                status, created_by, created_at_us, spec_json = values
                versions[number] = version_out(
                    model,
                    number,
                    orjson.loads(spec_json),
                    status=status,
                    tags={},
                    aliases=[],
                    deployments=[],
                    created_at_us=created_at_us,
                    created_by=created_by,
                )
        for what, number, *values in rows:
            version = versions[number]
            if what == "t":
                version["tags"][values[0]] = values[1]
            elif what == "a":
                version["aliases"].append(values[0])
            elif what == "d":
                version["deployments"].append({"endpoint": values[0], "deployment": values[1]})
        return list(versions.values())

    # -- endpoints -----------------------------------------------------------------------

    def endpoints(self) -> list[EndpointOut]:
        return [
            self._endpoint(row)
            for row in self.db.execute(
                f"SELECT {', '.join(ENDPOINTS.column_names)} FROM {ENDPOINTS.name} "
                "ORDER BY created_position"
            )
        ]

    def endpoint(self, name: str) -> EndpointOut:
        rows = self.db.execute(
            f"SELECT {', '.join(ENDPOINTS.column_names)} FROM {ENDPOINTS.name} WHERE name = ?",
            (name,),
        )
        if not rows:
            raise NotFoundError(f"endpoint {name!r} does not exist")
        return self._endpoint(rows[0])

    def _endpoint(self, row: Row) -> EndpointOut:
        name, kind, description, status, created_at_us, created_by, _ = row
        deployments: dict[str, DeploymentOut] = {}
        for row in self.db.execute(
            f"SELECT {', '.join(DEPLOYMENTS.column_names[1:])} FROM {DEPLOYMENTS.name} "
            "WHERE endpoint = ? ORDER BY deployment",
            (name,),
        ):
            deployment, *values = row
            traffic, mirror, deployed_at_us, deployed_by = values[6:10]
            deployments[deployment] = DeploymentOut(
                **deployment_view(tuple(values)),
                traffic=traffic,
                mirror=mirror,
                deployed_at=iso(deployed_at_us),
                deployed_by=deployed_by,
            )
        return EndpointOut(
            name=name,
            kind=kind,
            description=description,
            deleted=status == "deleted",
            deployments=deployments,
            traffic={d: v["traffic"] for d, v in deployments.items() if v["traffic"]},
            mirror={d: v["mirror"] for d, v in deployments.items() if v["mirror"]},
            created_at=iso(created_at_us),
            created_by=created_by,
        )

    # -- helpers -------------------------------------------------------------------------

    def _pairs(self, statement: str, *params: Any) -> dict[str, Any]:
        return {key: value for key, value in sorted(self.db.execute(statement, params))}

    def _grouped(self, statement: str) -> dict[str, dict[str, Any]]:
        grouped: dict[str, dict[str, Any]] = defaultdict(dict)
        for owner, key, value in sorted(self.db.execute(statement)):
            grouped[owner][key] = value
        return grouped
