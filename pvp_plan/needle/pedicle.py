"""Find the pedicle of a level on the CT and measure its isthmus (issue 5): :func:`find_pedicle`,
:func:`search_pedicle` (which also says why no pedicle is found).

On the bone around the level (:func:`pvp_plan.needle.frame.level_bone`), :func:`find_pedicle` follows the
pedicle's medial path: on a 0.5 mm grid, the cheapest route from the bone touching the body to the bone
behind the canal, lateral to the canal, at a cost that keeps it in the middle of the bone
(``1 / depth^4``, depth the distance to the nearest non-bone), so it does not depend on clean sections at
coarse voxels. The pedicle arises from the cranial half of the body: the path is sought above the body's
centroid, and the isthmus centre lies between it and half the smallest pedicle height below the superior
endplate (along the spine axis). Sections perpendicular to the path's direction then refine the axis and
give the isthmus (:mod:`pvp_plan.needle.isthmus`).

Frames: arrays in index order (z, y, x) on a level's box; points LPS (x, y, z) in mm.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage
from skimage.graph import MCP_Geometric

from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.label_boxes import occupied_box
from pvp_plan.needle.canal import canal_extent_mm
from pvp_plan.needle.frame import SIDE_SIGN, BodyFrame, LevelBone, _height_mm
from pvp_plan.needle.isthmus import PedicleFit, _fit_axis, _measure_isthmus

logger = logging.getLogger(__name__)

_GRID_MM = 0.5  # grid of the medial path and bone depth
_LATERAL_REACH_MM = 20.0  # the path stays within this distance lateral of the canal (ribs lie beyond)
_PATH_END_MM = 1.0  # the isthmus is not within this arc length of the path's ends
_AXIS_ITERATIONS = 4
#: The refinement straightens the medial path's direction through the pedicle; it never turns it by more than this,
#: in one step or in all (abdomen L5 left, 3 mm: three steps of 6 to 22 degrees each tilted the axis from 16 to 50
#: degrees, onto the inferior articular process below the pedicle). Beyond, the sections' centres have left the
#: pedicle for the bone merged with it at 3 mm voxels (facets, transverse process).
_MAX_AXIS_TURN_DEG = 25.0


def find_pedicle(ct: CTVolume, lb: LevelBone, frame: BodyFrame, side: str) -> PedicleFit | None:
    """Find the pedicle on one side and measure its isthmus (None when there is none: :func:`search_pedicle`
    says why)."""
    return search_pedicle(ct, lb, frame, side)[0]


def search_pedicle(ct: CTVolume, lb: LevelBone, frame: BodyFrame, side: str) -> tuple[PedicleFit | None, str | None]:
    """Find the pedicle on one side and measure its isthmus; or say why no pedicle is found.

    The pedicle is the bone bridge from the body to the posterior arch lateral to the canal. Its medial
    path (:func:`_medial_path`) runs through the middle of that bridge; the axis is fitted through the
    centres of sections perpendicular to it (:mod:`pvp_plan.needle.isthmus`), turning no more than
    ``_MAX_AXIS_TURN_DEG`` from the path's own direction, and the isthmus is the section of smallest
    mediolateral width.

    Returns
    -------
    (PedicleFit or None, str or None)
        The isthmus; or None and the reason, in words (as measured along the path's own direction).
    """
    path = _medial_path(ct, lb, frame, side)
    if path is None:
        return None, ("no bone bridge from the body to the arch lateral to the canal, in the body's cranial half "
                      "(the pedicle's medial path)")
    pts, depth_mm = path
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    inner = (arc >= _PATH_END_MM) & (arc <= arc[-1] - _PATH_END_MM)
    if inner.sum() < 3:
        return None, f"the bone bridge lateral to the canal is {arc[-1]:.1f} mm long, too short for a pedicle"
    pts = pts[inner]
    axis = first = _fit_axis(pts)
    fit, reason = None, None
    for i in range(_AXIS_ITERATIONS):  # refine: the axis through the centres of the perpendicular sections
        new_fit, centres, why = _measure_isthmus(ct, lb, pts, axis, side, frame)
        fit = new_fit or fit
        reason = why if i == 0 else reason
        if len(centres) < 3:
            break
        new = _fit_axis(np.asarray(centres))
        turn_deg = _turn_deg(new, axis)
        if max(turn_deg, _turn_deg(new, first)) > _MAX_AXIS_TURN_DEG:
            break
        axis, pts = new, np.asarray(centres)
        if turn_deg < 0.5:
            fit = _measure_isthmus(ct, lb, pts, axis, side, frame)[0] or fit
            break
    return fit, (None if fit is not None else reason or "no section of the pedicle qualifies")


def _turn_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees, 0-90) between two unit directions, whatever their senses."""
    return float(np.degrees(np.arccos(min(1.0, abs(float(a @ b))))))


def _medial_path(ct, lb: LevelBone, frame: BodyFrame, side: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The pedicle's medial path on one side: LPS points (n, 3) from the body to the arch, and bone depth (mm).

    The pedicle arises from the cranial half of the body's posterior surface (lumbar and thoracic alike), so
    the path is sought above the body's centroid along the spine axis (``BodyFrame.spine_axis_lps``): below
    it lie the foramen and the facet joints with the next level's articular processes (merged with the
    pedicle at 3 mm voxels).

    On a ``_GRID_MM`` grid over the body's slices, from the midline to ``_LATERAL_REACH_MM`` lateral of
    the canal: the bone (filled bone or body, canal excluded) and its depth (Euclidean distance to the
    nearest non-bone). The path is the cheapest route, at cost ``1 / depth^4`` per mm (so it keeps to
    the middle of the bone), from the bone touching the body to the bone behind the canal, through
    bone that is neither the body nor medial to the canal's lateral wall (the lamina, the other side).
    """
    sp = np.asarray(ct.spacing_mm, float)
    sign = SIDE_SIGN[side]
    o = lb.origin_index
    xm, ypw = frame.midline_x - o[2], frame.posterior_wall_y - o[1]
    wall_mm, back_mm = canal_extent_mm(lb, xm, ypw, sign, sp)
    zz = np.arange(frame.z_range[0] - o[0], frame.z_range[1] - o[0] + 1e-6, _GRID_MM / sp[0])
    back_mm_max = float(np.nanmax(back_mm))
    yy = ypw + np.arange(-6.0, back_mm_max + 12.0, _GRID_MM) / sp[1]
    lat = np.arange(0.0, float(np.nanmax(wall_mm)) + _LATERAL_REACH_MM, _GRID_MM)
    xx = xm + sign * lat / sp[2]
    zb = np.clip(np.round(zz).astype(int), 0, lb.filled.shape[0] - 1)
    g = np.meshgrid(zz, yy, xx, indexing="ij")
    coords = np.stack([a.ravel() for a in g])

    def up(a):
        return ndimage.map_coordinates(a.astype(np.float32), coords, order=1, mode="nearest").reshape(g[0].shape) > 0.5

    body, canal = up(lb.body), up(lb.canal)
    bone = (up(lb.filled) | body) & ~canal
    depth = ndimage.distance_transform_edt(np.pad(bone, 1, mode="edge"), sampling=_GRID_MM)[1:-1, 1:-1, 1:-1]
    behind_mm = (yy - ypw) * sp[1]
    cranial = _height_mm(ct.index_to_lps((coords + o[:, None]).T), frame).reshape(g[0].shape) >= 0.0
    region = bone & ~body & cranial & (lat[None, None, :] >= wall_mm[zb][:, None, None] - 1.0)
    source = region & ndimage.binary_dilation(body, iterations=3)
    sink = region & (behind_mm[None, :, None] >= back_mm[zb][:, None, None] - 2.0)
    if not source.any() or not sink.any():
        return None
    # the route never leaves the region (infinite cost elsewhere): searched in the region's box only
    box = occupied_box(region.view(np.uint8))
    lo = np.array([b.start for b in box])
    cost = np.where(region[box], 1.0 / (depth[box] + 0.1) ** 4, np.inf)
    mcp = MCP_Geometric(cost)
    ends = np.argwhere(sink[box])
    cum, _ = mcp.find_costs(np.argwhere(source[box]), ends, find_all_ends=False)
    reached = cum[tuple(ends.T)]
    if not np.isfinite(reached).any():
        return None
    idx = np.array(mcp.traceback(tuple(ends[int(np.argmin(reached))]))) + lo
    box_idx = np.stack([zz[idx[:, 0]], yy[idx[:, 1]], xx[idx[:, 2]]], axis=1)
    return ct.index_to_lps(box_idx + o), depth[tuple(idx.T)]
