"""Put a stack of slices onto the LPS-aligned internal grid (see :mod:`pvp_plan.io.ct_volume`).

Two routes:

* **Exact** (:func:`exact_to_lps`): row, column and normal directions lie along LPS axes and the
  slices are evenly spaced and unsheared, so the internal array is a transposition and flip of
  the source array: no interpolation.
* **Resampled** (:func:`resample_to_lps`): oblique planes, gantry tilt (sheared stacks) or
  irregular slice spacing. Each source slice is a plane at a known LPS position, so every
  internal voxel is mapped back to a fractional (slice, row, column) index using the true
  per-slice positions (piecewise linear between neighbouring slices, exact on each slice
  plane) and sampled with linear interpolation. Voxels outside the scanned field hold -1024 HU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from pvp_plan.io.ct_volume import SourceGeometry
from pvp_plan.io.slice_stack import SliceStack, StackReport, analyse_stack

logger = logging.getLogger(__name__)

#: HU written where the internal grid lies outside the scanned field.
OUTSIDE_HU = -1024
#: Internal z slices resampled per chunk (bounds memory: ~chunk x ny x nx x 40 bytes).
RESAMPLE_CHUNK_Z = 4


@dataclass(frozen=True, eq=False)
class LpsGrid:
    """A volume on the internal LPS-aligned grid.

    Attributes
    ----------
    hu : np.ndarray
        (z, y, x) values.
    spacing_mm : tuple of float
        (z, y, x) voxel spacing in mm.
    origin_lps_mm : tuple of float
        LPS (x, y, z) position in mm of voxel (0, 0, 0).
    source : SourceGeometry
        The grid of the sorted source slices.
    report : StackReport
        Spacing/tilt analysis of the source stack.
    warnings : tuple of str
        What was corrected (tilt, irregular spacing, oblique planes).
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    source: SourceGeometry
    report: StackReport
    warnings: tuple[str, ...]


def stack_source_geometry(stack: SliceStack, report: StackReport) -> SourceGeometry:
    """The source grid of a sorted stack in SimpleITK terms (x = column, y = row, z = slice).

    For a uniform unsheared stack this is exact. For a sheared (tilted) stack the third
    direction is the stack direction (not orthogonal to the slices), which still describes
    every source pixel exactly when the stack is evenly spaced. For irregular spacing no grid
    is exact: the mean step from first to last slice is recorded and ``resampled`` is True.
    """
    first, last = stack.positions_lps_mm[0], stack.positions_lps_mm[-1]
    if report.sheared or not report.uniform:
        step = (last - first) / (stack.n_slices - 1)
        step_mm = float(np.linalg.norm(step))
        third = step / step_mm
    else:
        step_mm = float(np.median(np.diff(stack.offsets_mm)))
        third = stack.normal
    matrix = np.column_stack([stack.row_dir, stack.col_dir, third])
    rows, cols = stack.shape_ij
    return SourceGeometry(
        size_xyz=(cols, rows, stack.n_slices),
        spacing_xyz_mm=(stack.pixel_spacing_mm[1], stack.pixel_spacing_mm[0], step_mm),
        origin_lps_mm=tuple(float(v) for v in first),
        direction=tuple(float(v) for v in matrix.ravel()),
        resampled=report.needs_resampling,
    )


def exact_to_lps(pixels_kij: np.ndarray, stack: SliceStack, *, slice_spacing_mm: float) -> tuple[
        np.ndarray, tuple[float, float, float], tuple[float, float, float]]:
    """Transpose and flip an axis-aligned, evenly spaced stack onto the LPS grid (no interpolation).

    Parameters
    ----------
    pixels_kij : np.ndarray
        (slice, row, column) values of the sorted stack.
    stack : SliceStack
        Its geometry; row and column directions must be axis-aligned.
    slice_spacing_mm : float
        Distance between slices along the normal (mm).

    Returns
    -------
    hu_zyx, spacing_zyx_mm, origin_lps_mm
    """
    dy, dx = stack.pixel_spacing_mm
    # source array axes (k, i, j): LPS direction and step (mm) of each
    dirs = (stack.normal, stack.col_dir, stack.row_dir)
    steps = (slice_spacing_mm, dy, dx)
    lps_axis = [int(np.argmax(np.abs(d))) for d in dirs]
    negative = [bool(d[a] < 0) for d, a in zip(dirs, lps_axis, strict=True)]
    perm = [lps_axis.index(2), lps_axis.index(1), lps_axis.index(0)]  # internal (z, y, x) = LPS axes (2, 1, 0)
    hu = np.transpose(pixels_kij, perm)
    flips = tuple(axis for axis, src in enumerate(perm) if negative[src])
    if flips:
        hu = np.flip(hu, axis=flips)
    # LPS position of the source voxel that became internal index (0, 0, 0): the far end of each flipped axis
    origin = stack.positions_lps_mm[0].copy()
    for src in range(3):
        if negative[src]:
            origin = origin + (pixels_kij.shape[src] - 1) * steps[src] * dirs[src]
    spacing = [steps[src] for src in perm]
    return np.ascontiguousarray(hu), tuple(float(v) for v in spacing), tuple(float(v) for v in origin)


