"""Geometry of a stack of parallel 2-D slices: sorting, slice spacing, gaps and gantry tilt.

Frames and conventions
----------------------
* Positions and directions are in the patient **LPS** frame, millimetres.
* Pixel ``(i, j)`` of slice ``k`` (row ``i``, column ``j``) sits at
  ``positions_lps_mm[k] + j * col_spacing * row_dir + i * row_spacing * col_dir``
  (DICOM: ``row_dir`` is ImageOrientationPatient[0:3], ``col_dir`` is [3:6],
  ``pixel_spacing_mm`` is PixelSpacing = (row spacing, column spacing)).
* The slice normal is ``row_dir x col_dir``. Slice spacing is measured on that normal from the
  slice positions (never from SliceThickness).

Tolerances (documented here, used by :func:`analyse_stack`)
----------------------------------------------------------
* ``SPACING_TOLERANCE_FRACTION`` / ``SPACING_TOLERANCE_MM``: a stack is uniform when every gap
  is within the larger of 2 % of the median gap or 0.05 mm of it; otherwise it is irregular
  (missing slices, mixed spacing) and is resampled onto a uniform grid at the median gap.
* ``MAX_GAP_FACTOR`` and ``MAX_GAP_MM``: a gap larger than both 4 x the median gap and 15 mm is
  refused (interpolating across it would invent anatomy).
* ``SHEAR_TOLERANCE_MM``: the stack is sheared (gantry tilt) when a slice origin lies more than
  0.05 mm off the normal line through the first slice origin.
* ``AXIS_TOLERANCE``: a direction is axis-aligned when each component is within 1e-3 of 0 or +-1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pvp_plan.errors import GeometryError

#: Fewest slices that make a 3-D volume.
MIN_SLICES = 2
SPACING_TOLERANCE_FRACTION = 0.02
SPACING_TOLERANCE_MM = 0.05
MAX_GAP_FACTOR = 4.0
MAX_GAP_MM = 15.0
SHEAR_TOLERANCE_MM = 0.05
AXIS_TOLERANCE = 1e-3
#: Two slices closer than this along the normal are duplicates (mm).
DUPLICATE_TOLERANCE_MM = 0.01


@dataclass(frozen=True, eq=False)
class SliceStack:
    """Parallel slices of one image stack, sorted by position along the slice normal.

    Attributes
    ----------
    positions_lps_mm : np.ndarray
        (K, 3) LPS position (mm) of the centre of pixel (row 0, column 0) of each slice, ascending
        along :attr:`normal`.
    row_dir, col_dir : np.ndarray
        (3,) unit vectors: direction of increasing column index and of increasing row index.
    pixel_spacing_mm : tuple of float
        (between rows, between columns) in mm, i.e. DICOM PixelSpacing order.
    shape_ij : tuple of int
        (rows, columns) of every slice.
    """

    positions_lps_mm: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    shape_ij: tuple[int, int]

    @property
    def normal(self) -> np.ndarray:
        """Unit slice normal ``row_dir x col_dir`` (LPS)."""
        n = np.cross(self.row_dir, self.col_dir)
        return n / np.linalg.norm(n)

    @property
    def n_slices(self) -> int:
        return int(self.positions_lps_mm.shape[0])

    @property
    def offsets_mm(self) -> np.ndarray:
        """Slice positions projected on the normal (mm), ascending."""
        return self.positions_lps_mm @ self.normal


def sort_order(positions_lps_mm: np.ndarray, row_dir: np.ndarray, col_dir: np.ndarray) -> np.ndarray:
    """Indices that sort slices by their position along the slice normal (ascending)."""
    normal = np.cross(np.asarray(row_dir, float), np.asarray(col_dir, float))
    return np.argsort(np.asarray(positions_lps_mm, float) @ normal, kind="stable")


def make_stack(
    positions_lps_mm: np.ndarray,
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    *,
    pixel_spacing_mm: tuple[float, float],
    shape_ij: tuple[int, int],
) -> tuple[SliceStack, np.ndarray]:
    """Build a sorted :class:`SliceStack`; also return the sort order of the input slices."""
    row = np.asarray(row_dir, float)
    col = np.asarray(col_dir, float)
    row = row / np.linalg.norm(row)
    col = col / np.linalg.norm(col)
    order = sort_order(positions_lps_mm, row, col)
    stack = SliceStack(
        positions_lps_mm=np.asarray(positions_lps_mm, float)[order],
        row_dir=row,
        col_dir=col,
        pixel_spacing_mm=(float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1])),
        shape_ij=(int(shape_ij[0]), int(shape_ij[1])),
    )
    return stack, order


def apply_order(array: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``array[order]`` along axis 0, as a view (no copy) when the order is identity or reversed."""
    n = len(order)
    if np.array_equal(order, np.arange(n)):
        return array
    if np.array_equal(order, np.arange(n)[::-1]):
        return array[::-1]
    return array[order]


