"""Body volume, its one-voxel uncertainty band, and the volume anterior to the posterior-third plane."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.measure.frame import BodyFrame


@dataclass(frozen=True)
class VolumeEstimate:
    """Body volume with the band a one-voxel boundary change gives.

    Attributes
    ----------
    volume_ml : float
        Voxel count x voxel volume.
    low_ml, high_ml : float
        Volume after eroding / dilating the mask by one voxel (6-connected).
    voxel_size_mm : tuple of float
        (z, y, x) voxel size the band comes from.
    """

    volume_ml: float
    low_ml: float
    high_ml: float
    voxel_size_mm: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"volume_ml": round(self.volume_ml, 2), "low_ml": round(self.low_ml, 2),
                "high_ml": round(self.high_ml, 2), "voxel_size_mm_zyx": list(self.voxel_size_mm),
                "method": "one-voxel erosion / dilation of the body mask"}


def body_volume_ml(mask: np.ndarray, *, spacing_mm: tuple[float, float, float]) -> float:
    """Volume of a boolean (z, y, x) mask in mL (1 mL = 1000 mm^3)."""
    return float(np.count_nonzero(mask)) * float(np.prod(spacing_mm)) / 1000.0


def volume_estimate(mask: np.ndarray, *, spacing_mm: tuple[float, float, float]) -> VolumeEstimate:
    """Volume of a body mask and its band from a one-voxel boundary change (erosion / dilation)."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    eroded = ndimage.binary_erosion(padded)
    dilated = ndimage.binary_dilation(padded)
    return VolumeEstimate(
        volume_ml=body_volume_ml(mask, spacing_mm=spacing_mm),
        low_ml=body_volume_ml(eroded, spacing_mm=spacing_mm),
        high_ml=body_volume_ml(dilated, spacing_mm=spacing_mm),
        voxel_size_mm=tuple(float(v) for v in spacing_mm),
    )


def posterior_third_stop_ml(mask: np.ndarray, *, spacing_mm: tuple[float, float, float], frame: BodyFrame,
                            stop_fraction: float = 2.0 / 3.0) -> float:
    """Body volume (mL) anterior to the plane at ``stop_fraction`` of the antero-posterior depth.

    The depth is measured along ``frame.anterior_zyx`` (perpendicular to the spine axis) between
    the most anterior and most posterior voxel faces; the plane lies ``stop_fraction`` of it behind
    the anterior surface (CQ5: stop when cement reaches the posterior third).
    """
    idx = np.argwhere(mask)
    pts = idx * np.asarray(spacing_mm, dtype=float)
    u = frame.coordinates(pts)[:, 1]
    half = 0.5 * float(np.abs(np.asarray(spacing_mm) * frame.anterior_zyx).sum())  # voxel half-extent along u
    front, back = u.max() + half, u.min() - half
    plane = front - stop_fraction * (front - back)
    return float(np.count_nonzero(u > plane)) * float(np.prod(spacing_mm)) / 1000.0
