"""Image noise, and whether it exceeds what the segmentation was checked at (a low-dose CT).

The noise is read where the image should be flat: in-plane windows of about 6 x 6 mm lying wholly in soft tissue
(-50 to 150 HU: muscle, organs, blood), on at most ``MAX_SLICES`` slices evenly spread along the scan. The median of
the windows' standard deviations (sample, ``ddof=1``) is the noise per voxel (HU); anatomy inside the windows adds to
it, so it is an upper bound of the scanner's noise on a quiet image. Scaled to a 3 mm cube as white noise would be
(times the square root of the voxel volume over 27 mm^3), it compares scans of different voxel sizes: a 1.5 mm voxel
with 40 HU of noise is as noisy per cubic millimetre as a 3 mm voxel with 14 HU. Noise correlated between voxels (a
smooth reconstruction kernel, overlapping slices) averages down less than that, so the scaled figure is a guide.

Frames: ``hu`` (z, y, x) on the CT grid, ``spacing_mm`` (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Soft tissue (HU) where the noise is read.
SOFT_TISSUE_HU = (-50.0, 150.0)
#: Half-width (mm) of the in-plane windows, and how many slices are read (the noise varies little along a scan).
WINDOW_HALF_MM = 3.0
MAX_SLICES = 24
#: Noise (HU, 3 mm-equivalent) above which the level names and outlines are reported as less reliable. On the shared
#: 3 mm abdominal CT (15 HU as read here) with white noise added (session 14): 25 HU (20 added) named right and
#: outlined on every draw tried; 32 HU (30 added) on 3 of 6 draws; 41 HU (45 added) on none (every failure flagged).
#: The contrast chest CT reads 10 HU (1.5 mm voxels, 29 HU per voxel) and 16 HU with 45 HU added, named alike. A first
#: line from one real CT with white noise added: real low-dose noise is correlated and textured.
CHECKED_NOISE_3MM_HU = 28.0
NOISE_SOURCE = "pvp-plan measurement"


@dataclass(frozen=True)
class ImageNoise:
    """Noise of a CT: per voxel and scaled to a 3 mm cube (HU); ``windows`` is how many windows it was read in."""

    per_voxel_hu: float
    per_3mm_hu: float
    windows: int


def image_noise(hu: np.ndarray, spacing_mm) -> ImageNoise | None:
    """The image's noise (see the module docstring), or None when fewer than 100 soft-tissue windows fit."""
    sp = np.asarray(spacing_mm, float)
    sample = hu[np.unique(np.linspace(0, hu.shape[0] - 1, min(MAX_SLICES, hu.shape[0])).round().astype(int))]
    sample = sample.astype(np.float32)
    n = np.maximum(1, np.round(WINDOW_HALF_MM / sp[1:]).astype(int))
    size = (1, 2 * int(n[0]) + 1, 2 * int(n[1]) + 1)
    count = size[1] * size[2]
    soft = (sample > SOFT_TISSUE_HU[0]) & (sample < SOFT_TISSUE_HU[1])
    inside = ndimage.minimum_filter(soft, size=size, mode="constant", cval=False)
    if np.count_nonzero(inside) < 100:
        return None
    mean = ndimage.uniform_filter(sample, size=size)
    mean_sq = ndimage.uniform_filter(sample * sample, size=size)
    var = np.maximum(mean_sq - mean * mean, 0.0)[inside] * (count / (count - 1))
    per_voxel = float(np.sqrt(np.median(var)))
    return ImageNoise(per_voxel_hu=per_voxel, per_3mm_hu=per_voxel * float(np.sqrt(np.prod(sp) / 27.0)),
                      windows=int(var.size))


def noise_warnings(noise: ImageNoise | None) -> tuple[str, ...]:
    """A warning (citing its source) when ``noise`` exceeds ``CHECKED_NOISE_3MM_HU``; else none."""
    if noise is None or noise.per_3mm_hu <= CHECKED_NOISE_3MM_HU:
        return ()
    return (f"{NOISE_SOURCE}: the image is noisy ({noise.per_voxel_hu:.0f} HU per voxel, {noise.per_3mm_hu:.0f} HU "
            f"scaled to a 3 mm voxel, read in soft tissue; as on a low-dose CT): above {CHECKED_NOISE_3MM_HU:.0f} HU "
            "the level names and body outlines were found wrong more often (when wrong, flagged) on a real CT with "
            "noise added; check the names and outlines on the images",)
