"""The planner's state and actions, free of Qt and napari (testable on its own).

:class:`PlannerModel` holds the CT, the editable VerSe label map, the segmentation and the
per-level plans. Every clinical figure comes from :mod:`pvp_plan.pipeline` (``plan_case`` for the
whole case, ``plan_level`` for one level after an edit); this module only moves labels around
(rename, shift, merge, split) and decides *which* levels need recomputing.

Long steps are generators yielding :class:`Progress`, so the widget can run them in a napari
``thread_worker`` and keep the UI responsive; the results are applied on the main thread with
``accept_*`` methods.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pvp_plan.errors import LabelMapError, PlanError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.label_boxes import label_counts
from pvp_plan.levels import VERSE_LABELS, Level
from pvp_plan.rules.session import NEEDLE_GAUGES
from pvp_plan.segment import implausible_levels
from pvp_plan.segment.naming import NAMING_SOURCE
from pvp_plan.segment.types import Segmentation

logger = logging.getLogger(__name__)

#: Needle gauges the planner offers (from the rules).
GAUGES: tuple[str, ...] = tuple(NEEDLE_GAUGES)
_VERSE_VALUES = frozenset(VERSE_LABELS.values())


@dataclass(frozen=True)
class Progress:
    """One progress report: ``fraction`` in [0, 1] (None when unknown) and a short message."""

    fraction: float | None
    message: str


@dataclass(frozen=True)
class Failure:
    """A step that failed: the message to show the user (pvp-plan errors say what is wrong and the fix)."""

    message: str


def guarded(steps: Generator[Progress, None, Any]) -> Generator[Progress, None, Any]:
    """Run a step generator, turning any exception into a returned :class:`Failure` (never a traceback dialog)."""
    from pvp_plan.errors import PvpPlanError

    try:
        return (yield from steps)
    except PvpPlanError as exc:
        return Failure(str(exc))
    except Exception as exc:  # a bug: log the traceback, show one line
        logger.exception("pvp-plan planner step failed")
        return Failure(f"unexpected error ({type(exc).__name__}): {exc}")


def guarded_call(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Call ``fn``; return its result or a :class:`Failure` (for non-generator worker steps)."""
    gen = guarded(_as_generator(fn, *args, **kwargs))
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def _as_generator(fn, *args, **kwargs):
    return fn(*args, **kwargs)
    yield  # pragma: no cover  (makes this a generator)


@dataclass(frozen=True)
class RunResult:
    """What a full run produced (applied on the main thread by :meth:`PlannerModel.accept_run`)."""

    segmentation: Segmentation
    plan: Any  # pvp_plan.pipeline.CasePlan


@dataclass(frozen=True)
class ExportResult:
    """Files an export wrote, whether the label map was edited by hand, and what was skipped (and why)."""

    paths: tuple[Path, ...]
    edited: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LevelUpdate:
    """The result of recomputing some levels after an edit."""

    segmentation: Segmentation
    level_plans: dict[int, Any]  # VerSe label -> LevelPlan (only the recomputed levels)
    removed: frozenset[int]  # labels that no longer exist
    seconds: float = 0.0


def call_with_progress(fn: Callable[..., Any], /, *args, start: float = 0.0, stop: float = 1.0,
                       **kwargs) -> Generator[Progress, None, Any]:
    """Run ``fn(*args, progress=callback, **kwargs)`` and yield its progress reports as they happen.

    ``fn`` runs in a helper thread so its callback reports can be yielded from this generator
    (which itself runs in the worker thread); its fractions are mapped onto ``[start, stop]``.
    Returns ``fn``'s result; re-raises its exception.
    """
    reports: queue.Queue = queue.Queue()
    done = object()
    outcome: dict[str, Any] = {}

    def callback(*report) -> None:
        reports.put(report)

    def target() -> None:
        try:
            outcome["value"] = fn(*args, progress=callback, **kwargs)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            reports.put(done)

    thread = threading.Thread(target=target, name=f"pvp-plan {getattr(fn, '__name__', 'step')}", daemon=True)
    thread.start()
    while (report := reports.get()) is not done:
        yield _as_progress(report, start, stop)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _as_progress(report: tuple, start: float, stop: float) -> Progress:
    """Normalise a progress callback's arguments (``(fraction, message)``, ``(message,)`` or an object)."""
    fraction, message = None, ""
    for item in report:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            fraction = float(item)
        elif isinstance(item, str):
            message = item
        else:  # a progress object with attributes
            fraction = getattr(item, "fraction", fraction)
            message = getattr(item, "message", message) or str(item)
    if fraction is not None:
        fraction = start + (stop - start) * min(max(fraction, 0.0), 1.0)
    return Progress(fraction, message)


