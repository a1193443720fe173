"""The coarse working grid the segmenter detects on, and the way back to the CT grid.

Block averaging by integer factors keeps the working grid aligned with the CT grid (voxel
``i`` of the working grid covers CT voxels ``i*f ... i*f + f - 1`` on each axis), so labels map
back exactly by repetition. Arrays are (z, y, x); spacings (z, y, x) in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.label_boxes import grown_box, occupied_box


@dataclass(frozen=True)
class WorkingGrid:
    """A smoothed, block-averaged copy of the CT in HU (float32)."""

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    factors: tuple[int, int, int]


def block_factors(spacing_mm: tuple[float, float, float], target_mm: float) -> tuple[int, int, int]:
    """Integer block sizes that bring each axis close to ``target_mm`` without making it finer."""
    return tuple(max(1, int(round(target_mm / s))) if s < target_mm else 1 for s in spacing_mm)


def block_mean(hu: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Mean of each block of ``factors`` voxels (the trailing partial block on each axis is dropped).

    Integer HU (int16 or narrower) is summed exactly in int32, one axis at a time over strided views, and
    divided once in float32: bit-identical to ``reshape(...).mean(dtype=np.float32)`` (whose float32 partial
    sums of fewer than 512 int16 values are exact too), without a float copy of the whole CT.
    """
    fz, fy, fx = factors
    nz, ny, nx = (s // f for s, f in zip(hu.shape, factors))
    a = hu[: nz * fz, : ny * fy, : nx * fx]
    if factors == (1, 1, 1):
        return a.astype(np.float32, copy=True)
    count = fz * fy * fx
    if not (np.issubdtype(a.dtype, np.integer) and a.dtype.itemsize <= 2 and count < 512):
        return a.astype(np.float32, copy=False).reshape(nz, fz, ny, fy, nx, fx).mean(axis=(1, 3, 5), dtype=np.float32)
    acc = a
    for axis, f in ((2, fx), (1, fy), (0, fz)):
        if f == 1:
            continue
        sl = [slice(None)] * 3
        sl[axis] = slice(0, None, f)
        total = acc[tuple(sl)].astype(np.int32)
        for j in range(1, f):
            sl[axis] = slice(j, None, f)
            total += acc[tuple(sl)]
        acc = total
    return np.true_divide(acc.astype(np.float32), count, dtype=np.float32)


def make_working_grid(hu: np.ndarray, spacing_mm: tuple[float, float, float], *, target_mm: float,
                      smooth_mm: float) -> WorkingGrid:
    """Block-average ``hu`` to about ``target_mm`` and smooth it with a Gaussian of ``smooth_mm``."""
    factors = block_factors(spacing_mm, target_mm)
    spacing = tuple(float(s * f) for s, f in zip(spacing_mm, factors))
    work = block_mean(hu, factors)
    if smooth_mm > 0:
        work = ndimage.gaussian_filter(work, smooth_mm / np.asarray(spacing), output=np.float32)
    return WorkingGrid(hu=work, spacing_mm=spacing, factors=factors)


def to_full_grid(labels: np.ndarray, factors: tuple[int, int, int], shape: tuple[int, int, int],
                 fill: int = 0) -> np.ndarray:
    """Repeat working-grid labels back onto the CT grid of ``shape`` (padding the dropped tail with ``fill``)."""
    out = np.full(shape, fill, dtype=labels.dtype)
    n = [min(m, s // f) for m, s, f in zip(labels.shape, shape, factors)]
    # whole blocks: one broadcast write through a (n, f, n, f, n, f) view of the output
    block = out[tuple(slice(0, k * f) for k, f in zip(n, factors))]
    block.reshape(n[0], factors[0], n[1], factors[1], n[2], factors[2])[...] = \
        labels[: n[0], None, : n[1], None, : n[2], None]
    return out


def in_plane_box_on_ct_grid(labels: np.ndarray, factors: tuple[int, int, int], shape: tuple[int, int, int],
                            margin: int) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """The in-plane bounding box of the segments (``labels >= 0``) grown by ``margin`` working voxels, on both grids.

    Returns ``(work_box, ct_box)``: every slice in z, and in y and x the box on the working grid and the CT
    voxels its blocks cover (to the CT's edge where the box reaches the working grid's, so the tail a block
    average dropped is inside), so that ``to_full_grid(labels[work_box], factors, ct_shape_of_box)`` is the
    CT-grid labels inside ``ct_box``. None when there is no segment.
    """
    box = occupied_box(labels, background=-1)
    if box is None:
        return None
    _, rows, cols = grown_box(box, (0, margin, margin), labels.shape)
    work, ct = [slice(0, labels.shape[0]), rows, cols], [slice(0, shape[0])]
    for axis, s in ((1, rows), (2, cols)):
        ct.append(slice(s.start * factors[axis], shape[axis] if s.stop == labels.shape[axis] else s.stop * factors[axis]))
    return tuple(work), tuple(ct)


def ball(radius_mm: float, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """A boolean ball of ``radius_mm`` on an anisotropic grid (at least one voxel in each direction)."""
    r = [max(1, int(round(radius_mm / s))) for s in spacing_mm]
    zz, yy, xx = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return (zz * spacing_mm[0]) ** 2 + (yy * spacing_mm[1]) ** 2 + (xx * spacing_mm[2]) ** 2 <= radius_mm ** 2 + 1e-6


def disk_in_plane(radius_mm: float, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """A flat (1, ny, nx) disk of ``radius_mm`` in the axial plane: per-slice morphology on a 3-D array."""
    ry, rx = (max(1, int(round(radius_mm / s))) for s in spacing_mm[1:])
    yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    return ((yy * spacing_mm[1]) ** 2 + (xx * spacing_mm[2]) ** 2 <= radius_mm ** 2 + 1e-6)[None]


#: 4-connectivity within an axial slice and none across slices: per-slice regions in one 3-D labelling.
IN_SLICE = np.zeros((3, 3, 3), bool)
IN_SLICE[1] = ndimage.generate_binary_structure(2, 1)


def slice_enclosures(background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-slice components of ``background`` and, per component label, whether it is enclosed.

    Enclosed: not reaching the array's y or x faces, i.e. a hole of the foreground in its axial slice
    (what ``ndimage.binary_fill_holes`` fills slice by slice). Returns ``(labels, enclosed)`` with
    ``enclosed[0]`` False.
    """
    lab, _ = ndimage.label(background, structure=IN_SLICE)
    enclosed = np.ones(lab.max() + 1, bool)
    enclosed[0] = False
    for face in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        enclosed[face] = False
    return lab, enclosed
