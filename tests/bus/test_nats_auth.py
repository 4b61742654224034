"""NATS with authentication and TLS: the compose file's server configuration with its
least-privilege users, tokens, NKeys and mutual TLS, and one clear line when NATS refuses
the ledger's credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.utils
import nats
import nkeys
import pytest

from ledger.bus import open_bus
from ledger.bus.nats_auth import check_nats_credentials, connect_options
from ledger.bus.relay import Relay
from ledger.errors import BusCredentialsError
from ledger.settings import Settings
from tests.bus_support import (
    PrivateNats,
    append_events,
    assert_exactly_once_in_order,
    consumer_settled,
    handled_rows,
    in_background,
    record,
    wait_for,
)
from tests.certificates import Authority
from tests.conftest import StoreFactory
from tests.paths import REPO

COMPOSE_NATS_CONF = REPO / "deploy" / "nats.conf"
PASSWORDS = {"LEDGER_NATS_RELAY_PASSWORD": "relay-secret", "LEDGER_NATS_SERVICE_PASSWORD": "svc"}


@pytest.fixture
def compose_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    """A nats-server running the compose file's configuration."""
    server = PrivateNats(tmp_path / "nats", COMPOSE_NATS_CONF, PASSWORDS)
    server.start()
    yield server
    server.stop()


def _on(store: StoreFactory, server: PrivateNats, **auth: Any) -> Settings:
    """The test store, publishing to the default stream on ``server`` (whose configuration
    names the stream LEDGER and the subjects ledger.>)."""
    return store.settings(nats_url=server.url, nats_ack_wait_s=1.0, **auth)


def _permission_violations(server: PrivateNats) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if "Violation" in line]


def test_the_compose_users_relay_and_consume_with_only_their_permissions(
    store: StoreFactory, compose_nats: PrivateNats
) -> None:
    relay_settings = _on(store, compose_nats, nats_user="relay", nats_password="relay-secret")
    service = _on(store, compose_nats, nats_user="ledger", nats_password="svc")
    _relay_and_consume(relay_settings, service)
    assert _permission_violations(compose_nats) == []
    # What the others may not do: the services publish no events, the relay reads nothing.
    assert "permissions violation" in _try_publish(service).lower()
    assert "permissions violation" in _try_publish(relay_settings, consume=True).lower()


def _try_publish(settings: Settings, consume: bool = False) -> str:
    """What NATS answers when ``settings``' user publishes an event (or, ``consume``,
    creates a consumer) itself."""
    errors: list[str] = []

    async def run() -> None:
        async def note(error: Exception) -> None:
            errors.append(str(error))

        client = await nats.connect(settings.nats_url, error_cb=note, **connect_options(settings))
        try:
            if consume:
                try:
                    await client.jetstream(timeout=2).consumer_info("LEDGER", "auditor")
                except Exception as error:  # a timeout: the request was not allowed
                    errors.append(str(error))
            else:
                await client.publish("ledger.model.registered", b"{}")
                await client.flush()
                await asyncio.sleep(0.5)
        finally:
            await client.close()

    asyncio.run(run())
    return " ".join(errors)


def test_a_token_authenticates(store: StoreFactory, tmp_path: Path) -> None:
    config = tmp_path / "token.conf"
    config.write_text('authorization { token: "s3cret-token" }\n')
    _relays_and_consumes(store, tmp_path, config, nats_token="s3cret-token")
    refused = _settings_on(store, tmp_path, config, nats_token="wrong")
    with pytest.raises(BusCredentialsError, match=r"refuses the credentials \(a token\)"):
        check_nats_credentials(refused)


def test_an_nkey_authenticates(store: StoreFactory, tmp_path: Path) -> None:
    seed = nkeys.encode_seed(nacl.utils.random(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    (tmp_path / "ledger.nk").write_bytes(seed)
    config = tmp_path / "nkey.conf"
    config.write_text(f'authorization {{ users = [{{ nkey: "{public}" }}] }}\n')
    _relays_and_consumes(store, tmp_path, config, nats_nkey_seed=tmp_path / "ledger.nk")
    other = nkeys.encode_seed(nacl.utils.random(32), nkeys.PREFIX_BYTE_USER)
    (tmp_path / "other.nk").write_bytes(other)
    refused = _settings_on(store, tmp_path, config, nats_nkey_seed=tmp_path / "other.nk")
    with pytest.raises(BusCredentialsError, match=r"refuses the credentials \(the NKey in"):
        check_nats_credentials(refused)


def test_mutual_tls(store: StoreFactory, tmp_path: Path) -> None:
    ca = Authority.create(tmp_path / "pki")
    server = ca.issue("nats-server")
    client = ca.issue("ledger", client=True)
    config = tmp_path / "tls.conf"
    config.write_text(
        f'tls {{ cert_file: "{server.cert}", key_file: "{server.key}", '
        f'ca_file: "{ca.cert}", verify: true, timeout: 5 }}\n'
    )
    tls = {"nats_tls_ca": ca.cert, "nats_tls_cert": client.cert, "nats_tls_key": client.key}
    _relays_and_consumes(store, tmp_path, config, **tls)
    stranger = Authority.create(tmp_path / "other-pki", "another CA")
    wrong_ca = _settings_on(store, tmp_path, config, **(tls | {"nats_tls_ca": stranger.cert}))
    with pytest.raises(
        BusCredentialsError, match=r"TLS with NATS at \S+ failed: CERTIFICATE_VERIFY_FAILED"
    ):
        check_nats_credentials(wrong_ca)


_SERVERS: dict[Path, PrivateNats] = {}


@pytest.fixture(autouse=True)
def _stop_servers() -> Iterator[None]:
    yield
    for server in _SERVERS.values():
        server.stop()
    _SERVERS.clear()


def _settings_on(store: StoreFactory, tmp_path: Path, config: Path, **auth: Any) -> Settings:
    """Settings for the nats-server running ``config`` (started on first use)."""
    if config not in _SERVERS:
        _SERVERS[config] = PrivateNats(tmp_path / f"nats-{config.stem}", config)
        _SERVERS[config].start()
    return _on(store, _SERVERS[config], **auth)


def _relays_and_consumes(store: StoreFactory, tmp_path: Path, config: Path, **auth: Any) -> None:
    settings = _settings_on(store, tmp_path, config, **auth)
    check_nats_credentials(settings)
    _relay_and_consume(settings, settings)


def _relay_and_consume(relaying: Settings, consuming: Settings) -> None:
    """A relay with ``relaying``'s credentials publishes the log, a durable consumer with
    ``consuming``'s handles every event once."""
    head = append_events(relaying, aggregates=3, per_aggregate=10)
    bus = open_bus(consuming)
    bus.subscribe("auditor", record)
    with in_background(Relay(relaying).run, bus.run):
        wait_for(lambda: len(handled_rows(consuming)) >= head, 60, "every event handled")
        wait_for(lambda: consumer_settled(consuming, "auditor"), 30, "every event acknowledged")
    assert_exactly_once_in_order(consuming, head)
