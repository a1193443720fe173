"""From the canal track and the disc planes to one mask per vertebral level (working grid).

Steps: bone-or-marrow above an adaptive threshold in the column region in front of the canal;
contrast-filled vessels separated along the cortical ridge (watershed between body cores and
vessel cores); holes filled slice by slice (lytic cavities, gas clefts and low-density marrow are
part of the body); an opening detaches pedicle roots and osteophyte bridges; low-HU disc voxels
removed near each disc plane; every voxel assigned to the level between its two disc planes;
finally the partial-volume halo is peeled at the mid-point between soft tissue and cortex.
Arrays (z, y, x) on the working grid unless stated.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from pvp_plan.segment.canal import CanalTrack, column_region
from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.discs import DiscPlane
from pvp_plan.segment.working_grid import ball


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    return np.stack([ndimage.binary_fill_holes(s) for s in mask])


def vessel_mask(hu: np.ndarray, spacing_mm, options: ColumnOptions) -> np.ndarray:
    """Contrast-filled vessels: homogeneous enhanced HU, thick, at least ``vessel_min_length_mm`` tall.

    Voxels enclosed by a cortical ring of body size in their slice are marrow, never vessel.
    """
    lo, hi = options.vessel_hu
    size = [max(3, int(round(3.0 / s)) | 1) for s in spacing_mm]
    mean = ndimage.uniform_filter(hu, size)
    sq = ndimage.uniform_filter(hu * hu, size)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    cand = (hu > lo) & (hu < hi) & (std < 35.0)
    ring = hu > 300.0
    max_px = 2500.0 / (spacing_mm[1] * spacing_mm[2])  # larger enclosures are the thorax (ribs + sternum)
    for z in range(hu.shape[0]):
        holes = ndimage.binary_fill_holes(ring[z]) & ~ring[z]
        if holes.any():
            lab, _ = ndimage.label(holes)
            small = np.bincount(lab.ravel()) <= max_px
            small[0] = False
            cand[z] &= ~small[lab]
    cand = ndimage.binary_opening(cand, ball(5.0, spacing_mm))
    lab, n = ndimage.label(cand)
    if n == 0:
        return cand
    tall = [i + 1 for i, o in enumerate(ndimage.find_objects(lab))
            if o is not None and (o[0].stop - o[0].start) * spacing_mm[0] >= options.vessel_min_length_mm]
    return np.isin(lab, tall)


def column_mask(hu: np.ndarray, spacing_mm, track: CanalTrack, core: np.ndarray, t_body: float,
                options: ColumnOptions) -> np.ndarray:
    """Bone and marrow of the bodies in front of the canal, vessels and posterior elements removed."""
    region = column_region(hu.shape, spacing_mm, track, half_width_mm=options.body_half_width_mm,
                           depth_mm=options.body_depth_mm)
    region[: track.z_range[0]] = False
    region[track.z_range[1]:] = False
    mask = fill_holes_per_slice((hu > t_body) & region)
    vessels = vessel_mask(hu, spacing_mm, options)
    if (vessels & mask).any():
        markers = np.zeros(mask.shape, np.int32)
        markers[ndimage.binary_erosion(vessels, ball(1.5, spacing_mm)) & mask] = 2
        markers[core & mask & (markers == 0)] = 1
        mask &= watershed(hu, markers, mask=mask) == 1
    mask = ndimage.binary_opening(mask, ball(options.opening_mm, spacing_mm))
    lab, _ = ndimage.label(mask)
    keep = np.unique(lab[core & mask])
    return np.isin(lab, keep[keep > 0])


def assign_levels(mask: np.ndarray, spacing_mm, planes: list[DiscPlane], hu: np.ndarray, disc_max_hu: float,
                  options: ColumnOptions) -> np.ndarray:
    """Segment index per voxel (0 = caudal to the lowest disc plane, -1 = background); disc voxels removed."""
    idx = np.argwhere(mask)
    pos = idx * np.asarray(spacing_mm)
    seg = np.zeros(len(idx), np.int16)
    near_disc = np.zeros(len(idx), bool)
    for plane in planes:
        d = plane.signed_distance_mm(pos)
        seg += (d > 0).astype(np.int16)
        near_disc |= np.abs(d) < options.disc_band_mm
    keep = ~(near_disc & (hu[tuple(idx.T)] < disc_max_hu))
    out = np.full(mask.shape, -1, np.int16)
    out[tuple(idx[keep].T)] = seg[keep]
    return out


def tidy_segments(seg: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Each segment: the connected piece lying in front of the canal, holes filled in 3-D and slice by slice.

    The piece kept is the one overlapping the body core (midline, just in front of the posterior wall)
    most, not the largest: a vessel or rib attached to the level's slab can be larger than the body.
    """
    out = np.full(seg.shape, -1, np.int16)
    for k in np.unique(seg):
        if k < 0:
            continue
        m = seg == k
        lab, n = ndimage.label(m)
        if n > 1:
            in_core = np.bincount(lab[core], minlength=n + 1)[1:]
            sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
            best = int(np.argmax(in_core)) if in_core.max() > 0 else int(np.argmax(sizes))
            m = lab == best + 1
        m = fill_holes_per_slice(ndimage.binary_fill_holes(m))
        out[m & (out < 0)] = k
    return out


def peel_halo(seg: np.ndarray, hu: np.ndarray, t_edge: float) -> np.ndarray:
    """Drop boundary voxels below ``t_edge`` (partial-volume halo of soft tissue around the cortex)."""
    body = seg >= 0
    edge = body & ~ndimage.binary_erosion(body)
    out = seg.copy()
    out[edge & (hu < t_edge)] = -1
    return out


def refine_on_ct_grid(labels: np.ndarray, hu: np.ndarray, spacing_mm, factors, t_edge: float) -> np.ndarray:
    """Redraw each level's boundary at full CT resolution within one working voxel of the coarse boundary.

    ``labels`` is the coarse result repeated onto the CT grid (-1 = background); ``hu`` the CT's HU.
    """
    out = np.full(labels.shape, -1, np.int16)
    struct = np.ones(tuple(2 * f + 1 for f in factors), bool)
    objects = ndimage.find_objects(labels + 1)  # object i holds label i + 1, i.e. segment i
    for k, box in enumerate(objects):
        if box is None:
            continue
        box = tuple(slice(max(0, s.start - 2 * f), min(n, s.stop + 2 * f))
                    for s, f, n in zip(box, factors, labels.shape))
        mk = labels[box] == k
        smooth = ndimage.gaussian_filter(hu[box].astype(np.float32), 0.5 / np.asarray(spacing_mm))
        new = fill_holes_per_slice((smooth > t_edge) & ndimage.binary_dilation(mk, struct))
        new = fill_holes_per_slice(new | ndimage.binary_erosion(mk, struct))
        lab, n = ndimage.label(new)
        if n > 1:
            new = lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)
        region = out[box]
        region[new & (region < 0)] = k
    return out


