"""Batch measurement over many studies: ``pvp-plan batch`` (see ``docs/batch.md``).

>>> from pvp_plan.batch import BatchOptions, run_batch
>>> summary = run_batch("cohort/", "out/", BatchOptions(workers=2))  # doctest: +SKIP

Studies come from a folder tree or a manifest CSV (:mod:`pvp_plan.batch.discover`); each runs as a task that
reads its own input in a worker (:mod:`pvp_plan.batch.task`); the runner (:mod:`pvp_plan.batch.runner`) uses a
crash-tolerant process pool or a Dask cluster and rebuilds the tables (:mod:`pvp_plan.batch.tables`) from the
per-study results, so a batch can be interrupted and resumed.
"""

from pvp_plan.batch.discover import ManifestError, Study, discover, read_manifest
from pvp_plan.batch.runner import BatchError, BatchOptions, BatchProgress, BatchSummary, run_batch
from pvp_plan.batch.tables import IDENTIFIER_COLUMNS, STUDY_COLUMNS, write_tables
from pvp_plan.batch.task import DEFAULT_COMPUTE, StudyTask, run_study

__all__ = [
    "DEFAULT_COMPUTE",
    "IDENTIFIER_COLUMNS",
    "STUDY_COLUMNS",
    "BatchError",
    "BatchOptions",
    "BatchProgress",
    "BatchSummary",
    "ManifestError",
    "Study",
    "StudyTask",
    "discover",
    "read_manifest",
    "run_batch",
    "run_study",
    "write_tables",
]
