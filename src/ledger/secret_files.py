"""LEDGER_<NAME>_FILE: a setting read from a file, the convention of Docker secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from ledger.errors import InvalidInputError

SUFFIX = "_FILE"


class SecretFilesSource(PydanticBaseSettingsSource):
    """Each setting whose ``<PREFIX><NAME>_FILE`` variable names a file takes that file's
    content, less its final line break (``LEDGER_STORE_PASSWORD_FILE=/run/secrets/db``).
    Setting both the variable and its ``_FILE`` is refused: which one wins would surprise."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The content of the file ``<PREFIX><NAME>_FILE`` names (None: no such variable)."""
        variable = f"{self.config.get('env_prefix', '')}{field_name}".upper()
        path = os.environ.get(variable + SUFFIX)
        if not path:
            return None, field_name, False
        if os.environ.get(variable):
            raise InvalidInputError(f"set {variable} or {variable}{SUFFIX}, not both")
        return _read(Path(path), variable + SUFFIX), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


def _read(path: Path, variable: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(
            f"{variable}={path}: cannot read it ({error.strerror or error})"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{variable}={path}: not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")
