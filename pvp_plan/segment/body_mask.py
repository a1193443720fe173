"""From the canal track and the disc planes to one mask per vertebral level (working grid).

Steps: bone-or-marrow above an adaptive threshold in the column region in front of the canal;
contrast-filled vessels separated along the strongest edges between them (watershed of the gradient
magnitude between body cores and vessel cores); holes filled slice by slice (lytic cavities, gas clefts
and low-density marrow are part of the body); an opening detaches pedicle roots and osteophyte bridges;
low-HU disc voxels removed near each disc plane; every voxel assigned to the level between its two disc planes;
finally the partial-volume halo is peeled at the mid-point between soft tissue and cortex.
Arrays (z, y, x) on the working grid unless stated.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image
from skimage.segmentation import watershed

from pvp_plan.components import largest_component
from pvp_plan.label_boxes import grown_box, occupied_box
from pvp_plan.segment.canal import CanalTrack, column_region
from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.discs import DiscPlane
from pvp_plan.segment.working_grid import IN_SLICE, ball, disk_in_plane, slice_enclosures

#: Erosion (mm) of the vessels to their cores: the watershed's vessel markers, away from the cortical ridge.
_VESSEL_CORE_MM = 1.5
#: Gaussian scale (mm) of the gradient magnitude the body/vessel watershed floods. Flooding raw HU put the split
#: wherever noise left the lowest path: on a contrast chest CT at 1.5 mm with 20 HU of noise added, T12 took in
#: the aorta in front of it (17.3 -> 21.2 mL, 75 % inside the reference vertebra; now 16.7 mL, 99 %).
_WATERSHED_SIGMA_MM = 1.0


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` of each axial slice: background not 4-connected to the slice's edge.

    Same result as filling slice by slice, computed with one in-slice labelling of the background inside the
    mask's bounding box (background outside the box, and on the box's faces, always reaches the edge).
    """
    out = np.array(mask, dtype=bool)
    box = ndimage.find_objects(out.view(np.uint8))
    if not box:
        return out
    lab, hole = slice_enclosures(~out[box[0]])
    out[box[0]] |= hole[lab]
    return out


def fill_holes_in_three_planes(mask: np.ndarray) -> np.ndarray:
    """Holes filled in 3-D, then in every axial, coronal and sagittal plane, then axially again.

    A body whose trabecular bone reads near the body threshold (osteoporosis) can lose whole slices of its
    inside, open to the outside in the axial plane through the basivertebral foramen or a thin cortex
    (the shared chest CT: one to three nearly empty slices in most thoracic bodies). In a sagittal or coronal
    plane such a gap is closed by the body above and below it and by its walls.
    """
    out = fill_holes_per_slice(ndimage.binary_fill_holes(mask))
    out = fill_holes_per_slice(out.transpose(1, 0, 2)).transpose(1, 0, 2)  # coronal planes (y fixed)
    out = fill_holes_per_slice(out.transpose(2, 1, 0)).transpose(2, 1, 0)  # sagittal planes (x fixed)
    return fill_holes_per_slice(out)