def _output_grid(stack: SliceStack, spacing_zyx_mm: tuple[float, float, float]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Origin (LPS) and size (z, y, x) of the LPS box holding every source pixel centre."""
    rows, cols = stack.shape_ij
    dy, dx = stack.pixel_spacing_mm
    in_plane = np.array([j * dx * stack.row_dir + i * dy * stack.col_dir for i in (0, rows - 1) for j in (0, cols - 1)])
    corners = (stack.positions_lps_mm[:, None, :] + in_plane[None, :, :]).reshape(-1, 3)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    spacing_xyz = np.asarray(spacing_zyx_mm[::-1], float)
    size_xyz = np.floor((hi - lo) / spacing_xyz + 1e-6).astype(int) + 1
    return lo, tuple(int(v) for v in size_xyz[::-1])


def _interp_extrapolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp with linear extrapolation beyond both ends."""
    y = np.interp(x, xp, fp)
    lo, hi = x < xp[0], x > xp[-1]
    if lo.any():
        y[lo] = fp[0] + (x[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    if hi.any():
        y[hi] = fp[-1] + (x[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return y


def _resample_affine(pixels_kij: np.ndarray, stack: SliceStack, *, origin: np.ndarray, size: tuple[int, ...],
                     spacing_zyx_mm: tuple[float, float, float], fill_hu: float) -> np.ndarray:
    """Evenly spaced stack (sheared or oblique): one affine map from internal (z, y, x) to source (k, i, j)."""
    dy, dx = stack.pixel_spacing_mm
    first, last = stack.positions_lps_mm[0], stack.positions_lps_mm[-1]
    step = (last - first) / (stack.n_slices - 1)
    source_to_lps = np.column_stack([step, dy * stack.col_dir, dx * stack.row_dir])  # (k, i, j) -> X - first
    sz, sy, sx = spacing_zyx_mm
    internal_to_lps = np.array([[0.0, 0.0, sx], [0.0, sy, 0.0], [sz, 0.0, 0.0]])  # (z, y, x) -> X - origin
    inverse = np.linalg.inv(source_to_lps)
    matrix = inverse @ internal_to_lps
    offset = inverse @ (np.asarray(origin, float) - first)
    src = pixels_kij if pixels_kij.dtype == np.float32 else pixels_kij.astype(np.float32)
    vals = ndimage.affine_transform(src, matrix, offset, output_shape=size, output=np.float32, order=1,
                                    mode="nearest")
    del src
    # inside the field: nearest source index within range, i.e. within half a voxel of the source grid
    inside = ndimage.affine_transform(np.ones(pixels_kij.shape, np.uint8), matrix, offset, output_shape=size,
                                      output=np.uint8, order=0, mode="constant", cval=0)
    vals[inside == 0] = fill_hu
    if np.issubdtype(pixels_kij.dtype, np.integer):
        return np.rint(vals, out=vals).astype(pixels_kij.dtype)
    return vals.astype(pixels_kij.dtype, copy=False)


def resample_to_lps(pixels_kij: np.ndarray, stack: SliceStack, *, spacing_zyx_mm: tuple[float, float, float],
                    fill_hu: float = OUTSIDE_HU, uniform: bool = False) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Resample any stack of parallel slices onto an LPS-aligned grid (linear interpolation).

    Each internal voxel at LPS point ``X`` is placed between the two source slices whose planes
    bracket ``X . normal``; its row and column come from the in-plane position of ``X`` relative
    to the (linearly interpolated) slice origin. This is exact on each source plane and is the
    exact affine inverse of a uniformly sheared (tilted) stack. With ``uniform=True`` (evenly
    spaced slices) that affine inverse is applied directly (``scipy.ndimage.affine_transform``,
    faster, same result).

    Parameters
    ----------
    pixels_kij : np.ndarray
        (slice, row, column) values of the sorted stack.
    stack : SliceStack
        Its geometry.
    spacing_zyx_mm : tuple of float
        Internal voxel spacing (z, y, x) in mm.
    fill_hu : float
        Value outside the scanned field.
    uniform : bool
        The slices are evenly spaced (see :class:`~pvp_plan.io.slice_stack.StackReport`).

    Returns
    -------
    hu_zyx, origin_lps_mm
        Same dtype as the input (integers rounded).
    """
    origin, size = _output_grid(stack, spacing_zyx_mm)
    if uniform:
        return _resample_affine(pixels_kij, stack, origin=origin, size=size, spacing_zyx_mm=spacing_zyx_mm,
                                fill_hu=fill_hu), tuple(float(v) for v in origin)
    nz, ny, nx = size
    sz, sy, sx = spacing_zyx_mm
    normal, row, col = stack.normal, stack.row_dir, stack.col_dir
    dy, dx = stack.pixel_spacing_mm
    pos = stack.positions_lps_mm
    s_k, a_k, b_k = pos @ normal, pos @ row, pos @ col
    k_index = np.arange(stack.n_slices, dtype=float)
    n_k, n_i, n_j = pixels_kij.shape
    src = pixels_kij if pixels_kij.dtype == np.float32 else pixels_kij.astype(np.float32)
    out = np.empty(size, dtype=pixels_kij.dtype)
    ys = origin[1] + sy * np.arange(ny)
    xs = origin[0] + sx * np.arange(nx)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    for z0 in range(0, nz, RESAMPLE_CHUNK_Z):
        zs = origin[2] + sz * np.arange(z0, min(z0 + RESAMPLE_CHUNK_Z, nz))
        pts = np.empty((len(zs), ny, nx, 3))
        pts[..., 0] = xx
        pts[..., 1] = yy
        pts[..., 2] = zs[:, None, None]
        s = pts @ normal
        k = _interp_extrapolate(s.ravel(), s_k, k_index)
        a = np.interp(s.ravel(), s_k, a_k) if n_k > 1 else np.full(s.size, a_k[0])
        b = np.interp(s.ravel(), s_k, b_k) if n_k > 1 else np.full(s.size, b_k[0])
        j = ((pts @ row).ravel() - a) / dx
        i = ((pts @ col).ravel() - b) / dy
        outside = (k < -0.5) | (k > n_k - 0.5) | (i < -0.5) | (i > n_i - 0.5) | (j < -0.5) | (j > n_j - 0.5)
        vals = ndimage.map_coordinates(src, [k, i, j], order=1, mode="nearest")
        vals[outside] = fill_hu
        chunk = vals.reshape(len(zs), ny, nx)
        if np.issubdtype(out.dtype, np.integer):
            chunk = np.rint(chunk)
        out[z0:z0 + len(zs)] = chunk
    return out, tuple(float(v) for v in origin)


def stack_to_lps(pixels_kij: np.ndarray, stack: SliceStack, *, what: str,
                 tilt_header_deg: float | None = None) -> LpsGrid:
    """Analyse a sorted stack and put it on the LPS grid, exactly when possible, else resampled.

    Parameters
    ----------
    pixels_kij : np.ndarray
        (slice, row, column) values, in the stack's sorted order.
    stack : SliceStack
        Sorted geometry.
    what : str
        Name of the input for messages.
    tilt_header_deg : float, optional
        GantryDetectorTilt from the header, quoted in the warning when present.

    Raises
    ------
    GeometryError
        From :func:`pvp_plan.io.slice_stack.analyse_stack`.
    """
    report = analyse_stack(stack, what=what)
    source = stack_source_geometry(stack, report)
    if not report.needs_resampling:
        hu, spacing, origin = exact_to_lps(pixels_kij, stack, slice_spacing_mm=report.median_gap_mm)
        return LpsGrid(hu, spacing, origin, source, report, ())
    warnings = []
    if report.sheared:
        header = f" (header GantryDetectorTilt {tilt_header_deg:+.1f} deg)" if tilt_header_deg else ""
        warnings.append(
            f"gantry tilt: slice positions are sheared by {report.tilt_deg:.1f} deg from the slice normal{header}; "
            "corrected by resampling onto an orthogonal LPS grid (linear interpolation)"
        )
    if not report.uniform:
        warnings.append(
            f"irregular slice spacing: gaps from {report.min_gap_mm:.2f} to {report.max_gap_mm:.2f} mm "
            f"(median {report.median_gap_mm:.2f} mm; missing slices or mixed spacing); "
            f"resampled onto a uniform {report.median_gap_mm:.2f} mm grid (linear interpolation)"
        )
    if not report.axis_aligned and not report.sheared:
        warnings.append("oblique image planes (not aligned with the patient axes); resampled onto the LPS grid "
                        "(linear interpolation)")
    spacing = _resampled_spacing(stack, report)
    hu, origin = resample_to_lps(pixels_kij, stack, spacing_zyx_mm=spacing, uniform=report.uniform)
    for w in warnings:
        logger.info("%s: %s", Path(what).name, w)
    return LpsGrid(hu, spacing, origin, source, report, tuple(warnings))


def _resampled_spacing(stack: SliceStack, report: StackReport) -> tuple[float, float, float]:
    """Internal spacing (z, y, x): each LPS axis takes the spacing of the source axis closest to it."""
    dy, dx = stack.pixel_spacing_mm
    steps = [dx, dy, report.median_gap_mm]
    dirs = np.abs(np.column_stack([stack.row_dir, stack.col_dir, stack.normal]))  # rows: LPS axes
    spacing_xyz = [0.0, 0.0, 0.0]
    taken: set[int] = set()
    for lps_axis in np.argsort(-dirs.max(axis=1)):
        order = np.argsort(-dirs[lps_axis])
        src = next(int(s) for s in order if int(s) not in taken)
        taken.add(src)
        spacing_xyz[int(lps_axis)] = steps[src]
    return (spacing_xyz[2], spacing_xyz[1], spacing_xyz[0])
