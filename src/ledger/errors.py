"""Errors a user can cause; each carries a message fit to show as is."""


class LedgerError(Exception):
    """Base class of every user-facing ledger error."""


class NotFoundError(LedgerError):
    """The named entity does not exist."""


class RuleViolationError(LedgerError):
    """The command breaks a domain rule (e.g. deleting a deployed version)."""


class InvalidInputError(LedgerError):
    """The input is malformed (bad reference, bad weights, unreadable file...)."""


class AlreadyExistsError(LedgerError):
    """The entity to create exists already (e.g. a model created twice)."""


class PermissionDeniedError(LedgerError):
    """The acting principal's role does not allow this (e.g. approving for a higher role)."""


class IntegrityViolationError(LedgerError):
    """Stored data does not match its digest: the store was corrupted or tampered with."""


class ConcurrencyError(LedgerError):
    """Concurrent writers kept conflicting after every retry."""


class BusUnavailableError(LedgerError):
    """NATS cannot be reached, or its stream or consumer does not fit the settings."""


class BusCredentialsError(LedgerError):
    """NATS refuses the ledger's credentials: not retried, an operator must fix them."""


class ServingUnavailableError(LedgerError):
    """A deployment cannot answer now (its replicas failed to start, or died)."""


class ArtifactStoreUnavailableError(LedgerError):
    """The artifact store cannot be used now: its server is unreachable, it refuses the
    credentials, or its bucket (container) does not exist. Answered 503, like an outage."""