def _pipeline():
    from pvp_plan import pipeline

    return pipeline


def make_options(*, gauge: str = "11G", levels: Iterable[str | Level] | None = None):
    """:class:`pvp_plan.pipeline.PlanOptions` from the widget's choices (gauge and, optionally, levels)."""
    names = None if not levels else tuple(getattr(lv, "value", lv) for lv in levels)
    return _pipeline().PlanOptions(levels=names, needle_gauge=gauge)


def parse_levels(text: str) -> list[Level] | None:
    """Levels typed by the user ("T12 L1, L2" or "T12-L2"); None when empty (= every level)."""
    tokens = [t for t in text.replace(",", " ").replace(";", " ").split() if t]
    if not tokens:
        return None
    out: list[Level] = []
    try:
        for tok in tokens:
            if "-" in tok:
                a, b = (Level.parse(t) for t in tok.split("-", 1))
                lo, hi = sorted((a.order, b.order))
                out += [lv for lv in Level if lo <= lv.order <= hi and lv not in (Level.T13, Level.L6)]
            else:
                out.append(Level.parse(tok))
    except ValueError as exc:
        raise PlanError(f"levels to plan: {exc}") from None
    return list(dict.fromkeys(out))


#: Recorded in the segmentation's warnings once the user has confirmed the level names in napari.
CONFIRMED_NAMES = f"{NAMING_SOURCE}: level names confirmed by the user on the images (napari)"


