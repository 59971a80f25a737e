"""ingest_import as deployed, checkpointing every IMPORT_CHECKPOINT_LINES lines instead of every 50,000 (so a
kill after a checkpoint needs a file of thousands of lines, not of hundreds of thousands)."""

import functools
import os

from shared.services import bulk_import

bulk_import.run_import = functools.partial(  # type: ignore[assignment]
    bulk_import.run_import, checkpoint_every=int(os.environ["IMPORT_CHECKPOINT_LINES"])
)

from functions.ingest_import.main import ingest_import  # noqa: E402

__all__ = ["ingest_import"]
