"""Choosing one CT image stack among the candidates a scan found.

Choice rule (documented, recorded in ``SeriesInfo.choice_reason``)
------------------------------------------------------------------
Candidates that cannot be built (a single slice, inconsistent rows/columns within the series)
are set aside with their reason when another candidate exists. Among the rest:

1. axial stacks before coronal/sagittal reformats;
2. the thinnest slice spacing (measured from the slice positions; ties within 0.01 mm);
3. the most coverage along the slice normal (ties within 1 mm);
4. the most slices;
5. the series UID (so the choice is deterministic).

``series=UID`` restricts the candidates to that SeriesInstanceUID first; an unknown UID raises
:class:`~pvp_plan.errors.SeriesError` listing the candidates.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvp_plan.errors import GeometryError, SeriesError
from pvp_plan.io.ct_volume import IgnoredInput, SeriesCandidate
from pvp_plan.io.dicom_multiframe import FrameGeometry, frame_geometry
from pvp_plan.io.dicom_scan import NOT_DICOM, ScanResult, StackGroup
from pvp_plan.io.image_files import image_format
from pvp_plan.io.slice_stack import MIN_SLICES

logger = logging.getLogger(__name__)

SPACING_TIE_MM = 0.01
COVERAGE_TIE_MM = 1.0


@dataclass(eq=False)
class Candidate:
    """A stack group with the figures the choice rule uses."""

    group: StackGroup
    n_slices: int
    slice_spacing_mm: float | None
    coverage_mm: float | None
    axial: bool
    frames: FrameGeometry | None = None
    problem: str | None = None
    problem_error: type[Exception] = GeometryError

    @property
    def series_uid(self) -> str:
        return self.group.first.series_uid

    @property
    def label(self) -> str:
        h = self.group.first
        desc = h.series_description or "(no description)"
        return f"{h.series_uid or h.series_key} ({desc}, {self.n_slices} slices, {self.group.orientation_label})"

    def as_series_candidate(self) -> SeriesCandidate:
        h = self.group.first
        return SeriesCandidate(series_uid=h.series_uid or h.series_key, description=h.series_description,
                               n_slices=self.n_slices, slice_spacing_mm=self.slice_spacing_mm,
                               coverage_mm=self.coverage_mm)


def _spacing_and_coverage(positions: np.ndarray, normal: np.ndarray | None) -> tuple[float | None, float | None]:
    if normal is None or len(positions) < 2:
        return None, None
    offsets = np.sort(positions @ normal)
    gaps = np.diff(offsets)
    gaps = gaps[gaps > 1e-3]
    if gaps.size == 0:
        return None, 0.0
    return float(np.median(gaps)), float(offsets[-1] - offsets[0])


def make_candidate(group: StackGroup) -> Candidate:
    """Measure a group (slice count, spacing, coverage, axial) and note what makes it unusable."""
    first = group.first
    if group.orientation_label == "multi-frame":
        try:
            frames = frame_geometry(first.dataset, first.path) if first.dataset is not None else None
        except GeometryError as exc:
            return Candidate(group, first.n_frames, None, None, True, problem=str(exc))
        if frames is None:
            return Candidate(group, first.n_frames, None, None, True, problem=f"{first.path}: no frame geometry")
        o = np.asarray(frames.orientation, float)
        normal = np.cross(o[:3], o[3:])
        spacing, coverage = _spacing_and_coverage(frames.positions_lps_mm, normal)
        axial = int(np.argmax(np.abs(normal))) == 2
        cand = Candidate(group, frames.n_frames, spacing, coverage, axial, frames=frames)
    else:
        positions = np.array([h.position for h in group.headers], float)
        spacing, coverage = _spacing_and_coverage(positions, first.normal)
        cand = Candidate(group, group.n_files, spacing, coverage, group.orientation_label == "axial")
    if cand.n_slices < MIN_SLICES:
        cand.problem = (f"{first.path}: a single slice; a 3-D volume needs at least {MIN_SLICES} slices. Pass the "
                        "folder holding the whole series (or a multi-frame file)")
    return cand


def _mark_inconsistent_sizes(cands: list[Candidate]) -> None:
    """Several stacks of one series with the same orientation but different rows/columns: an error."""
    by_key: dict[tuple, list[Candidate]] = {}
    for c in cands:
        if c.group.orientation_label == "multi-frame":
            continue
        h = c.group.first
        key = (h.series_key, tuple(np.round(h.orientation, 3)) if h.orientation else None)
        by_key.setdefault(key, []).append(c)
    for same in by_key.values():
        sizes = Counter()
        example = {}
        for c in same:
            size = (c.group.first.rows, c.group.first.columns)
            sizes[size] += c.n_slices
            example[size] = c.group.first.path.name
        if len(sizes) < 2:
            continue
        desc = ", ".join(f"{r} x {cl} in {n} file(s) (e.g. {example[(r, cl)]})" for (r, cl), n in sizes.items())
        for c in same:
            c.problem = (f"series {c.group.first.series_uid or c.group.first.series_key}: inconsistent rows/columns "
                         f"within the series: {desc}; remove the odd files or re-export the series")


def _sort_key(c: Candidate) -> tuple:
    spacing = c.slice_spacing_mm if c.slice_spacing_mm is not None else 1e9
    coverage = c.coverage_mm or 0.0
    return (not c.axial, round(spacing / SPACING_TIE_MM), -round(coverage / COVERAGE_TIE_MM), -c.n_slices,
            c.group.first.series_key)


def _reason(chosen: Candidate, others: list[Candidate]) -> str:
    if not others:
        return "the only CT image stack found"
    nxt = sorted(others, key=_sort_key)[0]
    if chosen.axial and not nxt.axial:
        why = "axial stack preferred over reformats"
    elif round((chosen.slice_spacing_mm or 1e9) / SPACING_TIE_MM) != round((nxt.slice_spacing_mm or 1e9)
                                                                           / SPACING_TIE_MM):
        why = (f"thinnest slice spacing ({chosen.slice_spacing_mm:.2f} mm vs {nxt.slice_spacing_mm:.2f} mm)"
               if nxt.slice_spacing_mm is not None else "thinnest slice spacing")
    elif round((chosen.coverage_mm or 0) / COVERAGE_TIE_MM) != round((nxt.coverage_mm or 0) / COVERAGE_TIE_MM):
        why = (f"same slice spacing ({chosen.slice_spacing_mm:.2f} mm), most coverage "
               f"({chosen.coverage_mm:.1f} mm vs {nxt.coverage_mm or 0:.1f} mm)")
    elif chosen.n_slices != nxt.n_slices:
        why = f"same spacing and coverage, most slices ({chosen.n_slices} vs {nxt.n_slices})"
    else:
        why = "equal on spacing, coverage and slice count; first by series UID"
    return (f"{len(others) + 1} CT image stacks; rule: axial, then thinnest slice spacing, then most coverage, then "
            f"most slices; chosen on {why}")


def choose(scan: ScanResult, *, series: str | None, what: Path) -> tuple[Candidate, list[Candidate],
                                                                          list[IgnoredInput], str]:
    """Pick the stack to load.

    Returns
    -------
    chosen, others, ignored, choice_reason

    Raises
    ------
    SeriesError
        No CT stack (with the modality found, e.g. "this is MR, pvp-plan needs CT"), or an
        unknown ``series``.
    GeometryError
        The only candidate(s) cannot be built (single slice, inconsistent rows/columns).
    """
    ignored = list(scan.ignored)
    if not scan.groups:
        raise _no_stack_error(scan, what)
    cands = [make_candidate(g) for g in scan.groups]
    _mark_inconsistent_sizes(cands)
    if series is not None:
        wanted = [c for c in cands if series in (c.group.first.series_uid, c.group.first.series_key)]
        if not wanted:
            listing = "; ".join(c.label for c in cands)
            raise SeriesError(f"{what}: series {series} not found; candidates: {listing}")
        cands = wanted
    usable = [c for c in cands if c.problem is None]
    if not usable:
        raise cands[0].problem_error(cands[0].problem)
    for c in cands:
        if c.problem is not None:
            ignored.append(IgnoredInput(c.label, c.problem.split(": ", 1)[-1]))
    usable.sort(key=_sort_key)
    chosen, others = usable[0], usable[1:]
    reason = _reason(chosen, others)
    if series is not None:
        reason = f"requested with --series; {reason}"
    logger.info("chose %s: %s", chosen.label, reason)
    return chosen, others, ignored, reason


def _no_stack_error(scan: ScanResult, what: Path) -> SeriesError:
    non_ct = {m: n for m, n in scan.modalities.items() if m != "CT"}
    if non_ct and "CT" not in scan.modalities:
        mods = ", ".join(f"{n} {m}" for m, n in sorted(non_ct.items()))
        main = max(non_ct, key=non_ct.get)
        return SeriesError(f"{what}: this is {main}, pvp-plan needs CT (found {mods} image(s)); "
                           "pass the patient's CT series")
    n_dicom = sum(1 for i in scan.ignored if i.reason != NOT_DICOM)
    if n_dicom == 0:
        images = [i.what for i in scan.ignored if image_format(Path(i.what)) is not None]
        hint = f" (found {images[0]}: pass that file itself)" if images else ""
        return SeriesError(f"{what}: no DICOM files among {scan.n_files} file(s){hint}; pass a folder of DICOM CT "
                           "images, a DICOMDIR, or a NIfTI/NRRD/MHA file")
    reasons = Counter(i.reason for i in scan.ignored if i.reason != NOT_DICOM)
    summary = "; ".join(f"{n} x {r}" for r, n in reasons.most_common(4))
    return SeriesError(f"{what}: no axial CT image stack found (ignored: {summary}); pass the CT series itself")