@dataclass(frozen=True)
class StackReport:
    """What :func:`analyse_stack` found about a stack's spacing and shape.

    Attributes
    ----------
    median_gap_mm : float
        Median distance between neighbouring slices along the normal (mm).
    min_gap_mm, max_gap_mm : float
        Smallest and largest gap (mm).
    uniform : bool
        All gaps within tolerance of the median gap.
    tilt_deg : float
        Angle between the stack direction (first to last slice origin) and the slice normal;
        0 for an unsheared stack.
    sheared : bool
        A slice origin lies off the normal line through the first one (gantry tilt).
    axis_aligned : bool
        Row, column and normal directions each lie along an LPS axis.
    """

    median_gap_mm: float
    min_gap_mm: float
    max_gap_mm: float
    uniform: bool
    tilt_deg: float
    sheared: bool
    axis_aligned: bool

    @property
    def needs_resampling(self) -> bool:
        """True when the LPS grid cannot be obtained by permuting and flipping axes."""
        return (not self.uniform) or self.sheared or (not self.axis_aligned)


def is_axis_aligned(direction: np.ndarray) -> bool:
    """True when a unit vector lies along one LPS axis (within :data:`AXIS_TOLERANCE`)."""
    d = np.abs(np.asarray(direction, float))
    return bool(np.sum(d > AXIS_TOLERANCE) == 1 and abs(d.max() - 1.0) < AXIS_TOLERANCE)


def analyse_stack(stack: SliceStack, *, what: str) -> StackReport:
    """Measure slice spacing, gaps and shear of a sorted stack; refuse what cannot be rebuilt.

    Parameters
    ----------
    stack : SliceStack
        Sorted slices.
    what : str
        Name of the input for error messages (a folder or file name).

    Raises
    ------
    GeometryError
        Fewer than :data:`MIN_SLICES` slices, duplicate slice positions, or a gap too large
        to interpolate across.
    """
    if stack.n_slices < MIN_SLICES:
        raise GeometryError(
            f"{what}: a single slice; a 3-D volume needs at least {MIN_SLICES} slices. "
            "Pass the folder holding the whole series (or a multi-frame file)."
        )
    offsets = stack.offsets_mm
    gaps = np.diff(offsets)
    if np.any(gaps < DUPLICATE_TOLERANCE_MM):
        n_dup = int(np.sum(gaps < DUPLICATE_TOLERANCE_MM))
        raise GeometryError(
            f"{what}: {n_dup} slice(s) share a position with another slice (several acquisitions or "
            "phases mixed in one series?); export one acquisition per series or choose another series"
        )
    median_gap = float(np.median(gaps))
    tol = max(SPACING_TOLERANCE_FRACTION * median_gap, SPACING_TOLERANCE_MM)
    uniform = bool(np.all(np.abs(gaps - median_gap) <= tol))
    max_gap = float(gaps.max())
    if max_gap > MAX_GAP_FACTOR * median_gap and max_gap > MAX_GAP_MM:
        raise GeometryError(
            f"{what}: a gap of {max_gap:.1f} mm between slices (median spacing {median_gap:.2f} mm) is too "
            f"large to interpolate (limit: {MAX_GAP_FACTOR:g} x median and {MAX_GAP_MM:g} mm); "
            "the series is incomplete: re-export it whole"
        )
    rel = stack.positions_lps_mm - stack.positions_lps_mm[0]
    in_plane = rel - np.outer(rel @ stack.normal, stack.normal)
    off_line_mm = np.linalg.norm(in_plane, axis=1)
    sheared = bool(off_line_mm.max() > SHEAR_TOLERANCE_MM)
    span = float(offsets[-1] - offsets[0])
    tilt_deg = math.degrees(math.atan2(float(off_line_mm[-1]), span)) if sheared else 0.0
    aligned = all(is_axis_aligned(v) for v in (stack.row_dir, stack.col_dir))
    return StackReport(
        median_gap_mm=median_gap,
        min_gap_mm=float(gaps.min()),
        max_gap_mm=max_gap,
        uniform=uniform,
        tilt_deg=tilt_deg,
        sheared=sheared,
        axis_aligned=aligned,
    )


def describe_orientation(normal: np.ndarray) -> str:
    """'axial', 'coronal' or 'sagittal': the LPS axis closest to the slice normal."""
    axis = int(np.argmax(np.abs(np.asarray(normal, float))))
    return ("sagittal", "coronal", "axial")[axis]
