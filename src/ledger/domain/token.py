"""API tokens: who may call the HTTP API, with which role. Only a token's hash is kept."""

from __future__ import annotations

from typing import Literal, get_args
from uuid import UUID

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.errors import InvalidInputError, RuleViolationError

Role = Literal["reader", "contributor", "deployer", "admin"]
# Each role may do everything the roles before it may.
ROLES: tuple[Role, ...] = get_args(Role)


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role


def role_allows(held: str, needed: Role) -> bool:
    return held in ROLES and ROLES.index(held) >= ROLES.index(needed)


def token_id(name: str) -> UUID:
    return aggregate_id("token", name)


class ApiToken(LedgerAggregate):
    """A named token; issuing it again (after a revoke) replaces its secret."""

    def __init__(self) -> None:
        self.name = ""
        self.role: Role = "reader"
        self.token_hash = ""
        self.revoked = False

    class Event(LedgerAggregate.Event):
        pass

    class Issued(Event, LedgerAggregate.Created):
        name: str
        role: Role
        token_hash: str  # sha256 of the secret, hex

        def apply(self, token: ApiToken) -> None:
            token.name, token.role, token.token_hash = self.name, self.role, self.token_hash

    class Reissued(Event):
        role: Role
        token_hash: str

        def apply(self, token: ApiToken) -> None:
            token.role, token.token_hash, token.revoked = self.role, self.token_hash, False

    class Revoked(Event):
        def apply(self, token: ApiToken) -> None:
            token.revoked = True

    @classmethod
    def issue(cls, name: str, role: Role, token_hash: str) -> ApiToken:
        return cls._create(
            cls.Issued, id=token_id(name), name=name, role=role, token_hash=token_hash
        )

    def reissue(self, role: Role, token_hash: str) -> None:
        if not self.revoked:
            raise RuleViolationError(f"token {self.name!r} exists; revoke it first")
        self.trigger_event(self.Reissued, role=role, token_hash=token_hash)

    def revoke(self) -> None:
        if self.revoked:
            raise RuleViolationError(f"token {self.name!r} is already revoked")
        self.trigger_event(self.Revoked)
