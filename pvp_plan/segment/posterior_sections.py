"""The posterolateral corners of each body section, redrawn from the level's median section (where the pedicles join).

Slice by slice the segmenter cannot tell where a body ends and its pedicle begins: the in-plane cut that
detaches the pedicle roots (:func:`pvp_plan.segment.body_mask.detach_pedicle_roots`) leaves a stub of
pedicle on one slice and bites a notch into the posterolateral corner on the next. A body's posterior and lateral walls
run nearly straight along its own axis (the waist is anterior), so the level's median section, taken along
that axis, shows where they stand. On each whole section (at least ``_WHOLE_FRACTION`` of the level's largest:
not the end slices through an endplate), the corners of its posterior half (``_CORNER_FROM``) are redrawn to
it: voxels more than ``ColumnOptions.posterior_section_tolerance_mm`` outside it are dropped and voxels as far
inside it are added, soft tissue only beyond the wall the wall check reads (``_SOFT_FROM``). The wall between
the corners is left as segmented: redrawn across it, a tumour's bay through the wall was half filled and the
breach missed. Where the pedicles are taller than half the body (thin slices), their roots are in most whole
sections and so in the median: its corners are cut at the posterior wall's line first. The fillet between a
rounded corner and its pedicle, in front of that line, stays (on the 1 x 0.6 x 0.6 mm phantom, lumbar volumes
+1 to +3 %).

The axis is followed by the centroid of each section's anterior 60 % (no pedicle there), a robust line
(Theil-Sen) through the centroids against the slice index. Arrays (z, y, x) on the CT grid; +y is posterior.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.stats import theilslopes

from pvp_plan.components import largest_component
from pvp_plan.label_boxes import grown_box
from pvp_plan.segment.body_mask import segment_boxes
from pvp_plan.segment.column_options import ColumnOptions

#: A section at least this fraction of the level's largest is whole (the end slices through an endplate are not).
_WHOLE_FRACTION = 0.7
#: The anterior share of a section's depth that follows the body's axis (the pedicles join behind it).
_ANTERIOR_SHARE = 0.6
#: Only this far from the midline (a fraction of the half-width) is the section redrawn: the pedicle stubs and the
#: notches of the root cut lie at the corners. Between them the wall faces the canal: at 3 mm voxels a wall one
#: voxel off the median is real, and a tumour's bay there must keep the outline the wall check reads.
_CORNER_FROM = 0.5
#: Soft tissue is added only beyond the posterior wall the wall check reads (``measure.wall.LATERAL_FRACTION``):
#: a tumour through the wall must stay a bay of the outline there, while fat at the corners may be closed over.
_SOFT_FROM = 0.70
#: Percentile of the posterior ends of the columns between the corners taken as the posterior wall's line.
_WALL_LINE_PERCENTILE = 75
#: In-plane margin (mm) around a level's box: room for the tilt's shift and for the sections to grow.
REACH_MM = 15.0


def redraw_posterior_sections(labels: np.ndarray, hu: np.ndarray, spacing_mm, options: ColumnOptions) -> np.ndarray:
    """Redraw the posterior corners of every whole section of every level to the level's median section.

    ``labels``: segment index per voxel (-1 = background), ``hu`` and ``spacing_mm`` (z, y, x) of the same
    grid; ``labels`` is changed in place and returned. A voxel of another level is never taken, nor one below
    ``options.defect_max_hu`` (soft tissue) within the wall the wall check reads (:mod:`pvp_plan.measure.wall`).
    Off when ``options.posterior_section_tolerance_mm`` is 0.
    """
    tol = options.posterior_section_tolerance_mm
    if tol <= 0:
        return labels
    sp = np.asarray(spacing_mm, float)
    margin = (0, int(np.ceil(REACH_MM / sp[1])), int(np.ceil(REACH_MM / sp[2])))
    for k, box in enumerate(segment_boxes(labels)):
        if box is None:
            continue
        grown = grown_box(box, margin, labels.shape)
        _redraw_level(labels[grown], hu[grown] >= options.defect_max_hu, k, sp, tol)
    return labels


def _redraw_level(region: np.ndarray, not_soft: np.ndarray, k: int, sp: np.ndarray, tol_mm: float) -> None:
    """Redraw level ``k``'s whole sections in ``region`` (a view of the label map around it); voxels of soft
    tissue (``not_soft`` False) are never added."""
    body = region == k
    area = body.sum(axis=(1, 2))
    whole = np.flatnonzero(area >= _WHOLE_FRACTION * area.max())
    if len(whole) < 3:
        return
    shifts = _axis_shifts(body, whole)
    median = largest_component(ndimage.binary_fill_holes(
        np.mean([_shifted(body[z], -shifts[i]) for i, z in enumerate(whole)], axis=0) >= 0.5))
    rows = np.flatnonzero(median.any(axis=1))
    if not rows.size:
        return
    back = np.zeros_like(median)
    back[int(np.ceil((rows[0] + rows[-1]) / 2)):] = True  # the posterior half, behind the median section's middle
    cols = np.flatnonzero(median.any(axis=0))
    off_centre = np.abs(np.arange(median.shape[1]) - 0.5 * (cols[0] + cols[-1])) / (0.5 * (cols[-1] - cols[0]))
    corner_cols = off_centre > _CORNER_FROM
    _cut_behind_the_wall_line(median, corner_cols)
    outside = ndimage.distance_transform_edt(~median, sampling=sp[1:]) > tol_mm
    inside = ndimage.distance_transform_edt(median, sampling=sp[1:]) > tol_mm
    corners = back & corner_cols[None, :]
    drop, take = corners & outside, corners & inside
    soft_ok = np.broadcast_to((off_centre > _SOFT_FROM)[None, :], median.shape)
    for i, z in enumerate(whole):
        section = region[z]
        section[_shifted(drop, shifts[i]) & (section == k)] = -1
        section[_shifted(take, shifts[i]) & (section < 0) & (not_soft[z] | _shifted(soft_ok, shifts[i]))] = k


def _cut_behind_the_wall_line(median: np.ndarray, corner_cols: np.ndarray) -> None:
    """Drop from the median section (in place) what its corners hold behind the posterior wall's line.

    Where the pedicles are taller than half the body (thin slices), their roots are in most whole sections and
    so in the median: behind the posterior wall's line a corner holds pedicle, not body. The line is the
    ``_WALL_LINE_PERCENTILE`` of the section's posterior end over the columns between the corners: the notch of
    the basivertebral foramen (in front of the line) and the pedicles' medial roots beside the canal (behind it)
    each take a minority of those columns.
    """
    between = median[:, ~corner_cols]
    ends = [np.flatnonzero(c)[-1] for c in between.T if c.any()]
    if not ends:
        return
    median[int(np.percentile(ends, _WALL_LINE_PERCENTILE)) + 1:, corner_cols] = False


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
