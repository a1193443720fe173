"""The spinal canal of one level, read on the CT slice by slice (issue 5).

Per axial slice (:func:`fill_and_canal`, called by :func:`pvp_plan.needle.frame.level_bone`), the holes
enclosed by the closed bone are filled, except the spinal canal: the hole behind the body's posterior wall
at the midline. Where the ring is open (between the pedicles of two levels), the canal is the non-bone
region there, bounded by the canal found in the closed slices; canal lateral of bone on its row is
dropped. Each slice's canal is cut where it leaks into a pedicle core through a cortical gap.
:func:`canal_extent_mm` then reads the canal's lateral wall and back per slice.

Frames: arrays in index order (z, y, x) on a level's box; the midline and the posterior wall as box
indices (x and y); extents in mm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from pvp_plan.rules import needle as R

if TYPE_CHECKING:
    from pvp_plan.needle.frame import LevelBone

_CANAL_OPENING_MM = 2.0  # a canal leak through a narrower gap is cut off
_MAX_FILLED_HOLE_MM2 = 400.0  # holes filled as cancellous bone (pedicle and arch cores); the canal stays open
_DEFAULT_CANAL_HALF_WIDTH_MM = 8.0  # when no canal is found
_DEFAULT_CANAL_DEPTH_MM = 16.0


def fill_and_canal(bone: np.ndarray, body: np.ndarray, *, xm: float, ypw: float, spacing_mm
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per axial slice: holes of the bone ring filled, except the canal (hole at the midline behind the body).

    Parameters
    ----------
    bone, body : np.ndarray
        bool (z, y, x) on a level's box: the thresholded, closed bone and the body mask.
    xm, ypw : float
        Box indices (x, y) of the body's midline and of its posterior wall.
    spacing_mm : (z, y, x) voxel spacing in mm.

    Returns
    -------
    (filled, canal, closed)
        bool (z, y, x) bone with its enclosed holes filled (body excluded); bool (z, y, x) spinal canal;
        bool (z,) whether the canal was a hole enclosed by bone on that slice.
    """
    sp = spacing_mm
    filled, canal = bone & ~body, np.zeros_like(bone)
    ix = int(round(xm))
    ya, yb = int(np.ceil(ypw)) + 1, int(np.ceil(ypw + 20.0 / sp[1])) + 1
    open_slices = []
    for z in range(bone.shape[0]):
        solid = bone[z] | body[z]
        holes = ndimage.binary_fill_holes(solid) & ~solid
        lab, n = ndimage.label(holes)
        k = 0
        if n:
            on_mid = np.unique(lab[ya:yb, max(ix - 1, 0):ix + 2])
            on_mid = on_mid[on_mid > 0]
            if len(on_mid):
                k = int(on_mid[np.argmax(ndimage.sum(holes, lab, on_mid))])
            areas = np.asarray(ndimage.sum(holes, lab, range(1, n + 1))) * sp[1] * sp[2]
            small = np.isin(lab, 1 + np.nonzero(areas <= _MAX_FILLED_HOLE_MM2)[0]) & (lab != k)
            filled[z] |= small & ~body[z]
        if k:
            canal[z] = _canal_without_leaks(lab == k, sp)
            filled[z] |= (lab == k) & ~canal[z] & ~body[z]  # a pedicle core reached through a cortical gap
        else:
            open_slices.append(z)
    closed = canal.any(axis=(1, 2))
    if open_slices:
        _open_canal(canal, bone | body, open_slices, ix=ix, ya=ya, spacing_mm=sp)
    return filled, _canal_within_bone_rows(canal, bone | body, ix), closed


def _canal_within_bone_rows(canal: np.ndarray, solid: np.ndarray, ix: int) -> np.ndarray:
    """The canal less what lies beyond bone along its rows: per slice and row (y), canal voxels with a
    ``solid`` (bone or body) voxel between them and the midline column ``ix`` are dropped. The canal is
    bounded laterally by the pedicles at every depth; canal found lateral of bone on its row (a pedicle
    base's core, or a neighbour slice's recess copied into an open slice) is not canal."""
    out = canal.copy()
    for z, y in zip(*np.nonzero(canal.any(axis=2))):
        hits = np.nonzero(solid[z, y])[0]
        left, right = hits[hits < ix], hits[hits > ix]
        if len(left):
            out[z, y, :left.max()] = False
        if len(right):
            out[z, y, right.min() + 1:] = False
    return out


