"""Model files go through the ledger byte-identical; escaping paths are refused. On the
local artifact store (SQLite and PostgreSQL) and on S3 and Azure (see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger.artifacts.paths import FileEntry
from ledger.errors import IntegrityViolationError, InvalidInputError
from ledger.ledger import Ledger
from tests.artifacts.damage import overwrite


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_three_file_model_round_trips_byte_identical(
    ledger: Ledger, model_dir: Path, tmp_path: Path
) -> None:
    version = ledger.models.register_version("iris", model_dir)
    assert [f["path"] for f in version.spec["files"]] == [
        "config.json",
        "sub/vocab.txt",
        "weights.bin",
    ]
    written = ledger.models.download_version("iris:1", tmp_path / "out")
    assert len(written) == 3
    assert _tree(tmp_path / "out") == _tree(model_dir)


def test_escaping_paths_are_refused(ledger: Ledger, model_dir: Path, tmp_path: Path) -> None:
    version = ledger.models.register_version("iris", model_dir)
    digest = version.spec["files"][0]["sha256"]
    for bad in ("../x", "/etc/passwd", "sub/../../x"):
        entry = FileEntry(path=bad, sha256=digest, size=1)
        with pytest.raises(InvalidInputError):
            ledger.artifacts.materialize([entry], tmp_path / "dest")
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


def test_symlink_out_of_the_model_directory_is_refused(
    ledger: Ledger, model_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    os.symlink(secret, model_dir / "sneaky")
    with pytest.raises(InvalidInputError, match="outside"):
        ledger.models.register_version("iris", model_dir)
    assert ledger.event_count() == 0


def test_corrupted_blob_is_detected_on_download(
    ledger: Ledger, model_dir: Path, tmp_path: Path
) -> None:
    version = ledger.models.register_version("iris", model_dir)
    weights = next(f for f in version.spec["files"] if f["path"] == "weights.bin")
    overwrite(ledger.artifacts, weights["sha256"], b"tampered")
    with pytest.raises(IntegrityViolationError, match=weights["sha256"]):
        ledger.models.download_version("iris:1", tmp_path / "out")
    assert not (tmp_path / "out" / "weights.bin").exists()
