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
        raise NotImplementedError  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix", ""))
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            variable = f"{prefix}{name}".upper()
            path = os.environ.get(variable + SUFFIX)
            if not path:
                continue
            if os.environ.get(variable):
                raise InvalidInputError(f"set {variable} or {variable}{SUFFIX}, not both")
            values[name] = _read(Path(path), variable + SUFFIX)
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
