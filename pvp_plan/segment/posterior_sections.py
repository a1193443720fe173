"""The posterior half of each body section, redrawn from the level's median section (where the pedicles join).

Slice by slice the segmenter cannot tell where a body ends and its pedicle begins: the in-plane cut that
detaches the pedicle roots (:func:`pvp_plan.segment.body_mask.detach_pedicle_roots`) leaves a stub of
pedicle on one slice and bites a notch into the posterolateral corner on the next, and the basivertebral
foramen and a tumour through the posterior wall leave a bay in the wall. A body's posterior and lateral walls
run nearly straight along its own axis (the waist is anterior), so the level's median section, taken along
that axis, shows where they stand. On each whole section (at least ``_WHOLE_FRACTION`` of the level's largest:
not the end slices through an endplate), the posterior half is redrawn to it: voxels more than
``ColumnOptions.posterior_section_tolerance_mm`` outside it are dropped, voxels as far inside it are added.

The axis is followed by the centroid of each section's anterior 60 % (no pedicle there), a robust line
(Theil-Sen) through the centroids against the slice index. Arrays (z, y, x) on the CT grid; +y is posterior.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.stats import theilslopes

from pvp_plan.segment.body_mask import grown_box, segment_boxes
from pvp_plan.segment.column_options import ColumnOptions

#: A section at least this fraction of the level's largest is whole (the end slices through an endplate are not).
_WHOLE_FRACTION = 0.7
#: The anterior share of a section's depth that follows the body's axis (the pedicles join behind it).
_ANTERIOR_SHARE = 0.6
#: In-plane margin (mm) around a level's box: room for the tilt's shift and for the sections to grow.
_MARGIN_MM = 15.0


def redraw_posterior_sections(labels: np.ndarray, spacing_mm, options: ColumnOptions) -> np.ndarray:
    """Redraw the posterior half of every whole section of every level to the level's median section.

    ``labels``: segment index per voxel (-1 = background), ``spacing_mm`` (z, y, x) of its grid; changed in
    place and returned. A voxel of another level is never taken. Off when
    ``options.posterior_section_tolerance_mm`` is 0.
    """
    tol = options.posterior_section_tolerance_mm
    if tol <= 0:
        return labels
    sp = np.asarray(spacing_mm, float)
    margin = (0, int(np.ceil(_MARGIN_MM / sp[1])), int(np.ceil(_MARGIN_MM / sp[2])))
    for k, box in enumerate(segment_boxes(labels)):
        if box is None:
            continue
        region = labels[grown_box(box, margin, labels.shape)]
        _redraw_level(region, k, sp, tol)
    return labels


def _redraw_level(region: np.ndarray, k: int, sp: np.ndarray, tol_mm: float) -> None:
    """Redraw level ``k``'s whole sections in ``region`` (a view of the label map around it)."""
    body = region == k
    area = body.sum(axis=(1, 2))
    whole = np.flatnonzero(area >= _WHOLE_FRACTION * area.max())
    if len(whole) < 3:
        return
    shifts = _axis_shifts(body, whole)
    median = ndimage.binary_fill_holes(
        np.mean([_shifted(body[z], -shifts[i]) for i, z in enumerate(whole)], axis=0) >= 0.5)
    rows = np.flatnonzero(median.any(axis=1))
    if not rows.size:
        return
    back = np.zeros_like(median)
    back[int(np.ceil((rows[0] + rows[-1]) / 2)):] = True  # the posterior half, behind the median section's middle
    outside = ndimage.distance_transform_edt(~median, sampling=sp[1:]) > tol_mm
    inside = ndimage.distance_transform_edt(median, sampling=sp[1:]) > tol_mm
    drop, take = back & outside, back & inside
    for i, z in enumerate(whole):
        section = region[z]
        section[_shifted(drop, shifts[i]) & (section == k)] = -1
        section[_shifted(take, shifts[i]) & (section < 0)] = k


def _axis_shifts(body: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """In-plane shift (voxels, (y, x)) of each whole section from the level's middle along the body's axis."""
    centroids = []
    for z in whole:
        rows = np.flatnonzero(body[z].any(axis=1))
        front = body[z].copy()
        front[int(rows[0] + _ANTERIOR_SHARE * (rows[-1] - rows[0])):] = False
        centroids.append(ndimage.center_of_mass(front))
    centroids = np.asarray(centroids)
    z = whole.astype(float)
    slope = np.array([theilslopes(centroids[:, a], z)[0] for a in (0, 1)])
    return np.rint(np.outer(z - np.median(z), slope)).astype(int)


def _shifted(mask: np.ndarray, shift) -> np.ndarray:
    """``mask`` (2-D) moved by ``shift`` voxels (y, x); what moves in from outside is False."""
    out = np.zeros_like(mask)
    (dy, dx), (ny, nx) = shift, mask.shape
    if abs(dy) >= ny or abs(dx) >= nx:
        return out
    out[max(dy, 0):ny + min(dy, 0), max(dx, 0):nx + min(dx, 0)] = \
        mask[max(-dy, 0):ny + min(-dy, 0), max(-dx, 0):nx + min(-dx, 0)]
    return out
