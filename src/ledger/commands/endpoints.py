"""Endpoints: deployments and traffic, kept consistent with the versions they serve."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ledger.application import LedgerApplication
from ledger.commands.lookups import Lookups
from ledger.domain.endpoint import Endpoint, Resources, endpoint_id
from ledger.domain.environment import Environment, environment_id
from ledger.errors import RuleViolationError
from ledger.refs import check_name, parse_ref

DEFAULT_RESOURCES: Resources = {"cpus": 1.0, "gpus": 0, "memory_mb": 1024, "replicas": 1}


class EndpointCommands:
    """Commands and queries for endpoints and their deployments."""

    def __init__(self, application: LedgerApplication, lookups: Lookups) -> None:
        self._app = application
        self._lookups = lookups

    def create(
        self, name: str, kind: str = "online", *, description: str = "", reason: str = ""
    ) -> Endpoint:
        check_name(name, "endpoint name")

        def command() -> Endpoint:
            if self._app.exists(endpoint_id(name)):
                raise RuleViolationError(f"endpoint {name!r} already exists")
            endpoint = Endpoint.create(name, kind, description)
            self._app.save(endpoint)
            return endpoint

        return self._app.execute(reason, command)

    def get(self, name: str) -> Endpoint:
        return self._lookups.endpoint(name)

    def deploy(
        self,
        endpoint_name: str,
        deployment: str,
        model_ref: str,
        *,
        environment: str = "",
        resources: Resources | None = None,
        sampling_rate: float = 0.0,
        reason: str = "",
    ) -> Endpoint:
        """Deploy a model version; the version is marked in use in the same transaction.
        ``sampling_rate`` (0-1) is the share of its requests its replicas collect."""
        check_name(deployment, "deployment name")
        ref = parse_ref(model_ref)
        environment_ref = (
            self._lookups.exact_asset_ref(Environment, environment_id, environment)
            if environment
            else ""
        )

        def command() -> Endpoint:
            endpoint = self._lookups.endpoint(endpoint_name)
            version = self._lookups.resolve(ref)
            endpoint.add_deployment(
                deployment,
                version.model_name,
                version.number,
                environment_ref,
                resources or DEFAULT_RESOURCES,
                sampling_rate,
            )
            version.attach_deployment(endpoint_name, deployment)
            self._app.save(endpoint, version)
            return endpoint

        return self._app.execute(reason, command)

    def set_traffic(
        self, endpoint_name: str, weights: dict[str, int], *, reason: str = ""
    ) -> Endpoint:
        """Set the live split (whole percentages summing to 100; unnamed deployments get 0)."""
        return self._app.change(
            lambda: self._lookups.endpoint(endpoint_name), lambda e: e.set_traffic(weights), reason
        )

    def set_mirror(
        self, endpoint_name: str, mirror: dict[str, int], *, reason: str = ""
    ) -> Endpoint:
        """Copy a share of requests to deployments that take no live traffic."""
        return self._app.change(
            lambda: self._lookups.endpoint(endpoint_name), lambda e: e.set_mirror(mirror), reason
        )

    def set_sampling_rate(
        self, endpoint_name: str, deployment: str, sampling_rate: float, *, reason: str = ""
    ) -> Endpoint:
        """Collect this share (0-1) of a deployment's requests from now on (0: stop); its
        replicas take it without restarting."""
        return self._app.change(
            lambda: self._lookups.endpoint(endpoint_name),
            lambda e: e.set_sampling_rate(deployment, sampling_rate),
            reason,
        )

    def record_ground_truth(
        self, endpoint_name: str, path: Path, *, label_column: str = "label", reason: str = ""
    ) -> tuple[Endpoint, int]:
        """Store the true labels in ``path`` (CSV/Parquet: correlation_id, the label
        column, optionally row) for the endpoint's performance monitors; the endpoint and
        how many labels."""
        from pyarrow import parquet  # takes a while to import: only this needs it

        from ledger.ground_truth import normalized_labels

        # Refused before the file is read and stored: no blob is left behind for nothing.
        self._lookups.endpoint(endpoint_name).require_live_online("ground truth")
        labels = normalized_labels(path, label_column)
        with tempfile.TemporaryDirectory() as work:
            normalized = Path(work) / "labels.parquet"
            parquet.write_table(labels, normalized)
            digest, _ = self._app.artifacts.put_file(normalized)
        endpoint = self._app.change(
            lambda: self._lookups.endpoint(endpoint_name),
            lambda e: e.record_ground_truth(digest, labels.num_rows),
            reason,
        )
        return endpoint, labels.num_rows

    def report_health(
        self,
        endpoint_name: str,
        deployment: str,
        status: str,
        detail: str = "",
        *,
        reason: str = "",
    ) -> Endpoint:
        """Record a deployment's health (status and detail, e.g. the provider in use)."""
        return self._app.change(
            lambda: self._lookups.endpoint(endpoint_name),
            lambda e: e.report_health(deployment, status, detail),
            reason,
        )

    def undeploy(self, endpoint_name: str, deployment: str, *, reason: str = "") -> Endpoint:
        """Remove a deployment that receives no traffic; its version is freed atomically."""

        def command() -> Endpoint:
            endpoint = self._lookups.endpoint(endpoint_name)
            removed = endpoint.remove_deployment(deployment)
            version = self._lookups.version(removed["model"], removed["version"])
            version.detach_deployment(endpoint_name, deployment)
            self._app.save(endpoint, version)
            return endpoint

        return self._app.execute(reason, command)

    def delete(self, name: str, *, reason: str = "") -> None:
        """Delete an endpoint that has no deployments left."""
        self._app.change(lambda: self._lookups.endpoint(name), Endpoint.delete, reason)