def _canal_without_leaks(hole: np.ndarray, spacing_mm) -> np.ndarray:
    """The canal hole of a slice less what leaks through a gap narrower than ``2 * _CANAL_OPENING_MM`` (a
    pedicle's cancellous core reached through a break in its medial cortex): opened, its largest part
    kept and grown back by the opening's radius, within the hole."""
    r = np.maximum(1, np.round(_CANAL_OPENING_MM / np.asarray(spacing_mm[1:], float))).astype(int)
    g = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1]
    disk = (g[0] / r[0]) ** 2 + (g[1] / r[1]) ** 2 <= 1.0
    opened = ndimage.binary_opening(hole, disk)
    lab, n = ndimage.label(opened)
    if n == 0:
        return hole
    main = lab == int(np.argmax(ndimage.sum(opened, lab, range(1, n + 1)))) + 1
    return hole & ndimage.binary_dilation(main, disk)


def _open_canal(canal, solid, slices, *, ix, ya, spacing_mm) -> None:
    """Canal in slices where the ring is open: the nearest closed slice's canal, less this slice's bone.

    Without any closed slice: the non-bone region at the midline within 10 mm of it and 18 mm behind the body.
    """
    closed = np.nonzero(canal.any(axis=(1, 2)))[0]
    for z in slices:
        if len(closed):
            canal[z] = canal[closed[np.argmin(np.abs(closed - z))]] & ~solid[z]
            continue
        y_lo, y_hi = ya, ya + int(round(18.0 / spacing_mm[1]))
        x_lo = max(ix - int(round(10.0 / spacing_mm[2])), 0)
        x_hi = ix + int(round(10.0 / spacing_mm[2])) + 1
        lab, n = ndimage.label(~solid[z, y_lo:y_hi, x_lo:x_hi])
        on_mid = np.unique(lab[:, max(ix - x_lo - 1, 0):ix - x_lo + 2])
        on_mid = on_mid[on_mid > 0]
        if n and len(on_mid):
            canal[z, y_lo:y_hi, x_lo:x_hi] = np.isin(lab, on_mid)


def canal_extent_mm(lb: LevelBone, xm: float, ypw: float, sign: float,
                    sp: tuple[float, float, float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per box slice (z): the canal's lateral wall on this side (mm lateral of the midline) and its back (mm
    behind the body's posterior wall).

    A slice whose read lies outside the plausible canal (``CANAL_HALF_WIDTH_MM``, ``CANAL_DEPTH_MM``: a canal
    leaked out through an open arch, or a sliver between bones) or has no canal takes the median of the
    others (8 and 16 mm when there is none).

    ``xm`` and ``ypw`` are the midline (x) and the body's posterior wall (y) as box indices, ``sign`` the
    side's ``SIDE_SIGN`` and ``sp`` the voxel spacing, (z, y, x) in mm.
    """
    nz = lb.canal.shape[0]
    wall, back = np.full(nz, np.nan), np.full(nz, np.nan)
    for z in range(nz):
        yi, xi = np.nonzero(lb.canal[z])
        lat = (xi - xm) * sign * sp[2]
        if (lat > 0).any():
            w, b = lat.max(), (yi.max() - ypw) * sp[1]
            if _within(w, R.CANAL_HALF_WIDTH_MM) and _within(b, R.CANAL_DEPTH_MM):
                wall[z], back[z] = w, b
    for a, default in ((wall, _DEFAULT_CANAL_HALF_WIDTH_MM), (back, _DEFAULT_CANAL_DEPTH_MM)):
        a[np.isnan(a)] = np.nanmedian(a) if np.isfinite(a).any() else default
    return wall, back


def _within(v: float, rule) -> bool:
    return rule.low <= v <= rule.high
