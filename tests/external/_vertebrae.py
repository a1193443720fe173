"""Synthetic whole vertebrae (body + ring-shaped arch around a canal + spinous process) with known bodies."""

from __future__ import annotations

import numpy as np

SPACING_MM = (2.0, 1.0, 1.0)  # (z, y, x)
SHAPE = (44, 64, 54)


def synthetic_vertebrae(labels=(22, 21, 20)) -> tuple[np.ndarray, np.ndarray]:
    """Whole-vertebra and body maps (VerSe labels, caudal first) on an LPS grid of :data:`SHAPE`."""
    z, y, x = np.meshgrid(*(np.arange(n) * s for n, s in zip(SHAPE, SPACING_MM, strict=True)), indexing="ij")
    whole = np.zeros(SHAPE, dtype=np.uint8)
    bodies = np.zeros(SHAPE, dtype=np.uint8)
    for k, lab in enumerate(labels):
        z0 = 4 + 26 * k  # mm; bodies 20 mm high, 6 mm discs
        in_body_z = (z >= z0) & (z < z0 + 20)
        body = in_body_z & (((y - 20) / 11) ** 2 + ((x - 27) / 14) ** 2 <= 1)
        r = np.hypot(y - 40, x - 27)
        arch_z = (z >= z0 + 4) & (z < z0 + 16)
        ring = arch_z & (r >= 7) & (r <= 11)  # pedicles + laminae around a 14 mm canal
        spinous = arch_z & (y > 50) & (y < 60) & (np.abs(x - 27) <= 2)
        whole[body | ring | spinous] = lab
        bodies[body] = lab
    return whole, bodies
