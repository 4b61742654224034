"""The second process of a bulk rebuild: ``python -m projections.bulk_load_process NAMES
BATCH_SIZE``.

Reads the settings (JSON) on stdin and brings the named projections up to the head
of the log, into the tables the rebuilding process has just created.
"""

from __future__ import annotations

import sys

from ledger.settings import Settings
from projections.catalog import all_read_models
from projections.updater import POISONED_EXIT, ViewUpdater
from projections.view_errors import PoisonedBulkLoad


def main(argv: list[str]) -> None:
    names, batch_size = argv[0].split(","), int(argv[1])
    settings = Settings.model_validate_json(sys.stdin.read())
    chosen = [p for p in all_read_models() if p.name in names]
    updater = ViewUpdater(settings, chosen, batch_size=batch_size, bulk_load=True)
    try:
        updater.catch_up()
    except PoisonedBulkLoad:
        sys.exit(POISONED_EXIT)  # the rebuilding process starts again, batch by batch
    finally:
        updater.close()


if __name__ == "__main__":
    main(sys.argv[1:])