@dataclass
class PlannerModel:
    """State of one planning session on one CT.

    Attributes
    ----------
    ct : CTVolume
        The CT being planned.
    options : PlanOptions
        Gauge and levels (see :func:`make_options`).
    labels : np.ndarray or None
        The editable uint8 VerSe label map (z, y, x); the napari labels layer shows this very array.
    segmentation : Segmentation or None
        The segmentation the current plans were computed from (``edited=True`` after any edit).
    plan : CasePlan or None
        The last whole-case plan (from :meth:`compute`).
    level_plans : dict
        VerSe label -> current ``LevelPlan`` (updated level by level after edits).
    edited : bool
        True once the label map was changed by hand.
    names_confirmed : bool
        True once the user has checked the level names on the images (:meth:`confirm_names`), the napari
        counterpart of the command line's ``--anchor``.
    """

    ct: CTVolume
    options: Any = None
    labels: np.ndarray | None = None
    segmentation: Segmentation | None = None
    plan: Any = None
    level_plans: dict[int, Any] = field(default_factory=dict)
    edited: bool = False
    names_confirmed: bool = False
    _counts: np.ndarray | None = None
    _planned: set[int] | None = None  # labels the user asked to plan; None = all

    # ------------------------------------------------------------------ full run
    def compute(self, *, segmentation: Segmentation | None = None) -> Generator[Progress, None, RunResult]:
        """Plan the whole case with :func:`pvp_plan.pipeline.plan_case` (which segments unless ``segmentation``
        is given); yields progress, returns a :class:`RunResult`.

        Runs in a worker thread: touches no model state (apply with :meth:`accept_run`).
        """
        options = self.options if self.options is not None else make_options()
        yield Progress(0.0, "segmenting vertebral bodies" if segmentation is None else "planning")
        plan = yield from call_with_progress(_pipeline().plan_case, self.ct, options=options,
                                             segmentation=segmentation)
        yield Progress(1.0, "done")
        return RunResult(segmentation=plan.segmentation, plan=plan)

    def accept_run(self, result: RunResult) -> None:
        """Adopt a full run's segmentation and plan (main thread)."""
        self.segmentation = result.segmentation
        self.plan = result.plan
        self.labels = np.array(result.segmentation.labels, dtype=np.uint8, copy=True)
        self.edited = bool(result.segmentation.edited)
        self.names_confirmed = False
        self.level_plans = {_label_of(lp): lp for lp in result.plan.levels}
        self._counts = _label_counts(self.labels)
        levels = getattr(self.options, "levels", None)
        self._planned = None if not levels else {Level(lv).label for lv in levels}

    def segmentation_from_labels(self, labels: np.ndarray, *, method: str = "external label map") -> Segmentation:
        """A Segmentation from a VerSe label map on this CT's grid (e.g. a labels layer used as the start)."""
        labels = np.asarray(labels)
        if labels.shape != self.ct.shape:
            raise LabelMapError(f"label layer shape {labels.shape} does not match the CT {self.ct.shape}; "
                                "choose a label layer drawn on this CT")
        check_verse_labels(labels)
        return Segmentation.from_label_map(labels.astype(np.uint8), self.ct, method=method)

    # ------------------------------------------------------------------ rows
    def ordered_level_plans(self) -> list[Any]:
        """The current LevelPlans, cranial to caudal."""
        return [self.level_plans[lab] for lab in sorted(self.level_plans, key=lambda v: Level.from_label(v).order)]

    def centroid_world(self, level: Level | str | int) -> np.ndarray:
        """World (z, y, x) mm of a body's centroid (for centring the view)."""
        body = self.current_segmentation().body(level)
        return np.asarray(body.centroid_lps_mm, dtype=float)[::-1]

    def current_segmentation(self) -> Segmentation:
        if self.segmentation is None:
            raise PlanError("no segmentation yet: run the planner first")
        return self.segmentation

    # ------------------------------------------------------------------ edits
    def changed_labels(self, hint: Iterable[int] = ()) -> set[int]:
        """Labels whose voxels changed since the last recompute: ``hint`` (from paint events) + count changes."""
        counts = _label_counts(self._require_labels())
        old = self._counts if self._counts is not None else np.zeros(0, dtype=np.int64)
        n = max(len(counts), len(old))
        diff = np.flatnonzero(np.pad(counts, (0, n - len(counts))) != np.pad(old, (0, n - len(old))))
        return ({int(v) for v in diff} | {int(v) for v in hint}) - {0}

    def neighbours(self, labels: Iterable[int]) -> set[int]:
        """Planned bodies directly cranial or caudal of ``labels`` (their collapse ratios use these bodies)."""
        if self.segmentation is None:
            return set()
        order = [b.label for b in self.segmentation.bodies]
        out: set[int] = set()
        for lab in labels:
            if lab in order:
                i = order.index(lab)
                out |= {order[j] for j in (i - 1, i + 1) if 0 <= j < len(order)}
        return {v for v in out if v in self.level_plans}

    def recompute(self, affected: Iterable[int], *, labels: np.ndarray | None = None,
                  note_edit: bool = True) -> LevelUpdate:
        """Re-describe the label map and re-plan only the ``affected`` labels (may run in a worker thread).

        Works on ``labels`` (a snapshot taken on the main thread; default: a copy of :attr:`labels`) and
        touches no model state (apply with :meth:`accept_update`).
        """
        import time

        t0 = time.perf_counter()
        labels = self._require_labels().copy() if labels is None else labels
        check_verse_labels(labels)
        seg = self._edited_segmentation(labels, edited=self.edited or note_edit)
        present = {b.label for b in seg.bodies}
        affected = {int(v) for v in affected} - {0}
        pipeline = _pipeline()
        options = self.options if self.options is not None else make_options()
        plans = {}
        for lab in sorted(affected & present):
            if self._planned is not None and lab not in self._planned:
                continue
            plans[lab] = pipeline.plan_level(self.ct, seg, Level.from_label(lab), options=options)
        return LevelUpdate(segmentation=seg, level_plans=plans, removed=frozenset(affected - present),
                           seconds=time.perf_counter() - t0)

    def accept_update(self, update: LevelUpdate) -> None:
        """Apply a :class:`LevelUpdate` (main thread)."""
        self.segmentation = update.segmentation
        self.edited = self.edited or update.segmentation.edited
        for lab in update.removed:
            self.level_plans.pop(lab, None)
        self.level_plans.update(update.level_plans)
        self._counts = _label_counts(update.segmentation.labels)

    def rename(self, old: Level | str, new: Level | str) -> set[int]:
        """Give body ``old`` the name ``new`` (which must be free); returns the labels to recompute."""
        a, b = _level(old).label, _level(new).label
        labels = self._require_labels()
        self._require_present(a)
        if a == b:
            return set()
        if np.any(labels == b):
            raise PlanError(f"{_level(new).value} already exists; merge the two bodies instead, or rename "
                            f"{_level(new).value} first")
        labels[labels == a] = b
        self._rename_planned({a: b})
        return {a, b}

    def shift_names(self, steps: int) -> set[int]:
        """Shift every body's name ``steps`` levels caudally (+1) or cranially (-1): transitional anatomy."""
        labels = self._require_labels()
        present = [int(v) for v in np.unique(labels) if v]
        try:
            mapping = {lab: Level.from_label(lab).shifted(steps).label for lab in present}
        except ValueError as exc:
            raise PlanError(f"cannot shift names by {steps:+d}: {exc}") from None
        lut = np.arange(256, dtype=np.uint8)
        for src, dst in mapping.items():
            lut[src] = dst
        labels[...] = lut[labels]
        self._rename_planned(mapping)
        return set(mapping) | set(mapping.values())

    def confirm_names(self) -> set[int]:
        """The user has checked every body's level name on the images: names are no longer uncertain (level
        confidence 1.0, as after ``--anchor``), from now on and after further edits. Bodies the level checks flag
        (too tall, cut in two) stay unplanned until they are split or merged. Returns the labels to re-plan (all)."""
        self._require_labels()
        self.names_confirmed = True
        return {int(v) for v in np.unique(self.labels) if v}

    def merge(self, keep: Level | str, absorb: Level | str) -> set[int]:
        """Merge body ``absorb`` into body ``keep`` (one body segmented as two)."""
        a, b = _level(keep).label, _level(absorb).label
        if a == b:
            raise PlanError("choose two different levels to merge")
        labels = self._require_labels()
        self._require_present(a)
        self._require_present(b)
        labels[labels == b] = a
        return {a, b}

    def split(self, level: Level | str, *, plane_point_lps_mm=None, new_level: Level | str | None = None) -> set[int]:
        """Split one body (two bodies segmented as one) by a plane perpendicular to the spine axis.

        The plane passes through ``plane_point_lps_mm`` (default: the body's centroid, i.e. the mid-plane).
        The cranial part takes ``new_level`` (default: the cranial neighbour's name when free, else the
        caudal part takes the caudal neighbour's name).
        """
        lv = _level(level)
        lab = lv.label
        labels = self._require_labels()
        self._require_present(lab)
        body = self.current_segmentation().body(lab) if self.segmentation is not None else None
        axis = np.asarray(body.axis_lps if body else (0.0, 0.0, 1.0), dtype=float)
        idx = np.argwhere(labels == lab)
        pts = self.ct.index_to_lps(idx)
        point = np.asarray(plane_point_lps_mm if plane_point_lps_mm is not None else pts.mean(axis=0), dtype=float)
        cranial = (pts - point) @ axis > 0
        if cranial.all() or not cranial.any():
            raise PlanError(f"the split plane does not cross {lv.value}; move to a slice through the body")
        cranial_label, caudal_label = self._split_names(lv, new_level)
        labels[tuple(idx[cranial].T)] = cranial_label
        labels[tuple(idx[~cranial].T)] = caudal_label
        return {lab, cranial_label, caudal_label}

    def _split_names(self, lv: Level, new_level: Level | str | None) -> tuple[int, int]:
        labels = self._require_labels()
        present = {int(v) for v in np.unique(labels)}
        if new_level is not None:
            new = _level(new_level).label
            if new in present:
                raise PlanError(f"{_level(new_level).value} already exists; choose a free name for the new part")
            return (new, lv.label) if _level(new_level).order < lv.order else (lv.label, new)
        for steps, cranial_side in ((-1, True), (+1, False)):
            try:
                other = lv.shifted(steps).label
            except ValueError:
                continue
            if other not in present:
                return (other, lv.label) if cranial_side else (lv.label, other)
        raise PlanError(f"both neighbours of {lv.value} exist; rename or shift names first, then split")

    # ------------------------------------------------------------------ export
    def edited_segmentation(self) -> Segmentation:
        """The current label map as a Segmentation (``edited=True`` when changed by hand)."""
        return self._edited_segmentation(self._require_labels().copy(), edited=self.edited)

    def export_options(self, segmentation: Segmentation):
        """The plan options for an export: the levels asked for, followed through renames, that still exist."""
        options = self.options if self.options is not None else make_options()
        if self._planned is None:
            return replace(options, levels=None)
        present = {b.label for b in segmentation.bodies}
        names = tuple(Level.from_label(v).value for v in sorted(self._planned & present,
                                                                 key=lambda v: Level.from_label(v).order))
        if not names:
            raise PlanError("none of the levels asked for is left in the label map; clear the levels field and re-run")
        return replace(options, levels=names)

    def export(self, out_dir: str | Path) -> Generator[Progress, None, ExportResult]:
        """Re-plan the case on the current (edited) label map and write plan.json, plan.csv, report.html,
        the label map (NIfTI) and, for DICOM input when :mod:`pvp_plan.export` is available, DICOM SEG + SR.

        The label map is snapshotted now (main thread); the returned generator does the work in a worker
        thread and returns an :class:`ExportResult`.
        """
        seg = self.edited_segmentation()
        return self._export_steps(Path(out_dir), seg, self.export_options(seg))

    def _export_steps(self, out_dir: Path, seg: Segmentation, options) -> Generator[Progress, None, ExportResult]:
        from pvp_plan.errors import ExportError

        pipeline = _pipeline()
        yield Progress(0.0, "re-planning on the current label map")
        plan = yield from call_with_progress(pipeline.plan_case, self.ct, options=options, segmentation=seg,
                                             start=0.0, stop=0.8)
        yield Progress(0.8, "writing plan.json, plan.csv, report.html, label map")
        paths = _as_paths(pipeline.write_case_outputs(plan, out_dir))
        notes: list[str] = []
        if self.ct.series.dicom_files:
            yield Progress(0.9, "writing DICOM SEG and SR")
            try:
                from pvp_plan.export import write_dicom_exports
            except ImportError:
                notes.append("DICOM SEG/SR export is not available in this build")
            else:
                try:
                    paths += _as_paths(write_dicom_exports(plan, out_dir))
                except ExportError as exc:
                    notes.append(f"DICOM SEG/SR not written: {exc}")
        yield Progress(1.0, f"wrote {len(paths)} files")
        return ExportResult(paths=tuple(paths), edited=seg.edited, notes=tuple(notes))

    # ------------------------------------------------------------------ helpers
    def _edited_segmentation(self, labels: np.ndarray, *, edited: bool) -> Segmentation:
        """The label map as a Segmentation, the level checks read again on it (:func:`implausible_levels.checked`:
        a body painted twice as tall as its neighbours is flagged and not planned, a flag the edit fixed is gone).
        Level names keep the run's least confidence until the user confirms them (:meth:`confirm_names`)."""
        base = self.segmentation
        method = base.method if base is not None else "external label map"
        if edited and "edited by hand" not in method:
            method = f"{method} (edited by hand)"
        kept = tuple(w for w in (base.warnings if base is not None else ())
                     if not (self.names_confirmed and w.startswith(NAMING_SOURCE)))
        if self.names_confirmed:
            conf, kept = 1.0, kept + (CONFIRMED_NAMES,)
        else:
            conf = min((b.level_confidence for b in base.bodies), default=1.0) if base is not None else 1.0
        seg = Segmentation.from_label_map(labels, self.ct, method=method, edited=edited, level_confidence=conf,
                                          warnings=kept)
        return implausible_levels.with_level_checks(seg, names_counted=not self.names_confirmed)

    def _require_labels(self) -> np.ndarray:
        if self.labels is None:
            raise PlanError("no label map yet: run the planner first")
        return self.labels

    def _require_present(self, label: int) -> None:
        if not np.any(self._require_labels() == label):
            raise PlanError(f"{Level.from_label(label).value} is not in the label map")

    def _rename_planned(self, mapping: dict[int, int]) -> None:
        if self._planned is not None:
            self._planned = {mapping.get(v, v) for v in self._planned}


