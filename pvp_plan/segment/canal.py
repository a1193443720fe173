"""The spinal canal and the posterior wall of the vertebral bodies, slice by slice.

The canal is the one long, dark (CSF, cord, epidural fat) tube that has bone in front of it (the
body) and on both sides (pedicles, laminae) on most axial slices. It anchors everything else:
the bodies lie directly in front of it, whatever contrast-filled vessels lie next to them.

Frames: arrays (z, y, x) on the working grid; +y is posterior, +x is the patient's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.errors import SegmentationError
from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.working_grid import IN_SLICE


@dataclass(frozen=True)
class CanalTrack:
    """Canal centre and posterior-wall position per working slice (voxel units, interpolated where unseen).

    Attributes
    ----------
    center_yx : np.ndarray
        (nz, 2) canal centre (y, x) per slice.
    wall_y : np.ndarray
        (nz,) y of the bodies' posterior wall on the canal's midline.
    seen : np.ndarray
        (nz,) True where the canal was detected on the slice itself.
    z_range : tuple of int
        First and one-past-last slice between the first and last detection.
    """

    center_yx: np.ndarray
    wall_y: np.ndarray
    seen: np.ndarray
    z_range: tuple[int, int]


def _bone_within(bone: np.ndarray, axis: int, n: int, forward: bool) -> np.ndarray:
    """True where bone lies within ``n`` voxels along +axis (forward) or -axis, the voxel itself excluded."""
    # any() over the n voxels starting at i (forward) or ending at i (backward), then shifted by one voxel
    window = ndimage.maximum_filter1d(bone, size=n, axis=axis, mode="constant", cval=0,
                                      origin=-(n // 2) if forward else (n - 1) // 2)
    out = np.zeros(bone.shape, bool)
    near, far = [slice(None)] * bone.ndim, [slice(None)] * bone.ndim
    near[axis], far[axis] = slice(0, -1), slice(1, None)
    if forward:
        out[tuple(near)] = window[tuple(far)]
    else:
        out[tuple(far)] = window[tuple(near)]
    return out


def canal_mask(hu: np.ndarray, spacing_mm, options: ColumnOptions) -> np.ndarray:
    """Dark voxels with bone in front (within canal_bone_anterior_mm) and on both sides."""
    bone = hu > options.bone_hu
    cand = (hu < options.csf_max_hu) & (hu > -150.0)
    ny = max(1, int(round(options.canal_bone_anterior_mm / spacing_mm[1])))
    nx = max(1, int(round(options.canal_bone_lateral_mm / spacing_mm[2])))
    cand &= _bone_within(bone, 1, ny, forward=False)
    cand &= _bone_within(bone, 2, nx, forward=True)
    cand &= _bone_within(bone, 2, nx, forward=False)
    return cand


def _candidates(mask: np.ndarray, spacing_mm, min_area_mm2: float = 10.0) -> list[list[tuple[float, float, float]]]:
    """Per slice: (y, x, area_mm2) of each connected candidate region (4-connected in the slice).

    Regions are listed in raster order of their first voxel; centres are the voxel means (sums taken in
    raster order, as ``ndimage.center_of_mass`` does slice by slice).
    """
    px = spacing_mm[1] * spacing_mm[2]
    out: list[list[tuple[float, float, float]]] = [[] for _ in range(mask.shape[0])]
    lab, n = ndimage.label(mask, structure=IN_SLICE)
    if not n:
        return out
    flat = np.flatnonzero(lab)
    ids = lab.ravel()[flat]
    zz, yy, xx = np.unravel_index(flat, lab.shape)
    count = np.bincount(ids, minlength=n + 1)[1:].astype(float)
    cy = np.bincount(ids, weights=yy.astype(float), minlength=n + 1)[1:] / count
    cx = np.bincount(ids, weights=xx.astype(float), minlength=n + 1)[1:] / count
    z_of = np.zeros(n, np.intp)
    z_of[ids - 1] = zz
    area = count * px
    for i in np.nonzero(area >= min_area_mm2)[0]:
        out[z_of[i]].append((cy[i], cx[i], area[i]))
    return out


def _follow(cands, spacing_mm, max_jump_mm: float = 25.0) -> np.ndarray:
    """Pick, per slice, the candidate of the long tube: most area-weighted support, then nearest and largest."""
    rows = np.array([(z, cy, cx, a) for z, c in enumerate(cands) for (cy, cx, a) in c], dtype=float)
    nz = len(cands)
    centre = np.full((nz, 2), np.nan)
    if len(rows) < 3:
        return centre
    pos_mm = rows[:, 1:3] * np.asarray(spacing_mm[1:])
    support = [np.sqrt(rows[np.hypot(*(pos_mm - p).T) < 12.0, 3]).sum() for p in pos_mm]
    ref = rows[int(np.argmax(support)), 1:3]
    for _ in range(2):
        for z, c in enumerate(cands):
            if not c:
                continue
            d = np.array([np.hypot((cy - ref[0]) * spacing_mm[1], (cx - ref[1]) * spacing_mm[2]) for cy, cx, _ in c])
            area = np.array([a for _, _, a in c])
            score = np.where(d < max_jump_mm, np.sqrt(area) * np.exp(-d / 10.0), -1.0)
            k = int(np.argmax(score))
            if score[k] > 0:
                centre[z] = c[k][:2]
        if np.isnan(centre[:, 0]).all():
            break
        ref = np.nanmedian(centre, axis=0)
    return centre


def posterior_wall(column: np.ndarray, y_start: int, *, search_dark: int, search_wall: int, wall_hu: float,
                   dark_hu: float) -> int | None:
    """y of the posterior body wall on one column of HU along y: from the canal, the first bone anteriorly.

    Starts at the nearest dark (canal) voxel within ``search_dark`` of ``y_start``, then walks anteriorly
    (decreasing y) at most ``search_wall`` voxels.
    """
    n = column.size
    start = None
    for d in range(search_dark + 1):
        for y in (y_start - d, y_start + d):
            if 0 <= y < n and column[y] < dark_hu:
                start = y
                break
        if start is not None:
            break
    if start is None:
        return None
    for y in range(start, max(-1, start - search_wall), -1):
        if column[y] > wall_hu:
            return y
    return None


def _smooth_track(values: np.ndarray, seen: np.ndarray, spacing_z: float) -> np.ndarray:
    z = np.arange(values.shape[0])
    out = np.array(values, dtype=float)
    if out.ndim == 1:
        out = out[:, None]
    for k in range(out.shape[1]):
        out[:, k] = np.interp(z, z[seen], out[seen, k])
    out = ndimage.uniform_filter1d(out, size=max(3, int(round(9.0 / spacing_z))), axis=0, mode="nearest")
    return out[:, 0] if np.ndim(values) == 1 else out


def track_canal(hu: np.ndarray, spacing_mm, options: ColumnOptions) -> CanalTrack:
    """Find the canal on each slice, follow it along z and locate the posterior body wall in front of it.

    Raises
    ------
    SegmentationError
        When no canal-like tube is found (no spine in view, head CT).
    """
    centre = _follow(_candidates(canal_mask(hu, spacing_mm, options), spacing_mm), spacing_mm)
    seen = ~np.isnan(centre[:, 0])
    if seen.sum() < 3:
        raise SegmentationError("no spinal canal found (a dark tube with bone in front and on both sides); "
                                "is the thoracolumbar spine in the field of view?")
    zs = np.nonzero(seen)[0]
    centre = _smooth_track(centre, seen, spacing_mm[0])
    ry = lambda mm: max(1, int(round(mm / spacing_mm[1])))  # noqa: E731
    wall = np.full(hu.shape[0], np.nan)
    for z in range(hu.shape[0]):
        yc, xc = (int(round(v)) for v in centre[z])
        hits = [posterior_wall(hu[z, :, x], yc, search_dark=ry(12.0), search_wall=ry(20.0), wall_hu=options.wall_hu,
                               dark_hu=options.csf_max_hu)
                for x in (xc - 1, xc, xc + 1) if 0 <= x < hu.shape[2] and 0 <= yc < hu.shape[1]]
        hits = [h for h in hits if h is not None]
        if hits:
            wall[z] = float(np.median(hits))
    found = ~np.isnan(wall)
    if found.sum() < 3:
        raise SegmentationError("the spinal canal was found but no vertebral body in front of it")
    wall[found] = ndimage.median_filter(wall[found], size=5, mode="nearest")
    wall = _smooth_track(wall, found, spacing_mm[0])
    return CanalTrack(center_yx=centre, wall_y=wall, seen=seen, z_range=(int(zs.min()), int(zs.max()) + 1))


def column_region(shape, spacing_mm, track: CanalTrack, *, half_width_mm: float, depth_mm: float,
                  behind_mm: float = 1.0) -> np.ndarray:
    """Voxels in front of the posterior wall (up to ``depth_mm``) within ``half_width_mm`` of the canal midline."""
    ny, nx = shape[1], shape[2]
    yy = np.arange(ny)[None, :, None] * spacing_mm[1]
    xx = np.arange(nx)[None, None, :] * spacing_mm[2]
    w = track.wall_y[:, None, None] * spacing_mm[1]
    xc = track.center_yx[:, 1][:, None, None] * spacing_mm[2]
    return (yy <= w + behind_mm) & (yy >= w - depth_mm) & (np.abs(xx - xc) <= half_width_mm)


def core_region(shape, spacing_mm, track: CanalTrack) -> np.ndarray:
    """Where a body's trabecular core is expected: 3-25 mm in front of the wall, within 8 mm of the midline."""
    core = column_region(shape, spacing_mm, track, half_width_mm=8.0, depth_mm=25.0, behind_mm=-3.0)
    z0, z1 = track.z_range
    core[:z0] = False
    core[z1:] = False
    return core
