"""Posterior wall of a vertebral body: cortical continuity and posterior protrusion.

The wall is sampled on a grid over the body's posterior surface in its own frame (cranio-caudal
position along the spine axis x lateral position). At each grid point the posterior boundary of the
mask is found along the anterior direction and the CT is read across it. A point is a *gap* when no
cortical-density bone lies across the wall; it *protrudes* when the boundary lies clearly
behind the wall line fitted to the rest of the wall (bone fragment or tumour bulging into the canal).
Where the boundary is *recessed* (lies clearly in front of the wall line, e.g. tumour replacing the wall
that the segmentation left outside the body), the CT is read across the wall line instead of across the
boundary: a gap there is soft tissue where the wall should stand.
What it does not see: soft tissue in the canal with no recess of the body's outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.measure.frame import BodyFrame, sample

_STEP_MM = 0.5


@dataclass(frozen=True)
class PosteriorWall:
    """Samples of the posterior wall on a (cranio-caudal x lateral) grid.

    Attributes
    ----------
    axial_mm : np.ndarray
        Cranio-caudal positions (mm along the spine axis from the body centre, + cranial), shape (A,).
    left_mm : np.ndarray
        Lateral positions (mm from the centre, + patient left), shape (L,).
    boundary_mm : np.ndarray
        (A, L) anterior coordinate of the posterior mask boundary (NaN: outside the wall region).
    wall_hu : np.ndarray
        (A, L) highest HU across the wall (NaN outside the wall region): across the boundary, or across the
        wall line where the boundary is recessed by :data:`RECESS_MM` or more.
    protrusion_mm : np.ndarray
        (A, L) how far the boundary lies behind the fitted wall line (positive = into the canal).
    recess_mm : np.ndarray
        (A, L) how far the boundary lies in front of the wall line (positive = into the body).
    in_wall : np.ndarray
        (A, L) bool, grid points that belong to the assessed wall (endplate rims and lateral corners excluded).
    """

    axial_mm: np.ndarray
    left_mm: np.ndarray
    boundary_mm: np.ndarray
    wall_hu: np.ndarray
    protrusion_mm: np.ndarray
    recess_mm: np.ndarray
    in_wall: np.ndarray


#: Share of the body height excluded at each endplate (the rims join the endplates there).
ENDPLATE_EXCLUSION_FRACTION = 0.15
#: Lateral half-width of the assessed wall as a fraction of the body half-width (the wall curves into the
#: pedicles beyond it).
LATERAL_FRACTION = 0.70
#: Percentile (toward anterior) of each lateral column's boundary used as the wall's reference line for
#: protrusion: robust to a posterior bulge covering up to three quarters of the column's height. Recess is
#: measured from the mirror percentile (100 - this), robust to a recess covering as much (see _wall_lines).
REFERENCE_PERCENTILE = 75.0
#: A boundary point this far (mm) in front of the wall line is read across the wall line, not across the
#: boundary (normal walls keep within about 3 mm of it at 3 mm voxels).
RECESS_MM = 3.0
#: Across the wall line of a recessed point the CT is read no nearer than this (mm) to the boundary, so the
#: blurred bone of the recess's floor does not pass for wall.
RECESS_CLEARANCE_MM = 1.5


def posterior_wall(hu: np.ndarray, mask: np.ndarray, *, spacing_mm: tuple[float, float, float],
                   frame: BodyFrame, grid_mm: float = 1.0, inside_mm: float = 3.0,
                   outside_mm: float = 3.0) -> PosteriorWall:
    """Sample the posterior wall of one body.

    Parameters
    ----------
    hu, mask : np.ndarray
        CT (HU) and boolean body mask, (z, y, x).
    spacing_mm : (z, y, x) voxel spacing in mm.
    frame : BodyFrame
        The body's frame (spine axis, anterior, left).
    grid_mm : float
        Spacing of the wall grid (mm).
    inside_mm, outside_mm : float
        How far in front of / behind the boundary the CT is read for the cortical peak.
    """
    m = np.asarray(mask, dtype=np.float32)
    h = np.asarray(hu, dtype=np.float32)
    idx = np.argwhere(mask) * np.asarray(spacing_mm, dtype=float)
    c = frame.coordinates(idx)
    a_lo, a_hi = c[:, 0].min(), c[:, 0].max()
    l_lo, l_hi = c[:, 2].min(), c[:, 2].max()
    axial = np.arange(np.floor(a_lo), np.ceil(a_hi) + grid_mm, grid_mm)
    left = np.arange(np.floor(l_lo), np.ceil(l_hi) + grid_mm, grid_mm)
    u = np.arange(c[:, 1].min() - 3.0, 2.0, _STEP_MM)  # from behind the body up to just past its centre
    A, L, U = np.meshgrid(axial, left, u, indexing="ij")
    inside = sample(m, frame.point(A, U, L), spacing_mm=spacing_mm) >= 0.5
    has = inside.any(axis=2)
    first = np.where(has, inside.argmax(axis=2), 0)
    boundary = np.where(has, u[first], np.nan)
    # endplate / lateral exclusion, relative to each column's own extent
    height_ok = np.zeros_like(has)
    for j in range(len(left)):
        rows = np.flatnonzero(has[:, j])
        if rows.size:
            lo, hi = axial[rows.min()], axial[rows.max()]
            margin = ENDPLATE_EXCLUSION_FRACTION * (hi - lo)
            height_ok[:, j] = (axial >= lo + margin) & (axial <= hi - margin)
    half_width = 0.5 * (l_hi - l_lo)
    centre_l = 0.5 * (l_hi + l_lo)
    lateral_ok = np.abs(left - centre_l) <= LATERAL_FRACTION * half_width
    in_wall = has & height_ok & lateral_ok[None, :]
    protrusion, recess = _wall_lines(boundary, in_wall, axial, left)
    recessed = in_wall & (np.nan_to_num(recess, nan=0.0) >= RECESS_MM)
    # cortical peak across the wall: across the boundary, or across the wall line in front of a recess
    centre = np.where(in_wall, boundary, 0.0) - np.where(recessed, recess, 0.0)
    deepest = np.where(recessed, np.minimum(centre + inside_mm, boundary - RECESS_CLEARANCE_MM), centre + inside_mm)
    offs = np.arange(-outside_mm, inside_mm + 1e-6, _STEP_MM)
    A2, L2, O2 = np.meshgrid(axial, left, offs, indexing="ij")
    u2 = centre[..., None] + O2
    prof = sample(h, frame.point(A2, u2, L2), spacing_mm=spacing_mm, cval=-1024.0)
    prof = np.where(u2 <= deepest[..., None], prof, -1024.0)
    wall_hu = np.where(in_wall, prof.max(axis=2), np.nan)
    return PosteriorWall(axial_mm=axial, left_mm=left, boundary_mm=np.where(in_wall, boundary, np.nan),
                         wall_hu=wall_hu, protrusion_mm=protrusion, recess_mm=recess, in_wall=in_wall)


def _wall_lines(boundary: np.ndarray, in_wall: np.ndarray, axial: np.ndarray, left: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(protrusion, recess) of each boundary point against the wall line, in mm (NaN outside the wall).

    Protrusion is how far the boundary lies behind the wall line (toward the canal), recess how far in front of
    it (into the body). The wall's lean against the spine axis (median slope of the columns) is removed first.
    Each lateral column then has two candidate lines: the :data:`REFERENCE_PERCENTILE` of its boundary (toward
    anterior: robust to a bulge covering up to three quarters of it) and the mirror percentile (robust to a
    recess covering as much). In a *clean* column (the two within :data:`RECESS_MM`) protrusion is measured from
    the first and recess from the second. A column holding a bulge or a recess is ambiguous on its own (a tall
    fragment and a tall recess both give two levels); its line is the candidate nearer the line interpolated
    from the clean columns beside it, or that interpolated line when neither candidate is within
    :data:`RECESS_MM` of it. The lines are smoothed by a running median over three lateral positions.
    """
    ok = in_wall & np.isfinite(boundary)
    nan = np.full(boundary.shape, np.nan)
    cols = np.array([j for j in range(boundary.shape[1]) if np.count_nonzero(ok[:, j]) >= 3], dtype=int)
    if len(cols) < 4:
        return nan, nan.copy()
    # the wall may lean against the centroid axis (lordosis): remove the median per-column slope first
    tilt = float(np.median([np.polyfit(axial[ok[:, j]], boundary[ok[:, j], j], 1)[0] for j in cols]))
    detrended = boundary - tilt * axial[:, None]
    back, middle, front = np.array([np.percentile(detrended[ok[:, j], j], [100.0 - REFERENCE_PERCENTILE, 50.0,
                                                                          REFERENCE_PERCENTILE]) for j in cols]).T
    clean = front - back < RECESS_MM
    if clean.any() and not clean.all():
        guess = np.interp(left[cols[~clean]], left[cols[clean]], middle[clean])
        b, f = back[~clean], front[~clean]
        pick = np.where(np.abs(b - guess) <= np.abs(f - guess), b, f)
        pick = np.where(np.minimum(np.abs(b - guess), np.abs(f - guess)) <= RECESS_MM, pick, guess)
        back[~clean] = front[~clean] = pick
    out = []
    for line in (front, back):
        reference = np.full(left.shape, np.nan)
        reference[cols] = line
        with np.errstate(all="ignore"):
            reference = ndimage.generic_filter(reference, _nanmedian, size=3, mode="nearest")
        out.append(np.where(ok, reference[None, :] - detrended, np.nan))
    return out[0], -out[1]


def _nanmedian(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else np.nan
