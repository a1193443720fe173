"""The body's own frame: spine axis (cranial), anterior direction perpendicular to it, lateral (patient left).

Coordinates are physical millimetres in array order (z, y, x) relative to the grid origin, so
no LPS offset is needed: on the LPS-aligned grid +z is Superior, +y Posterior, +x Left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BodyFrame:
    """Orthonormal frame of one vertebral body.

    Attributes
    ----------
    center_zyx_mm : np.ndarray
        Body centroid, (z, y, x) mm from the centre of voxel (0, 0, 0).
    axis_zyx : np.ndarray
        Unit spine axis pointing cranially, (z, y, x) components.
    anterior_zyx : np.ndarray
        Unit vector perpendicular to the axis, pointing anteriorly.
    left_zyx : np.ndarray
        Unit vector toward the patient's left (axis x anterior, right-handed in LPS).
    """

    center_zyx_mm: np.ndarray
    axis_zyx: np.ndarray
    anterior_zyx: np.ndarray
    left_zyx: np.ndarray

    def coordinates(self, points_zyx_mm: np.ndarray) -> np.ndarray:
        """(N, 3) columns (axial, anterior, left) in mm of (N, 3) (z, y, x) mm points."""
        d = np.asarray(points_zyx_mm, dtype=float) - self.center_zyx_mm
        return np.stack([d @ self.axis_zyx, d @ self.anterior_zyx, d @ self.left_zyx], axis=1)

    def point(self, axial_mm: np.ndarray | float, anterior_mm: np.ndarray | float,
              left_mm: np.ndarray | float) -> np.ndarray:
        """(..., 3) (z, y, x) mm points from frame coordinates (broadcasting)."""
        a = np.asarray(axial_mm, dtype=float)[..., None]
        p = np.asarray(anterior_mm, dtype=float)[..., None]
        l_ = np.asarray(left_mm, dtype=float)[..., None]
        return self.center_zyx_mm + a * self.axis_zyx + p * self.anterior_zyx + l_ * self.left_zyx


def body_frame(mask: np.ndarray, *, spacing_mm: tuple[float, float, float],
               axis_lps: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> BodyFrame:
    """Frame of a body mask given the spine axis (``BodyInfo.axis_lps``, LPS x, y, z, cranial).

    The anterior direction is patient anterior (-y) made perpendicular to the axis.
    """
    idx = np.argwhere(mask)
    if idx.size == 0:
        raise ValueError("empty body mask: no frame")
    center = idx.mean(axis=0) * np.asarray(spacing_mm, dtype=float)
    axis = np.asarray(axis_lps, dtype=float)[::-1]
    axis = axis / np.linalg.norm(axis)
    if axis[0] < 0:  # make it point superiorly (+z)
        axis = -axis
    anterior = np.array([0.0, -1.0, 0.0])
    anterior = anterior - (anterior @ axis) * axis
    if np.linalg.norm(anterior) < 1e-6:
        raise ValueError("spine axis is antero-posterior: cannot define the anterior direction")
    anterior /= np.linalg.norm(anterior)
    # left = axis x anterior, computed in (x, y, z) order to keep LPS handedness, then back to (z, y, x)
    left_xyz = np.cross(axis[::-1], anterior[::-1])
    left = left_xyz[::-1] / np.linalg.norm(left_xyz)
    return BodyFrame(center_zyx_mm=center, axis_zyx=axis, anterior_zyx=anterior, left_zyx=left)


def sample(volume: np.ndarray, points_zyx_mm: np.ndarray, *, spacing_mm: tuple[float, float, float],
           order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Values of ``volume`` at (..., 3) (z, y, x) mm points (linear interpolation by default)."""
    from scipy import ndimage

    pts = np.asarray(points_zyx_mm, dtype=float)
    idx = (pts / np.asarray(spacing_mm, dtype=float)).reshape(-1, 3).T
    vals = ndimage.map_coordinates(volume, idx, order=order, mode="constant", cval=cval)
    return vals.reshape(pts.shape[:-1])
