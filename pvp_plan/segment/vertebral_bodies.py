"""``segment_vertebral_bodies``: find, segment and name every vertebral body in view (classical, CPU).

Pipeline (each step in its own module):

1. :mod:`~pvp_plan.segment.working_grid` — block-average to ~1.5 mm and smooth lightly.
2. :mod:`~pvp_plan.segment.canal` — follow the spinal canal and the bodies' posterior wall.
3. :mod:`~pvp_plan.segment.discs` — discs from endplate pairs and narrow HU valleys along the canal,
   chained with a vertebral-pitch prior, refitted as oblique planes.
4. :mod:`~pvp_plan.segment.body_mask` — body bone and marrow in front of the canal, vessels split off
   along the cortex, holes (lytic lesions, gas) filled, one segment per disc interval, halo peeled.
5. :mod:`~pvp_plan.segment.naming` — the sacrum below L5 and the lowest rib-bearing vertebra (T12)
   name the levels, cross-checked; transitional anatomy is warned about; else a low-confidence guess.
6. The boundary is redrawn at full CT resolution; :mod:`~pvp_plan.segment.end_slices` moves each level's end
   slices to its endplates (a partial-volume fit along z); lesions open through the cortex are added back;
   :mod:`~pvp_plan.segment.posterior_sections` redraws the posterior corners of each whole section to the
   level's median section (pedicle stubs and root notches); the labels are written in VerSe numbering.
7. :mod:`~pvp_plan.segment.implausible_levels` — a body too tall to be one level, two bodies too close to be two
   levels (not planned), or two bodies too far apart to be neighbours (a level lost) is reported: the names may be
   one level off.
8. :mod:`~pvp_plan.segment.image_noise` — a noisier image than the segmentation was checked at (a low-dose CT) is
   reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from pvp_plan import __version__
from pvp_plan.errors import SegmentationError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.segment import body_mask, end_slices, implausible_levels, naming
from pvp_plan.segment.canal import core_region, track_canal
from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.discs import disc_planes, find_disc_slices
from pvp_plan.segment.image_noise import image_noise, noise_warnings
from pvp_plan.segment.posterior_sections import REACH_MM, redraw_posterior_sections
from pvp_plan.segment.types import Segmentation
from pvp_plan.segment.working_grid import in_plane_box_on_ct_grid, make_working_grid, to_full_grid

logger = logging.getLogger(__name__)

METHOD = f"pvp-plan spine-column {__version__}"
#: Segmentation confidence of a body bounded by a detected disc on both sides, and of one that is not.
CONFIDENCE_BOUNDED = 0.9
CONFIDENCE_OPEN_END = 0.6


def _check_coverage(ct: CTVolume, options: ColumnOptions) -> None:
    coverage = ct.shape[0] * ct.spacing_mm[0]
    if ct.shape[0] < 4 or coverage < options.min_coverage_mm:
        raise SegmentationError(
            f"{ct.series.series_description or 'this CT'} covers only {coverage:.0f} mm cranio-caudally "
            f"({ct.shape[0]} slices); a vertebral body needs at least {options.min_coverage_mm:.0f} mm: load the "
            "full series, not a slab")


def _thresholds(hu: np.ndarray, core: np.ndarray, disc_slices, trabecular_hu: float, endplate_hu: float,
                options: ColumnOptions) -> tuple[float, float]:
    """Body threshold (mid-way trabecular bone / soft tissue) and disc ceiling (mid-way disc / bone)."""
    t_body = float(np.clip((trabecular_hu + options.soft_tissue_hu) / 2.0, 60.0, 120.0))
    disc_vals = np.concatenate([hu[z][core[z]] for z in disc_slices])
    disc_hu = float(np.median(disc_vals)) if disc_vals.size else 80.0
    return t_body, max((disc_hu + trabecular_hu) / 2.0, (disc_hu + endplate_hu) / 2.0)


def segment_vertebral_bodies(
    ct: CTVolume,
    *,
    anchor: str | None = None,
    progress: Callable[[str, float], None] | None = None,
    options: ColumnOptions | None = None,
) -> Segmentation:
    """Find, segment and name every vertebral body in view.

    Parameters
    ----------
    ct : CTVolume
        The CT (HU, LPS-aligned grid, any voxel size from ~0.5 to 3 mm).
    anchor : str, optional
        User naming override (``"L3"``, ``"L3:2"``, ``"L3:z=123.4"``; see :func:`naming.parse_anchor`).
    progress : callable, optional
        Called as ``progress(step, fraction)``.
    options : ColumnOptions, optional
        Parameters in physical units.

    Returns
    -------
    Segmentation
        VerSe-numbered body labels on ``ct``'s grid; per body the level confidence, the segmentation
        confidence and whether it is cut by the field of view; warnings citing their source.

    Raises
    ------
    SegmentationError
        No spine in view (soft tissue only, head CT), a slab too thin for a body, or no disc found.
    """
    opts = options or ColumnOptions()
    report = progress or (lambda step, fraction: None)
    _check_coverage(ct, opts)
    report("working grid", 0.05)
    grid = make_working_grid(ct.hu, ct.spacing_mm, target_mm=opts.work_spacing_mm, smooth_mm=opts.smooth_mm)
    hu, sp = grid.hu, grid.spacing_mm
    report("spinal canal", 0.15)
    track = track_canal(hu, sp, opts)
    core = core_region(hu.shape, sp, track)
    report("intervertebral discs", 0.35)
    disc_slices, profile = find_disc_slices(hu, sp, core, track, opts)
    if not disc_slices:
        raise SegmentationError("no intervertebral disc found along the spinal canal: cannot separate levels "
                                "(is a whole vertebra in view?)")
    t_body, disc_max_hu = _thresholds(hu, core, disc_slices, profile.trabecular_hu, profile.endplate_hu, opts)
    planes = disc_planes(disc_slices, hu, sp, track, opts)
    report("vertebral bodies", 0.5)
    mask, roots = body_mask.column_mask(hu, sp, track, core, t_body, opts)
    seg = body_mask.tidy_segments(body_mask.assign_levels(mask, sp, planes, hu, disc_max_hu, opts), core)
    if not (seg >= 0).any():
        raise SegmentationError("no vertebral body found in front of the spinal canal")
    # the edge rule is local (fraction of the way to the cortical ridge nearby); its floor is the body threshold
    # (here and on the CT grid), so trabecular bone laid bare by a lytic defect or a fracture is not peeled as if
    # it were blurred cortex
    peeled = body_mask.peel_halo(seg, hu, t_body, opts.soft_tissue_hu, opts.edge_fraction)
    seg = body_mask.tidy_segments(peeled, core)
    report("level names", 0.7)
    slices = body_mask.segment_slices(seg)
    sacral = naming.sacral_segments(hu, sp, seg, slices, opts.sacrum_width_mm, attached=roots,
                                    lowest_cut=bool(slices) and slices[min(slices)][0] <= track.z_range[0])
    bodies = [k for k in sorted(slices) if k not in sacral]
    if not bodies:
        raise SegmentationError("only the sacrum was found; no lumbar or thoracic body in view")
    ribs = naming.rib_bearing_segments(hu, sp, slices, track, exclude=set(sacral))
    unseen = naming.rib_view_cut(hu.shape, sp, {k: slices[k] for k in bodies}, track)
    rib_index, passed_over = naming.lowest_rib_index(bodies, ribs, unseen)
    named = naming.name_from_anchors(sacrum_below=bool(sacral), lowest_rib_index=rib_index,
                                     ribs_may_be_unseen=bool(unseen & set(bodies[:rib_index or 0])),
                                     passed_over_rib_index=passed_over)
    open_ended = _open_ended(slices, bodies, n_planes=len(planes), z_range=track.z_range)
    report("full-resolution boundary", 0.8)
    # the full-resolution steps read at most end_noise_margin_mm (noise beside the column) or REACH_MM (the
    # posterior redraw) around the bodies, which grow by at most one working voxel: they run on that box only
    margin_mm = max(opts.end_noise_margin_mm, REACH_MM)
    boxes = in_plane_box_on_ct_grid(seg, grid.factors, ct.shape, margin=int(np.ceil(margin_mm / min(sp[1:]))) + 2)
    if boxes is None:
        raise SegmentationError("no vertebral body left in front of the spinal canal after trimming its edges")
    work_box, ct_box = boxes
    hu_box = ct.hu[ct_box]
    full = to_full_grid(seg[work_box], grid.factors, hu_box.shape, fill=-1)
    if grid.factors != (1, 1, 1):
        full = body_mask.refine_on_ct_grid(full, hu_box, ct.spacing_mm, grid.factors, t_body, opts.soft_tissue_hu,
                                           opts.edge_ridge_mm, opts.edge_fraction)
    full = end_slices.refit_end_slices(full, hu_box, ct.spacing_mm, opts,
                                       slice_thickness_mm=ct.series.slice_thickness_mm)
    full = body_mask.fill_cortical_defects(full, hu_box, ct.spacing_mm, opts)
    full = redraw_posterior_sections(full, hu_box, ct.spacing_mm, opts)
    result = _named(full, ct_box, ct, bodies, open_ended, named)
    result = replace(result, warnings=result.warnings + noise_warnings(image_noise(ct.hu, ct.spacing_mm)))
    if anchor:
        result = _relabelled(result, ct, anchor)
    report("done", 1.0)
    return result


def _open_ended(slices: dict[int, np.ndarray], bodies: list[int], *, n_planes: int,
                z_range: tuple[int, int]) -> set[int]:
    """Bodies without a detected disc on one side that reach the end of the followed canal: maybe cut.

    Segment 0 lies below the lowest disc plane and segment ``n_planes`` above the highest one.
    """
    out = set()
    for k in bodies:
        if 0 < k < n_planes:
            continue
        zs = slices[k]
        if zs.size and ((k == 0 and zs.min() <= z_range[0]) or (k == n_planes and zs.max() >= z_range[1] - 1)):
            out.add(k)
    return out


def _named(segments: np.ndarray, box: tuple[slice, ...], ct: CTVolume, bodies: list[int], open_ended: set[int],
           named: naming.Naming) -> Segmentation:
    """The VerSe-labelled segmentation on ``ct``'s grid from the segment indices found inside ``box`` of it."""
    names = naming.names_upward(len(bodies), named.lowest)
    lut = np.zeros(int(segments.max()) + 2, np.uint8)  # segment k -> VerSe label; index 0 is background (-1)
    for k, level in zip(bodies, names):
        lut[k + 1] = level.label
    labels = np.zeros(ct.shape, np.uint8)
    labels[box] = lut[segments + 1]
    seg = Segmentation.from_label_map(labels, ct, method=METHOD, level_confidence=named.confidence,
                                      warnings=named.warnings)
    label_of = {k: level.label for k, level in zip(bodies, names)}
    open_labels = {label_of[k] for k in open_ended}
    bodies_out = tuple(replace(b, cut_by_fov=b.cut_by_fov or b.label in open_labels,
                               segmentation_confidence=CONFIDENCE_OPEN_END if b.label in open_labels
                               else CONFIDENCE_BOUNDED) for b in seg.bodies)
    return implausible_levels.with_level_checks(replace(seg, bodies=bodies_out))


def _relabelled(seg: Segmentation, ct: CTVolume, anchor: str) -> Segmentation:
    """``seg`` renamed from the user's ``anchor`` (:func:`naming.relabel`), the level checks read again under the new
    names: the names counted across a finding from the anchored body stay uncertain (the anchor vouches only for its
    own side)."""
    return implausible_levels.with_level_checks(naming.relabel(seg, ct, anchor=anchor),
                                                anchored_label=naming.parse_anchor(anchor)[0].label)
