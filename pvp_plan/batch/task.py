"""The unit of work of a batch: one study, run in a worker process (process pool or Dask).

A task carries paths, never arrays: the worker reads its own input, writes the study's outputs under
``studies/<study_id>/`` and finally, atomically, ``result.json`` -- the study's commit marker. A study whose
``result.json`` exists is finished and is never recomputed on ``--resume``.

The compute step is named by a ``"module:function"`` string (default :data:`DEFAULT_COMPUTE`) so tests and
benchmarks can inject another one; it is resolved inside the worker.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import json
import logging
import re
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvp_plan import __version__
from pvp_plan.errors import PvpPlanError
from pvp_plan.io.atomic import atomic_write_text

logger = logging.getLogger(__name__)

#: The compute step used unless a test or benchmark injects another.
DEFAULT_COMPUTE = "pvp_plan.batch.task:plan_study"
#: Name of the per-study result file (written last, atomically).
RESULT_NAME = "result.json"
#: Message recorded for a study whose worker died (process pool) or was killed repeatedly (Dask).
CRASH_MESSAGE = "worker crashed (out of memory?) while computing this study"

_UID_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+){4,}(?![\w.])")
_threads_limited = False


@dataclass(frozen=True)
class StudyTask:
    """Everything a worker needs for one study (small and picklable: paths and plain values).

    ``options`` are the keyword arguments of ``PlanOptions`` (plain values); ``redact`` the strings to
    remove from messages unless ``keep_identifiers``.
    """

    study_id: str
    path: str
    study_dir: str
    series_uid: str | None = None
    anchor: str | None = None
    segmentation: str | None = None
    options: dict = field(default_factory=dict)
    compute: str = DEFAULT_COMPUTE
    keep_identifiers: bool = False
    redact: tuple[str, ...] = field(default=(), repr=False)


def run_study(task: StudyTask) -> dict:
    """Compute one study and write its outputs and ``result.json``; never raises for a bad study.

    Returns the result dict (also written to ``studies/<study_id>/result.json``). Failures of the input
    or the pipeline are recorded as ``status="failed"`` with a message; internal errors also leave a
    redacted ``traceback.txt`` next to it.
    """
    start = time.perf_counter()
    limit_threads()
    study_dir = Path(task.study_dir)
    if study_dir.exists():  # leftovers of an interrupted or failed attempt
        shutil.rmtree(study_dir)
    study_dir.mkdir(parents=True)
    result: dict[str, Any] = {"study_id": task.study_id, "status": "ok", "message": ""}
    t0 = None
    try:
        compute = resolve_callable(task.compute)
        t0 = time.perf_counter()
        outcome = compute(task.path, series=task.series_uid, anchor=task.anchor, segmentation=task.segmentation,
                          options=dict(task.options), study_dir=study_dir, keep_identifiers=task.keep_identifiers)
        result.update(outcome)
    except MemoryError:
        result.update(status="failed", message="out of memory while computing this study (see --max-memory-gb)")
    except PvpPlanError as exc:
        result.update(status="failed", message=str(exc))
    except Exception as exc:  # an internal error must fail the study, not the batch
        result.update(status="failed", message=f"internal error {type(exc).__name__}: {exc}")
        tb = traceback.format_exc()
        atomic_write_text(study_dir / "traceback.txt", tb if task.keep_identifiers else redact(tb, task.redact))
    compute_seconds = None if t0 is None else time.perf_counter() - t0  # until success or failure
    result.setdefault("levels", [])
    result["n_levels"] = len(result["levels"])
    result["software_version"] = __version__
    result["compute_seconds"] = compute_seconds
    if task.keep_identifiers:
        result.update(input_path=task.path, series_uid=task.series_uid)
    else:  # messages and provenance may quote paths or header values; the tables' rows hold measurements
        result["message"] = redact(result["message"], task.redact)
        if "provenance" in result:
            result["provenance"] = redact_obj(result["provenance"], task.redact)
        for path in sorted(study_dir.glob("*.json")):  # plan.json and any other JSON the step wrote
            redact_json_file(path, task.redact)
    result["seconds"] = time.perf_counter() - start
    result = plain(result)  # what is returned is exactly what is read back on --resume
    write_result(study_dir, result)
    return result


def plain(obj: Any) -> Any:
    """``obj`` as plain JSON types (numpy scalars and arrays, enums, paths, tuples converted)."""
    return json.loads(json.dumps(obj, default=_to_json))


def _to_json(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if hasattr(value, "value") and isinstance(value.value, (str, int, float)):  # enums
        return value.value
    return str(value)


def plan_study(path: str, *, series: str | None, anchor: str | None, options: dict, study_dir: Path,
               keep_identifiers: bool, segmentation: str | None = None) -> dict:
    """The default compute step: :func:`pvp_plan.pipeline.run_case` on one input, outputs in ``study_dir``.

    ``segmentation`` (a label map path, from the manifest) replaces automatic segmentation.

    Writes ``plan.json``, ``plan.csv`` and ``vertebral_bodies.nii.gz`` (label map on the input's grid). Returns
    ``levels`` (:meth:`CasePlan.table_rows`), ``provenance`` (:meth:`CTVolume.provenance`) and ``files``.
    """
    from pvp_plan.pipeline import PlanOptions, run_case, write_case_outputs

    kwargs = dict(options, keep_identifiers=keep_identifiers)
    if anchor:
        kwargs["anchor"] = anchor
    plan = run_case(path, options=PlanOptions(**kwargs), series=series, segmentation_path=segmentation)
    files = write_case_outputs(plan, study_dir, html=False, label_map=True)
    rows = [{**row, **research_columns(lp)} for row, lp in zip(plan.table_rows(), plan.levels, strict=True)]
    return {
        "levels": rows,
        "provenance": plan.ct.provenance(),
        "segmentation_method": getattr(plan.segmentation, "method", ""),
        "files": sorted(Path(p).relative_to(study_dir).as_posix() for p in files.values()),
    }


#: Modules the default step imports lazily; process-pool workers import them at start-up.
plan_study.preload = ("pvp_plan.pipeline", "pvp_plan.segment", "pvp_plan.needle", "pvp_plan.io")


def research_columns(level_plan) -> dict:
    """Per-level measurements the batch table adds after the plan's own columns (None when not measured).

    Volume band (one-voxel erosion / dilation), the trabecular HU statistics, lytic / sclerotic fractions,
    height ratios and the confidences, as stored in ``plan.json``.
    """
    d = getattr(level_plan, "density", None)
    c = getattr(level_plan, "collapse", None)
    return {
        "volume_low_ml": _round(getattr(level_plan, "volume_low_ml", None), 2),
        "volume_high_ml": _round(getattr(level_plan, "volume_high_ml", None), 2),
        "hu_mean": _round(getattr(d, "hu_mean", None), 1),
        "hu_p05": _round(getattr(d, "hu_p05", None), 1),
        "hu_p95": _round(getattr(d, "hu_p95", None), 1),
        "hu_std": _round(getattr(d, "hu_std", None), 1),
        "lytic_fraction": _round(getattr(d, "lytic_fraction", None), 3),
        "sclerotic_fraction": _round(getattr(d, "sclerotic_fraction", None), 3),
        "ratio_to_own_posterior": _round(getattr(c, "own_ratio", None), 2),
        "ratio_to_neighbours": _round(getattr(c, "neighbour_ratio", None), 2),
        "vertebra_plana": getattr(c, "vertebra_plana", None),
        "level_confidence": _round(getattr(level_plan, "level_confidence", None), 2),
        "segmentation_confidence": _round(getattr(level_plan, "segmentation_confidence", None), 2),
    }


def _round(value, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def redact_json_file(path: Path, identifiers: tuple[str, ...]) -> bool:
    """Rewrite a JSON output with :func:`redact_obj` applied, if that changes it; True when rewritten.

    A safety net for outputs written by the pipeline (e.g. a file name quoted as the series description).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    clean = redact_obj(data, identifiers)
    if clean == data:
        return False
    atomic_write_text(path, json.dumps(clean, indent=2, allow_nan=False))
    return True


def write_result(study_dir: Path, result: dict) -> Path:
    """Write ``result.json`` atomically. Key order is kept: it is the column order of the level rows."""
    return atomic_write_text(Path(study_dir) / RESULT_NAME, json.dumps(result, indent=1, default=_to_json))


def read_result(study_dir: Path) -> dict | None:
    """The finished result of a study, or None when it has none (not run, interrupted, unreadable)."""
    try:
        return json.loads((Path(study_dir) / RESULT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def resolve_callable(spec: str):
    """Import ``"package.module:function"``."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"compute step {spec!r}: expected 'package.module:function'")
    return getattr(importlib.import_module(module), name)


def redact(text: str, identifiers: tuple[str, ...] | list[str]) -> str:
    """``text`` with every identifier (paths, names, IDs, dates, UIDs) replaced.

    Paths become ``<input>`` wherever they occur, other identifiers ``<redacted>`` only as whole words;
    anything shaped like a DICOM UID (five or more dot-separated numbers) becomes ``<uid>``.
    """
    paths, words = _patterns(tuple(sorted(set(identifiers))))
    if paths is not None:
        text = paths.sub("<input>", text)
    if words is not None:
        text = words.sub("<redacted>", text)
    return _UID_RE.sub("<uid>", text)


@functools.lru_cache(maxsize=64)
def _patterns(identifiers: tuple[str, ...]) -> tuple[re.Pattern | None, re.Pattern | None]:
    """One compiled alternation for the paths and one for the words (longest first)."""
    usable = sorted((i for i in identifiers if len(i) >= 3), key=len, reverse=True)
    paths = [re.escape(i) for i in usable if "/" in i or "\\" in i]
    words = [re.escape(i) for i in usable if not ("/" in i or "\\" in i)]
    return (re.compile("|".join(paths)) if paths else None,
            re.compile(rf"(?<![A-Za-z0-9_])(?:{'|'.join(words)})(?![A-Za-z0-9_])") if words else None)


def redact_obj(obj: Any, identifiers: tuple[str, ...]) -> Any:
    """Apply :func:`redact` to every string value inside nested dicts and lists (keys are left as they are)."""
    if isinstance(obj, str):
        return redact(obj, identifiers)
    if isinstance(obj, dict):
        return {k: redact_obj(v, identifiers) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v, identifiers) for v in obj]
    return obj


def limit_threads(n: int = 1) -> None:
    """Limit this process to ``n`` ITK and BLAS threads (idempotent), so parallel workers do not oversubscribe.

    SimpleITK through ``ProcessObject.SetGlobalDefaultNumberOfThreads``; OpenBLAS (numpy's and scipy's
    bundled copies) through its ``*_set_num_threads`` entry points found among the loaded libraries.
    """
    global _threads_limited
    if _threads_limited:
        return
    _threads_limited = True
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    except Exception:  # pragma: no cover - SimpleITK is a core dependency
        logger.debug("could not limit SimpleITK threads", exc_info=True)
    import numpy  # noqa: F401  (load numpy's BLAS so it can be limited)

    for lib in _loaded_blas_libraries():
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for symbol in ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
                       "scipy_openblas_set_num_threads", "openblas_set_num_threads64_"):
            func = getattr(handle, symbol, None)
            if func is not None:
                func(ctypes.c_int(n))
                break


def _loaded_blas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:  # not Linux: ITK threads are limited, BLAS left as is
        return []
    return sorted(p for p in paths if p.startswith("/"))
