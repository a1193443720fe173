"""Anterior, middle and posterior body heights measured along the spine's own axis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvp_plan.components import FULLY_CONNECTED_3D, largest_component
from pvp_plan.measure.frame import BodyFrame, sample
from pvp_plan.measure.profile import extent

#: Antero-posterior bands (fractions of the depth in from the anterior / posterior surface) of the anterior and
#: posterior heights: inside the rounded endplate corners, which partial volume blurs at 3 mm voxels. Chosen to
#: agree with TotalSegmentator's spine report on the 3 mm abdominal reference CT (all heights within 2.5 mm).
EDGE_BAND_FRACTION = (0.15, 0.30)
#: Band (fractions of the depth from the anterior surface) of the middle height; its smallest column is taken,
#: where the endplates are most concave.
MIDDLE_BAND_FRACTION = (0.40, 0.60)
#: Lateral offsets (mm) of the columns combined (mean) for each position (mid-sagittal band).
LATERAL_OFFSETS_MM = (-4.0, -2.0, 0.0, 2.0, 4.0)
#: Columns per band.
N_BAND_COLUMNS = 7
#: Span (fractions of the depth from the anterior surface) of the line fitted to the column heights and
#: extrapolated to the anterior and posterior margins (the wedge measurement of quantitative morphometry).
MARGIN_FIT_FRACTION = (0.10, 0.90)
_STEP_MM = 0.25


@dataclass(frozen=True)
class BodyHeights:
    """Heights in mm along the spine axis (None when not measurable).

    ``depth_mm`` is the antero-posterior depth at mid-height used to place the columns.
    ``anterior_margin_mm`` / ``posterior_margin_mm`` are a straight line fitted (Theil-Sen: the median of the
    pairwise slopes, so a few columns broken by a lesion do not tilt it) to the column heights across
    :data:`MARGIN_FIT_FRACTION` of the depth, evaluated at the anterior and posterior surfaces: the wedge
    shape without the rounded corners.
    """

    anterior_mm: float | None
    middle_mm: float | None
    posterior_mm: float | None
    depth_mm: float | None
    anterior_margin_mm: float | None = None
    posterior_margin_mm: float | None = None

    def as_tuple(self) -> tuple[float | None, float | None, float | None]:
        return self.anterior_mm, self.middle_mm, self.posterior_mm


def _column_length(profile: np.ndarray) -> float:
    """Length (mm) from the first to the last sample inside the mask (>= 0.5): endplate to endplate, so a lytic
    cavity, a gas cleft or a strip the segmentation missed inside the body does not shorten the column."""
    return float(extent(profile >= 0.5)) * _STEP_MM


def body_heights(mask: np.ndarray, *, spacing_mm: tuple[float, float, float], frame: BodyFrame) -> BodyHeights:
    """Anterior, middle and posterior heights of a body mask along ``frame.axis_zyx``.

    The antero-posterior depth is taken in the mid-sagittal band at mid-height. A column height is the
    mean over :data:`LATERAL_OFFSETS_MM` of the distance from the first to the last sample of the linearly
    interpolated mask (>= 0.5; the mask's largest 26-connected part)
    along a line parallel to the axis. Anterior and posterior heights are the mean of
    :data:`N_BAND_COLUMNS` columns spread over :data:`EDGE_BAND_FRACTION` of the depth in from each
    surface (averaging the staircase of a voxel mask); the middle height is the smallest column in
    :data:`MIDDLE_BAND_FRACTION` (endplate concavity). Each end of a column is known to about half a
    voxel along the axis.
    """
    # a stray island of a label map must not lengthen a column
    m = largest_component(mask, structure=FULLY_CONNECTED_3D).astype(np.float32)
    reach = 80.0
    u = np.arange(-reach, reach, _STEP_MM)
    fronts, backs = [], []
    for a in (-3.0, 0.0, 3.0):
        for lat in LATERAL_OFFSETS_MM:
            prof = sample(m, frame.point(a, u, lat), spacing_mm=spacing_mm) >= 0.5
            if prof.any():
                fronts.append(u[prof].max())
                backs.append(u[prof].min())
    if not fronts:
        return BodyHeights(None, None, None, None)
    front, back = float(np.median(fronts)), float(np.median(backs))
    depth = front - back
    t = np.arange(-reach, reach, _STEP_MM)

    def column_mm(u_col: float) -> float | None:
        lengths = [_column_length(sample(m, frame.point(t, u_col, lat), spacing_mm=spacing_mm))
                   for lat in LATERAL_OFFSETS_MM]
        lengths = [v for v in lengths if v > 0]
        return float(np.mean(lengths)) if lengths else None

    def band(lo: float, hi: float) -> list[float]:
        cols = [column_mm(front - f * depth) for f in np.linspace(lo, hi, N_BAND_COLUMNS)]
        return [c for c in cols if c is not None]

    lo, hi = EDGE_BAND_FRACTION
    anterior = band(lo, hi)
    posterior = band(1.0 - hi, 1.0 - lo)
    middle = band(*MIDDLE_BAND_FRACTION)
    fit_f = np.linspace(*MARGIN_FIT_FRACTION, 17)
    fit_h = [column_mm(front - f * depth) for f in fit_f]
    ok = [i for i, h in enumerate(fit_h) if h is not None]
    a_margin = p_margin = None
    if len(ok) >= 5:
        from scipy.stats import theilslopes

        slope, intercept, _, _ = theilslopes(np.asarray(fit_h, dtype=object)[ok].astype(float), fit_f[ok])
        a_margin, p_margin = float(intercept), float(intercept + slope)
    return BodyHeights(
        anterior_mm=float(np.mean(anterior)) if anterior else None,
        middle_mm=float(np.min(middle)) if middle else None,
        posterior_mm=float(np.mean(posterior)) if posterior else None,
        depth_mm=depth, anterior_margin_mm=a_margin, posterior_margin_mm=p_margin,
    )