def vessel_mask(hu: np.ndarray, spacing_mm, options: ColumnOptions) -> np.ndarray:
    """Contrast-filled vessels: homogeneous enhanced HU, thick, at least ``vessel_min_length_mm`` tall.

    Homogeneous: the local SD (3 mm box) is below ``options.vessel_sd_noise_factor`` x the image noise
    (the median local SD of soft tissue, 0-100 HU), and never below 35 HU; contrast mixes unevenly in
    the aorta (its local SD was 2-3 x the soft-tissue noise on a chest CT). Voxels enclosed by a
    cortical ring of body size in their slice are marrow, never vessel.
    """
    lo, hi = options.vessel_hu
    size = [max(3, int(round(3.0 / s)) | 1) for s in spacing_mm]
    opening = ball(options.vessel_opening_mm, spacing_mm)
    out = np.zeros(hu.shape, bool)
    enhanced = (hu > lo) & (hu < hi)
    enhanced_box = occupied_box(enhanced.view(np.uint8))
    if enhanced_box is None:
        return out
    # the filters and the opening reach only a few voxels past the enhanced ones: work in their bounding box
    reach = [max(a // 2, b // 2) for a, b in zip(size, opening.shape)]
    box = grown_box(enhanced_box, reach, hu.shape)
    sub = hu[box]
    mean = ndimage.uniform_filter(sub, size)
    sq = ndimage.uniform_filter(sub * sub, size)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    soft = (mean > 0.0) & (mean < 100.0)
    noise = float(np.median(std[soft])) if soft.any() else 0.0
    cand = enhanced[box] & (std < max(35.0, options.vessel_sd_noise_factor * noise))
    del mean, sq, std, soft
    ring = hu > 300.0
    max_px = 2500.0 / (spacing_mm[1] * spacing_mm[2])  # larger enclosures are the thorax (ribs + sternum)
    # enclosures: in-slice background components of the ring (whole slices) not reaching the slice's edge
    lab, enclosed = slice_enclosures(~ring)
    small = enclosed & (np.bincount(lab.ravel()) <= max_px)
    cand &= ~small[lab[box]]
    del lab
    cand = ndimage.binary_opening(cand, opening)
    lab, n = ndimage.label(cand)
    if n == 0:
        return out
    tall = [i + 1 for i, o in enumerate(ndimage.find_objects(lab))
            if o is not None and (o[0].stop - o[0].start) * spacing_mm[0] >= options.vessel_min_length_mm]
    out[box] = np.isin(lab, tall)
    return out


def column_mask(hu: np.ndarray, spacing_mm, track: CanalTrack, core: np.ndarray, t_body: float,
                options: ColumnOptions) -> tuple[np.ndarray, np.ndarray]:
    """Bone and marrow of the bodies in front of the canal, vessels and posterior elements removed.

    Returns the body column and the pedicle roots (or sacral alae) cut off its sections by
    :func:`detach_pedicle_roots`: the bodies' volumes leave them out, but the sacrum test still
    needs to know what bone the sections were attached to.
    """
    region, vessels = column_region_and_vessels(hu, spacing_mm, track, core, options)
    body, roots = np.zeros(hu.shape, bool), np.zeros(hu.shape, bool)
    region_box = occupied_box(region.view(np.uint8))
    if region_box is None:
        return body, roots
    # Every step below stays inside the region (openings, watershed and labelling never leave the mask), so it
    # runs in the region's box, grown by the reach of the one erosion that reads beyond it (the vessels'): the
    # same result as on the whole grid (column_mask 4.6 -> 1.1 s on a 512 x 512 x 400 CT).
    reach = [n // 2 for n in ball(_VESSEL_CORE_MM, spacing_mm).shape]
    box = grown_box(region_box, reach, hu.shape)
    body[box], roots[box] = column_in_box(hu[box], spacing_mm, region[box], vessels[box], core[box], t_body, options)
    return body, roots


def column_region_and_vessels(hu: np.ndarray, spacing_mm, track: CanalTrack, core: np.ndarray,
                              options: ColumnOptions) -> tuple[np.ndarray, np.ndarray]:
    """Where :func:`column_mask` looks for the bodies (in front of the canal, along the followed stretch) and
    the contrast-filled vessels to cut off them (those reaching into the bodies' core are bone)."""
    region = column_region(hu.shape, spacing_mm, track, half_width_mm=options.body_half_width_mm,
                           depth_mm=options.body_depth_mm)
    region[: track.z_range[0]] = False
    region[track.z_range[1]:] = False
    vessels = vessel_mask(hu, spacing_mm, options)
    lab, _ = ndimage.label(vessels)
    vessels &= ~np.isin(lab, np.unique(lab[core & vessels]))
    return region, vessels


def column_in_box(hu: np.ndarray, spacing_mm, region: np.ndarray, vessels: np.ndarray, core: np.ndarray,
                  t_body: float, options: ColumnOptions) -> tuple[np.ndarray, np.ndarray]:
    """:func:`column_mask`'s body column and pedicle roots from its inputs (:func:`column_region_and_vessels`),
    on the whole working grid or on any box of it that holds the region and the structuring elements' reach."""
    mask = fill_holes_per_slice((hu > t_body) & region)
    if (vessels & mask).any():
        markers = np.zeros(mask.shape, np.int32)
        markers[ndimage.binary_erosion(vessels, ball(_VESSEL_CORE_MM, spacing_mm)) & mask] = 2
        markers[core & mask & (markers == 0)] = 1
        # flooded over the edges (gradient magnitude at _WATERSHED_SIGMA_MM), so the split follows the fat plane
        # between body and vessel; over raw HU a noise speckle in that plane let the core's flood through
        edges = ndimage.gaussian_gradient_magnitude(hu, _WATERSHED_SIGMA_MM / np.asarray(spacing_mm, float))
        mask &= watershed(edges, markers, mask=mask) == 1
    opened = ndimage.binary_opening(mask, ball(options.opening_mm, spacing_mm))
    sections = detach_pedicle_roots(opened, spacing_mm, options)
    lab, _ = ndimage.label(sections)
    keep = np.unique(lab[core & sections])
    body = restore_endplate_caps(np.isin(lab, keep[keep > 0]), sections, opened)
    return body, opened & ~body


def restore_endplate_caps(body: np.ndarray, sections: np.ndarray, opened: np.ndarray) -> np.ndarray:
    """Give back the thin end slices of tilted bodies that the in-plane pedicle cut deleted whole.

    A slice through a tilted endplate holds only a band of the body, narrower than the pedicle-cut
    disk, so :func:`detach_pedicle_roots` removes all of it; the trabecular slice under it is then
    left without its cortex and peeled too (a lumbar body lost up to 10 % at its posterior endplate).
    An in-slice piece of ``opened`` of which nothing survived the cut (nothing in ``sections``) is
    given back where it lies straight above or below ``body`` (propagated along z only, so it never
    spreads sideways). A piece that kept a section of its own (a vessel beside the body, a rib) is
    never re-attached.
    """
    lab, _ = ndimage.label(opened, structure=IN_SLICE)
    survived = np.unique(lab[sections])
    cut_whole = opened & ~np.isin(lab, survived)
    along_z = np.zeros((3, 3, 3), bool)
    along_z[:, 1, 1] = True
    return ndimage.binary_propagation(body, structure=along_z, mask=body | cut_whole)


def detach_pedicle_roots(mask: np.ndarray, spacing_mm, options: ColumnOptions) -> np.ndarray:
    """Cut the pedicle roots and other narrow bony bridges off the body section, slice by slice.

    An in-plane opening with a disk wider than a pedicle keeps the body's round section; the voxels
    within :func:`regrow_radius_mm` of it are given back so the body's own cortex is not shaved.
    """
    if options.pedicle_root_mm <= 0:
        return mask
    section = ndimage.binary_opening(mask, disk_in_plane(options.pedicle_root_mm, spacing_mm))
    return mask & ndimage.binary_dilation(section, disk_in_plane(regrow_radius_mm(options, spacing_mm), spacing_mm))


def regrow_radius_mm(options: ColumnOptions, spacing_mm) -> float:
    """Radius (mm) of the ring given back around the opened section: ``options.root_regrow_mm``, and never less
    than the coarser in-plane voxel (a disk narrower than the voxel holds only its centre: on the 1.6 mm working
    grid of a 0.8 mm CT, and on a 3 mm CT, the 1.5 mm ring gave back nothing)."""
    return max(options.root_regrow_mm, float(max(spacing_mm[1:])))


def disc_bands_mm(planes: list[DiscPlane], options: ColumnOptions) -> list[float]:
    """Half-thickness (mm) of the band around each disc plane where low-HU voxels count as disc.

    ``options.disc_band_fraction`` of the distance to the nearest neighbouring disc (discs are ~4 mm
    thick between ~20 mm thoracic bodies, ~10 mm between ~30 mm lumbar ones), 2 mm to
    ``options.disc_band_mm``.
    """
    out = []
    for i, plane in enumerate(planes):
        gaps = [abs(float((planes[j].point_mm - plane.point_mm) @ plane.normal))
                for j in (i - 1, i + 1) if 0 <= j < len(planes)]
        band = options.disc_band_fraction * min(gaps) if gaps else options.disc_band_mm
        out.append(float(np.clip(band, 2.0, options.disc_band_mm)))
    return out


def assign_levels(mask: np.ndarray, spacing_mm, planes: list[DiscPlane], hu: np.ndarray, disc_max_hu: float,
                  options: ColumnOptions) -> np.ndarray:
    """Segment index per voxel (0 = caudal to the lowest disc plane, -1 = background); disc voxels removed."""
    idx = np.argwhere(mask)
    pos = idx * np.asarray(spacing_mm)
    seg = np.zeros(len(idx), np.int16)
    near_disc = np.zeros(len(idx), bool)
    for plane, band in zip(planes, disc_bands_mm(planes, options)):
        d = plane.signed_distance_mm(pos)
        seg += (d > 0).astype(np.int16)
        near_disc |= np.abs(d) < band
    keep = ~(near_disc & (hu[tuple(idx.T)] < disc_max_hu))
    out = np.full(mask.shape, -1, np.int16)
    out[tuple(idx[keep].T)] = seg[keep]
    return out


def tidy_segments(seg: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Each segment: the connected piece lying in front of the canal, holes filled (:func:`fill_holes_in_three_planes`).

    The piece kept is the one overlapping the body core (midline, just in front of the posterior wall)
    most, not the largest: a vessel or rib attached to the level's slab can be larger than the body.
    """
    out = np.full(seg.shape, -1, np.int16)
    for k, box in enumerate(ndimage.find_objects(seg + 1)):  # object k holds segment k
        if box is None:
            continue
        # within the segment's bounding box: background on the box's faces reaches the outside anyway
        m = seg[box] == k
        lab, n = ndimage.label(m)
        if n > 1:
            in_core = np.bincount(lab[core[box]], minlength=n + 1)[1:]
            sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
            best = int(np.argmax(in_core)) if in_core.max() > 0 else int(np.argmax(sizes))
            m = lab == best + 1
        m = fill_holes_in_three_planes(m)
        region = out[box]
        region[m & (region < 0)] = k
    return out


def segment_slices(seg: np.ndarray) -> dict[int, np.ndarray]:
    """Per segment (``seg`` >= 0), the indices of the axial slices it occupies, ascending."""
    out = {}
    for k, box in enumerate(ndimage.find_objects(seg + 1)):  # object k holds segment k
        if box is not None:
            out[k] = box[0].start + np.flatnonzero((seg[box] == k).any(axis=(1, 2)))
    return out


def cortical_edge_hu(hu: np.ndarray, body: np.ndarray, t_edge: float, soft_tissue_hu: float,
                     size: tuple[int, int, int], fraction: float) -> np.ndarray:
    """HU a boundary voxel must reach to belong to the body: ``fraction`` of the way to its cortical ridge.

    The ridge is the brightest body voxel within the box ``size`` (voxels) around each voxel. The
    blurred cortex is brighter than a global threshold for ~1 mm outside its outer surface (a 1 mm
    shell of ~1300 HU at a 0.6 mm point-spread still reads ~600 HU one voxel out), so the edge is
    measured from soft tissue towards the local ridge (see ``ColumnOptions.edge_fraction``).
    Never below ``t_edge``.
    """
    peak = ndimage.maximum_filter(np.where(body, hu, soft_tissue_hu), size=size)
    return np.maximum(t_edge, soft_tissue_hu + fraction * (peak - soft_tissue_hu))


def peel_halo(seg: np.ndarray, hu: np.ndarray, t_edge: float, soft_tissue_hu: float, fraction: float) -> np.ndarray:
    """Drop boundary voxels below the cortical edge (:func:`cortical_edge_hu`, 3-voxel box).

    Computed in the bodies' bounding box grown by one voxel, which holds every boundary voxel's neighbours.
    """
    out = seg.copy()
    fg_box = foreground_box(seg)
    if fg_box is None:
        return out
    box = grown_box(fg_box, (1, 1, 1), seg.shape)
    body = seg[box] >= 0
    edge = body & ~ndimage.binary_erosion(body)
    region = out[box]
    region[edge & (hu[box] < cortical_edge_hu(hu[box], body, t_edge, soft_tissue_hu, (3, 3, 3), fraction))] = -1
    return out


def foreground_box(labels: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the voxels ``>= 0`` (any segment; -1 is background); None when there are none."""
    return occupied_box(labels, background=-1)


def segment_boxes(labels: np.ndarray) -> list[tuple[slice, ...] | None]:
    """Bounding box of each segment (item ``k`` for segment ``k``; None where it is absent) in ``labels``'
    coordinates; labels ``>= 0`` are segments, -1 background. Searched within :func:`foreground_box` only."""
    fg = foreground_box(labels)
    if fg is None:
        return []
    return [None if box is None else tuple(slice(b.start + f.start, b.stop + f.start) for b, f in zip(box, fg))
            for box in ndimage.find_objects(labels[fg] + 1)]  # object k holds label k + 1, i.e. segment k


def refine_on_ct_grid(labels: np.ndarray, hu: np.ndarray, spacing_mm, factors, t_edge: float,
                      soft_tissue_hu: float, ridge_mm: float, fraction: float) -> np.ndarray:
    """Redraw each level's boundary at full CT resolution within one working voxel of the coarse boundary.

    ``labels`` is the coarse result repeated onto the CT grid (-1 = background); ``hu`` the CT's HU;
    ``factors`` (z, y, x) the CT voxels per working voxel. A voxel is kept where its lightly smoothed HU
    reaches :func:`cortical_edge_hu`, the ridge looked for within ``ridge_mm`` (mm) and the edge ``fraction``
    of the way to it, or where it lies inside the coarse body: in-plane, one working voxel in from its outline;
    along z, every CT slice of the coarse body but the outer ``factors[0] - 1`` of each end voxel. The end
    slices themselves are :mod:`~pvp_plan.segment.end_slices`' to move (it models the endplate): the edge rule
    reads its ridge in 3-D, so on an end slice of cancellous bone under the endplate's slice it took the
    endplate for the ridge and cut the section's middle out (phantom L1 at 3 mm slices, working grid at the CT's
    slices: 316 of the 564 voxels of the end section under the wedge's endplate, Dice 0.923).
    """
    out = np.full(labels.shape, -1, np.int16)
    size = tuple(2 * f + 1 for f in factors)
    inner = (2 * factors[0] - 1,) + size[1:]  # the coarse body's interior, kept whatever the edge rule reads
    ridge = tuple(2 * max(1, int(round(ridge_mm / s))) + 1 for s in spacing_mm)
    for k, box in enumerate(segment_boxes(labels)):
        if box is None:
            continue
        box = grown_box(box, [2 * f for f in factors], labels.shape)
        mk = labels[box] == k
        smooth = ndimage.gaussian_filter(hu[box].astype(np.float32), 0.5 / np.asarray(spacing_mm))
        # binary dilation / erosion by a box of ones (zero border), as separable 1-D max / min filters
        grown = ndimage.maximum_filter(mk, size=size, mode="constant", cval=0)
        edge_hu = cortical_edge_hu(smooth, grown, t_edge, soft_tissue_hu, ridge, fraction)
        new = fill_holes_per_slice((smooth > edge_hu) & grown)
        new = fill_holes_per_slice(new | ndimage.minimum_filter(mk, size=inner, mode="constant", cval=0))
        new = largest_component(new)
        region = out[box]
        region[new & (region < 0)] = k
    return out


def fill_cortical_defects(labels: np.ndarray, hu: np.ndarray, spacing_mm, options: ColumnOptions) -> np.ndarray:
    """Add to each body the soft tissue of a lesion that broke through its cortex (a lytic defect).

    A vertebral body's axial section is convex except at its posterior wall. Where a lytic lesion
    has destroyed the cortex, the lesion (soft-tissue HU) is open to the outside, so hole filling
    leaves a bay in the section. On each slice whose section is whole (its convex hull at least
    ``options.defect_full_section_fraction`` of the level's largest, and at least
    ``options.defect_min_solidity`` of the hull bone: the end slices through an endplate are bands
    or open rims around the disc and are left alone), the voxels of the section's convex hull that
    are unlabelled and below ``options.defect_max_hu`` are grouped in-slice; a group is added when it
    reaches ``options.defect_min_depth_mm`` inside the hull (a shallow dent of the outline is not a
    defect) and lies in front of the section's posterior quarter (the posterior wall is concave).
    ``labels``: segment index per voxel (-1 = background), ``hu`` and ``spacing_mm`` (z, y, x) of the
    same grid; ``labels`` is changed in place and returned.
    """
    sy, sx = float(spacing_mm[1]), float(spacing_mm[2])
    fg_box = foreground_box(labels)
    if fg_box is None:
        return labels
    used, hu = labels[fg_box], hu[fg_box]  # views: the per-level boxes come from a small array
    for k, box in enumerate(ndimage.find_objects(used + 1)):  # object k holds segment k
        if box is None:
            continue
        region = used[box]
        body = region == k
        hulls = [convex_hull_image(body[z]) if body[z].any() else None for z in range(body.shape[0])]
        largest = max(int(h.sum()) for h in hulls if h is not None)
        for z, hull in enumerate(hulls):
            if hull is None or hull.sum() < options.defect_full_section_fraction * largest \
                    or body[z].sum() < options.defect_min_solidity * hull.sum():
                continue
            cand = hull & (region[z] < 0) & (hu[box][z] < options.defect_max_hu)
            if not cand.any():
                continue
            depth = ndimage.distance_transform_edt(np.pad(hull, 1), sampling=(sy, sx))[1:-1, 1:-1]
            lab, n = ndimage.label(cand)
            ys = np.flatnonzero(body[z].any(axis=1))
            posterior_quarter = ys[0] + 0.75 * (ys[-1] - ys[0])  # +y is posterior
            deep = np.asarray(ndimage.maximum(depth, lab, range(1, n + 1))) >= options.defect_min_depth_mm
            front = np.asarray(ndimage.center_of_mass(cand, lab, range(1, n + 1)))[:, 0] < posterior_quarter
            add = np.isin(lab, np.flatnonzero(deep & front) + 1)
            region[z][add] = k
    return labels