def _level(value: Level | str | int) -> Level:
    if isinstance(value, Level):
        return value
    if isinstance(value, (int, np.integer)):
        return Level.from_label(int(value))
    try:
        return Level.parse(str(value))
    except ValueError as exc:
        raise PlanError(str(exc)) from None


def _label_of(level_plan: Any) -> int:
    return int(level_plan.label)


def _label_counts(labels: np.ndarray) -> np.ndarray:
    return label_counts(np.asarray(labels, dtype=np.uint8))


def check_verse_labels(labels: np.ndarray) -> None:
    """Refuse label values that are not VerSe body labels (checked before any cast to uint8)."""
    labels = np.asarray(labels)
    if labels.dtype == np.uint8:
        present = {int(v) for v in np.flatnonzero(_label_counts(labels))}
    else:
        present = {int(v) for v in np.unique(labels)}
    bad = sorted(present - _VERSE_VALUES - {0})
    if bad:
        raise LabelMapError(f"label value(s) {bad} are not VerSe vertebral-body labels (T1 = 8 ... L5 = 24); "
                            "undo the stroke or paint with a level's label")


def _as_paths(written: Any) -> list[Path]:
    if written is None:
        return []
    if isinstance(written, dict):
        return [Path(v) for v in written.values() if v is not None]
    if isinstance(written, (str, Path)):
        return [Path(written)]
    return [Path(p) for p in written]
