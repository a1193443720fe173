"""Connected parts of a boolean mask, shared by segmentation, measurement and needle planning."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: 26-connectivity in 3-D (8 in 2-D): voxels touching at a corner belong together.
FULLY_CONNECTED_3D = np.ones((3, 3, 3), bool)


def largest_component(mask: np.ndarray, *, structure: np.ndarray | None = None) -> np.ndarray:
    """The largest connected part of ``mask``, as a boolean array of its shape (all False when it is empty).

    Parameters
    ----------
    mask : np.ndarray
        Boolean (or 0/1) array, any dimension; no spacing or frame is involved (voxel adjacency only).
    structure : np.ndarray, optional
        Connectivity, as for :func:`scipy.ndimage.label`; default face-connected (6 in 3-D, 4 in 2-D).
        Ties go to the part labelled first (scan order).
    """
    lab, n = ndimage.label(mask, structure=structure)
    if n <= 1:
        return lab > 0
    return lab == int(np.argmax(np.bincount(lab.ravel())[1:])) + 1
