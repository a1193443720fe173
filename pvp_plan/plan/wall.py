"""Posterior wall breach of one body: cortical gaps or protrusion into the canal, where and how sure."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pvp_plan.measure.frame import BodyFrame
from pvp_plan.measure.wall import PosteriorWall
from pvp_plan.messages import Notice, Severity
from pvp_plan.plan.types import WallBreach
from pvp_plan.rules.collapse import (
    WALL_BONE_HU,
    WALL_BREACH_RISK,
    WALL_GAP_GROW_FRACTION,
    WALL_MIN_LENGTH_MM,
    WALL_MIN_PATCH_FRACTION,
    WALL_PROTRUSION_MM,
    WALL_SOURCE,
)


def _side(left_mm: np.ndarray, centre_mm: float, half_width_mm: float) -> str:
    """'left' / 'centre' / 'right' (patient side) parts a patch covers, e.g. 'centre-left'."""
    third = half_width_mm / 3.0
    parts = []
    if (left_mm < centre_mm - third).any():
        parts.append("right")
    if (np.abs(left_mm - centre_mm) <= third).any():
        parts.append("centre")
    if (left_mm > centre_mm + third).any():
        parts.append("left")
    return "-".join(parts)


def assess_wall(wall: PosteriorWall, *, frame: BodyFrame, spacing_mm: tuple[float, float, float], level: str
                ) -> tuple[WallBreach, tuple[Notice, ...]]:
    """Flag a posterior wall breach when one connected patch of gaps or protrusion is large enough.

    A gap patch has a core of soft-tissue density across the wall (no sample within 3 mm of the boundary, or of
    the wall line where the boundary is recessed into the body, reaches ``WALL_BONE_HU``) and extends to the surrounding points below ``WALL_GAP_GROW_FRACTION`` of the
    wall's median HU (the blurred rim of the hole).

    Confidence (0-1, a heuristic, not a probability) rises with the patch size (relative to twice the minimum),
    with the HU drop of the patch against the wall's median or the protrusion depth, and is scaled by 0.85
    for voxels coarser than 1.5 mm.
    """
    ok = wall.in_wall
    n_wall = int(np.count_nonzero(ok))
    if n_wall < 6:
        return WallBreach(flag=False, confidence=0.0, missing_fraction=None, gap_fraction=None,
                          protrusion_max_mm=None, extent_mm=None, craniocaudal_length_mm=None, side=None,
                          finding="posterior wall not assessable"), (Notice(
                              code="wall_not_assessed", message=f"{level}: posterior wall could not be assessed.",
                              source="pvp-plan measurement", severity=Severity.CAUTION),)
    hu = np.nan_to_num(wall.wall_hu, nan=1e4)
    seeds = ndimage.binary_opening(ok & (hu < WALL_BONE_HU.value)) & ok
    grow_hu = max(WALL_BONE_HU.value, WALL_GAP_GROW_FRACTION.value * float(np.nanmedian(wall.wall_hu[ok])))
    rim, _ = ndimage.label(ok & (hu < grow_hu))
    gap = np.isin(rim, np.unique(rim[seeds])) & (rim > 0)  # low-HU patches that hold a soft-tissue core
    protr = ndimage.binary_opening(ok & (np.nan_to_num(wall.protrusion_mm, nan=0.0) >= WALL_PROTRUSION_MM.value))
    bad = (gap | protr) & ok
    lab, n = ndimage.label(bad)
    gap_fraction = np.count_nonzero(gap) / n_wall
    prot_max = float(np.nanmax(np.where(ok, wall.protrusion_mm, np.nan))) if np.isfinite(wall.protrusion_mm).any() else None
    best = None
    for k in range(1, n + 1):
        patch = lab == k
        rows = np.flatnonzero(patch.any(axis=1))
        length = float(wall.axial_mm[rows.max()] - wall.axial_mm[rows.min()]) + float(np.diff(wall.axial_mm[:2])[0])
        frac = np.count_nonzero(patch) / n_wall
        if best is None or frac > best[1]:
            best = (patch, frac, length)
    flagged = best is not None and best[1] >= WALL_MIN_PATCH_FRACTION.value and best[2] >= WALL_MIN_LENGTH_MM.value
    lefts = wall.left_mm[ok.any(axis=0)]
    centre, half = 0.5 * (lefts.max() + lefts.min()), 0.5 * (lefts.max() - lefts.min())
    if best is None:
        return WallBreach(flag=False, confidence=_confidence_normal(wall, ok, spacing_mm), missing_fraction=0.0,
                          gap_fraction=gap_fraction, protrusion_max_mm=prot_max, extent_mm=None,
                          craniocaudal_length_mm=None, side=None, finding="no breach detected"), ()
    patch, frac, length = best
    rows = np.flatnonzero(patch.any(axis=1))
    extent = (float(wall.axial_mm[rows.min()]), float(wall.axial_mm[rows.max()]))
    side = _side(wall.left_mm[patch.any(axis=0)], centre, half)
    kinds = []
    if (patch & gap).any():
        kinds.append("cortical gap")
    if (patch & protr).any():
        kinds.append("protrusion into the canal")
    finding = " and ".join(kinds)
    ia, il = np.argwhere(patch).mean(axis=0)
    a_mm = float(np.interp(ia, np.arange(len(wall.axial_mm)), wall.axial_mm))
    l_mm = float(np.interp(il, np.arange(len(wall.left_mm)), wall.left_mm))
    b = float(np.nanmedian(wall.boundary_mm[patch]))
    loc = tuple(float(v) for v in frame.point(a_mm, b, l_mm) / np.asarray(spacing_mm))
    if not flagged:
        return WallBreach(flag=False, confidence=_confidence_normal(wall, ok, spacing_mm), missing_fraction=frac,
                          gap_fraction=gap_fraction, protrusion_max_mm=prot_max, extent_mm=None,
                          craniocaudal_length_mm=None, side=None,
                          finding=f"no breach detected (largest {finding} patch {frac:.0%} of the wall, "
                                  f"{length:.0f} mm: below the flag size)"), ()
    size_term = min(1.0, frac / (2.0 * WALL_MIN_PATCH_FRACTION.value))
    wall_median = float(np.nanmedian(wall.wall_hu[ok]))
    contrast = (wall_median - float(np.nanmedian(wall.wall_hu[patch]))) / max(wall_median, 1.0)
    depth_term = max(min(1.0, max(contrast, 0.0)), min(1.0, (prot_max or 0.0) / (2 * WALL_PROTRUSION_MM.value)))
    res_term = 1.0 if max(spacing_mm) <= 1.5 else 0.85
    conf = round(float(np.clip((0.4 + 0.3 * size_term + 0.3 * depth_term) * res_term, 0.0, 1.0)), 2)
    wb = WallBreach(flag=True, confidence=conf, missing_fraction=frac, gap_fraction=gap_fraction,
                    protrusion_max_mm=prot_max, extent_mm=extent, craniocaudal_length_mm=length, side=side,
                    finding=finding, location_zyx=loc)
    msg = (f"Posterior wall breach at {level}: {finding}, {side}, {length:.0f} mm cranio-caudal "
           f"({extent[0]:+.0f} to {extent[1]:+.0f} mm from the body centre), {frac:.0%} of the wall; confidence "
           f"{conf:.2f}. Why it matters: {WALL_BREACH_RISK}.")
    return wb, (Notice(code="posterior_wall_breach", message=msg, source=WALL_SOURCE, severity=Severity.WARNING),)


def _confidence_normal(wall: PosteriorWall, ok: np.ndarray, spacing_mm: tuple[float, float, float]) -> float:
    """Confidence that the wall is intact: high when the wall HU clears the cortex threshold well."""
    margin = np.nanmedian(wall.wall_hu[ok]) - WALL_BONE_HU.value
    res_term = 1.0 if max(spacing_mm) <= 1.5 else 0.85
    return round(float(np.clip((0.6 + 0.4 * min(1.0, max(0.0, margin) / 200.0)) * res_term, 0.0, 1.0)), 2)
