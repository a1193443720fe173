"""Transpedicular needle paths for one level (issue 5): :func:`plan_level_needle_paths`.

Angles are measured on the scan planes as read on images: ``mediolateral_angle_deg`` is the angle
of the path's axial projection from the sagittal (AP) line, positive when the tip is more medial than
the entry; ``craniocaudal_angle_deg`` is the elevation from the axial plane, positive when the path
descends (tip caudal to the entry), as in the phantom truth of the pedicle axis.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from pvp_plan.components import largest_component
from pvp_plan.errors import PlanError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.label_boxes import BoxedMask
from pvp_plan.levels import Level, Region
from pvp_plan.measure.profile import longest_run
from pvp_plan.messages import Notice, Severity
from pvp_plan.needle.canal import canal_extent_mm
from pvp_plan.needle.frame import SIDE_SIGN, BodyFrame, LevelBone, body_frame, level_bone, sample_hu
from pvp_plan.needle.isthmus import PedicleFit
from pvp_plan.needle.pedicle import search_pedicle
from pvp_plan.needle.types import NeedlePath, PedicleMeasurement
from pvp_plan.rules import needle as R
from pvp_plan.segment.types import Segmentation

logger = logging.getLogger(__name__)
SAFETY = "pvp-plan safety check"
_STEP = 0.5
_ISTHMUS_HALF_LENGTH_MM = 5.0
_FORAMEN_DEPTH_MM = 20.0  # the pars and facets close the foramen behind within this distance of the pedicle
#: The place check's allowance (voxels along y) for "behind the body's posterior wall": the wall line is the centre
#: of the body's last voxel at the midline and a section's centre is interpolated, each known to about half a voxel.
#: Without it the phantom's true L5 pedicles (1 x 0.6 x 0.6 mm; isthmus beside the body at the wall line, 0.3-0.4 mm
#: in front of it) read "not transpedicular".
_PLACE_TOLERANCE_VOXELS = 1.0


def _t(p) -> tuple[float, float, float] | None:
    return None if p is None else tuple(float(v) for v in p)


def plan_level_needle_paths(ct: CTVolume, segmentation: Segmentation, level: str | Level, *, gauge: str = "11G",
                            target: str = "anterior_third", bone_hu: float | None = None
                            ) -> tuple[NeedlePath, ...]:
    """Plan the left and right transpedicular paths of one level.

    Parameters
    ----------
    ct : CTVolume
    segmentation : Segmentation
        Vertebral bodies (VerSe labels) on ``ct``'s grid.
    level : str or Level
    gauge : {"10G", "11G", "13G"}
    target : {"anterior_third", "anterior_quarter"}
        Tip depth (``pvp_plan.rules.needle.TARGET_DEPTH_FRACTION``, JSIR 2019 CQ5).
    bone_hu : float, optional
        Fixed bone threshold in HU. None (default): adaptive per level, between the local soft tissue and
        the local cortex (:func:`pvp_plan.needle.frame.level_bone`).

    Returns
    -------
    (left, right) : tuple of NeedlePath
    """
    if gauge not in R.GAUGE_OD_MM:
        raise PlanError(f"needle gauge {gauge!r} unknown; choose one of {', '.join(R.GAUGE_OD_MM)}")
    if target not in R.TARGET_DEPTH_FRACTION:
        raise PlanError(f"target {target!r} unknown; choose one of {', '.join(R.TARGET_DEPTH_FRACTION)}")
    lv = level if isinstance(level, Level) else Level.parse(str(level))
    try:  # the body in its box: a full-size mask of a 512 x 512 x 400 grid took ~0.5 s per level to build and scan
        body = BoxedMask.from_labels(segmentation.labels, segmentation.body(lv).label, segmentation.body_box(lv))
    except KeyError as exc:
        raise PlanError(str(exc)) from None
    if not body.any():
        raise PlanError(f"{lv.value}: the body mask is empty; no needle path planned")
    frame = body_frame(ct, body, spine_axis_lps=segmentation.body(lv).axis_lps)
    lb = level_bone(ct, body, frame, bone_hu=bone_hu)
    canal_d = _canal_distance(ct, lb)
    outline = _BodyOutline(ct)
    second = _SecondReading(ct, body, frame, lb)
    return tuple(_plan_side(ct, second, canal_d, frame, outline, lv, side, gauge, target)
                 for side in ("left", "right"))


class _SecondReading:
    """The pedicle of one side, read a second time with partial-volume walls when the first reading fails.

    The first reading (the level's bone, ``lb``) is kept when it finds a pedicle whose section is a bone
    bridge with two walls (:func:`_section_reasons`). Otherwise (no pedicle found, or a single cortical plate)
    the pedicle's coronal ring may read open only where a thin wall falls under the bone threshold at coarse
    voxels, leaving its fatty core out (:func:`pvp_plan.needle.frame._above_cancellous_edge`): the level's bone
    is rebuilt with those walls closing the rings and the pedicle searched again. The second reading is used
    only when it finds a section that is a bone bridge; the path is then checked, with every safety check, on
    the bone in which its pedicle was read. It is not the first choice: with more rings closed, the pedicle's
    sections merge more with the transverse process and the body (abdomen L3 right, 3 mm: no section left).
    Only with the adaptive threshold (a threshold set by the caller is taken as it is).
    """

    def __init__(self, ct: CTVolume, body: BoxedMask, frame: BodyFrame, lb: LevelBone):
        self.ct, self.body, self.frame, self.lb = ct, body, frame, lb
        self._pv: LevelBone | None = None  # built on first need, shared by both sides

    def search(self, side: str) -> tuple[PedicleFit | None, str | None, LevelBone, bool]:
        """(isthmus or None, why none or None, the LevelBone it was read on, whether it is the second reading)."""
        fit, why = search_pedicle(self.ct, self.lb, self.frame, side)
        if (fit is not None and not _section_reasons(fit, self.ct.spacing_mm)[0]) or not self.lb.adaptive:
            return fit, why, self.lb, False
        if self._pv is None:
            self._pv = level_bone(self.ct, self.body, self.frame, partial_volume_walls=True)
        fit2, why2 = search_pedicle(self.ct, self._pv, self.frame, side)
        if fit2 is not None and not _section_reasons(fit2, self.ct.spacing_mm)[0]:
            return fit2, None, self._pv, True
        if fit is None and why2:
            why = f"{why}; read again with partial-volume walls: {why2}"
        return fit, why, self.lb, False


class _BodyOutline:
    """The patient outline (> ``BODY_OUTLINE_HU``, largest region, holes filled), built per axial slice on demand."""

    def __init__(self, ct: CTVolume):
        self.ct, self.slices = ct, {}

    def _slice(self, z: int) -> np.ndarray:
        if z not in self.slices:
            self.slices[z] = ndimage.binary_fill_holes(largest_component(self.ct.hu[z] > R.BODY_OUTLINE_HU.value))
        return self.slices[z]

    def inside(self, pts_lps: np.ndarray) -> np.ndarray:
        idx = np.round(self.ct.lps_to_index(pts_lps)).astype(int)
        ok = np.all((idx >= 0) & (idx < np.array(self.ct.shape)), axis=1)
        out = np.zeros(len(idx), bool)
        for k in np.nonzero(ok)[0]:
            out[k] = self._slice(int(idx[k, 0]))[idx[k, 1], idx[k, 2]]
        return out


def _target_point(ct, frame, target, sign, offset_mm) -> np.ndarray:
    f = R.TARGET_DEPTH_FRACTION[target].value
    y = frame.anterior_wall_y + f * (frame.posterior_wall_y - frame.anterior_wall_y)
    p = ct.index_to_lps(np.array([0.0, y, frame.midline_x]))
    return np.array([p[0] + sign * offset_mm, p[1], frame.centroid_lps_mm[2]])


def _plan_side(ct, reading: _SecondReading, canal_d, frame, outline, lv, side, gauge, target) -> NeedlePath:
    sign = SIDE_SIGN[side]
    fit, why, lb, second = reading.search(side)
    if fit is None:
        n = Notice("pedicle_not_found", f"{lv.value} {side}: no pedicle found posterior to the body "
                   f"({lb.describe_threshold()}, lateral to the canal): {why}; no path planned", SAFETY,
                   Severity.WARNING)
        return NeedlePath(level=lv.value, side=side, gauge=gauge,
                          pedicle=PedicleMeasurement(side, None, None, None), skin_entry_lps_mm=None,
                          bone_entry_lps_mm=None, target_lps_mm=None, mediolateral_angle_deg=None,
                          craniocaudal_angle_deg=None, skin_to_target_mm=None, bone_entry_to_target_mm=None,
                          min_distance_to_medial_wall_mm=None, min_distance_to_inferior_wall_mm=None, safe=False,
                          notices=(n,))
    notices = list(_gauge_notices(lv, side, fit.width_mm, gauge))
    if second:
        notices.append(Notice("pedicle_read_with_partial_volume_walls", f"{lv.value} {side}: the pedicle's ring "
                              "reads closed only with a wall under the bone threshold (partial volume, above "
                              f"{lb.cancellous_edge_hu:.0f} HU); its fatty core is taken as bone: check the "
                              "pedicle on the images", SAFETY, Severity.CAUTION))
    notices += morphometry_notices(lv, side, fit.width_mm, fit.height_mm)
    radius = R.GAUGE_OD_MM[gauge].value / 2
    best = None
    for offset in np.arange(0.0, 20.01, 1.0):  # from the midline outward
        tgt = _target_point(ct, frame, target, sign, offset)
        ev = _evaluate(ct, lb, outline, canal_d, fit, tgt, radius, lv, frame)
        if best is None or (ev["ok"] and not best[1]["ok"]):
            best = (offset, ev)
        if ev["ok"]:
            break
    offset, ev = best
    notices += ev["notices"]
    uni = bool(ev["ok"] and offset == 0.0)
    if uni:
        notices.append(Notice("unipedicular_reaches_midline", f"{lv.value} {side}: one path reaches the midline of "
                              f"the {target.replace('_', ' ')} (unipedicular possible)", SAFETY))
    elif ev["ok"]:
        notices.append(Notice("bipedicular_needed", f"{lv.value} {side}: the midline is not reachable through this "
                              f"pedicle; tip placed {offset:.0f} mm off the midline, plan both sides", SAFETY,
                              Severity.CAUTION))
    safe = bool(ev["ok"]) and fit.width_mm >= R.GAUGE_OD_MM[gauge].value
    if fit.width_mm < R.GAUGE_OD_MM[gauge].value:
        notices.append(Notice("pedicle_narrower_than_needle", f"{lv.value} {side}: isthmus {fit.width_mm:.1f} mm "
                              f"is narrower than the {gauge} needle", SAFETY, Severity.WARNING))
    ped = PedicleMeasurement(side, round(fit.width_mm, 2), round(fit.height_mm, 2), _t(fit.center_lps_mm),
                             axis_lps=_t(fit.axis_lps), **_angles(fit.axis_lps, sign, "axis_"))
    return NeedlePath(level=lv.value, side=side, gauge=gauge, pedicle=ped, safe=safe, notices=tuple(notices),
                      unipedicular_reaches_midline=uni, target_offset_from_midline_mm=float(offset), **ev["fields"])


def _angles(d, sign, prefix="") -> dict:
    d = np.asarray(d, float)
    ml = np.degrees(np.arctan2(abs(d[0]), abs(d[1])))
    ml = ml if d[0] * sign <= 0 else -ml  # positive = converging toward the midline going in
    cc = np.degrees(np.arctan2(-d[2], np.hypot(d[0], d[1])))
    return {f"{prefix}mediolateral_angle_deg": round(float(ml), 2),
            f"{prefix}craniocaudal_angle_deg": round(float(cc), 2)}


def _canal_distance(ct, lb: LevelBone) -> np.ndarray | None:
    """Distance (mm) to the spinal canal on the level's box (:func:`pvp_plan.needle.frame.level_bone`)."""
    if not lb.canal.any():
        return None
    return ndimage.distance_transform_edt(~lb.canal, sampling=ct.spacing_mm).astype(np.float32)


def _evaluate(ct, lb: LevelBone, outline, canal_d, fit, tgt, radius, lv, frame) -> dict:
    c = fit.center_lps_mm
    d = tgt - c
    d /= np.linalg.norm(d)
    back = c - np.arange(0, 200, _STEP)[:, None] * d  # isthmus -> skin
    idx = ct.lps_to_index(back)
    inside_grid = np.all((idx >= 0) & (idx <= np.array(ct.shape) - 1), axis=1)
    inside_body = outline.inside(back)
    notices, ok = [], True
    exits = np.nonzero(~inside_body | ~inside_grid)[0]
    skin = None
    if len(exits) and inside_grid[exits[0]]:
        skin = back[max(exits[0] - 1, 0)]
    else:
        notices.append(Notice("skin_outside_fov", f"{lv.value} {fit.side}: the path leaves the scanned field before "
                              "the skin; skin entry not measured", SAFETY, Severity.CAUTION))
    n_back = exits[0] if len(exits) else len(back)
    solid = lb.sample(ct, back[:n_back], lb.filled | lb.body) > 0.5
    # the filled bone run containing the isthmus, merging gaps < 3 mm (facet joints at 3 mm voxels)
    gap, j, last_bone = int(3.0 / _STEP), 0, 0
    while j < len(solid):
        if solid[j]:
            last_bone = j
        elif j - last_bone > gap:
            break
        j += 1
    bone_entry = back[last_bone]
    hu_back = sample_hu(ct, back[:n_back])
    before = hu_back[last_bone + gap:] > lb.bone_hu
    if before.sum() * _STEP >= 1.0:
        ok = False
        what = "a rib or another bone" if lv.region == Region.THORACIC else "another bone"
        notices.append(Notice("bone_before_pedicle", f"{lv.value} {fit.side}: the path crosses {what} before the "
                              f"pedicle ({lb.describe_threshold()})", SAFETY, Severity.WARNING))
    soft = hu_back[last_bone:max(last_bone, len(hu_back) - int(5.0 / _STEP))]  # skip the skin's partial volume
    if (soft < R.LUNG_HU.high).sum() * _STEP >= 3.0:
        ok = False
        notices.append(Notice("lung_crossed", f"{lv.value} {fit.side}: the path crosses lung "
                              f"(< {R.LUNG_HU.high:.0f} HU inside the body outline)", SAFETY, Severity.WARNING))
    depth = float(np.linalg.norm(tgt - bone_entry))
    fwd = bone_entry + np.arange(0, depth + 1e-9, _STEP)[:, None] * d
    min_canal = None
    if canal_d is not None:
        min_canal = float(lb.sample(ct, fwd, canal_d, order=1, cval=float(canal_d.max())).min())
    if min_canal is not None and min_canal < radius:
        ok = False
        notices.append(Notice("enters_canal", f"{lv.value} {fit.side}: the needle (radius {radius:.2f} mm) comes "
                              f"within {min_canal:.1f} mm of the spinal canal", SAFETY, Severity.WARNING))
    gap = _soft_tissue_run_mm(ct, lb, fwd)
    if gap >= R.PATH_SOFT_TISSUE_GAP_MM.value:
        ok = False
        notices.append(Notice("leaves_bone", f"{lv.value} {fit.side}: between the bone entry and the tip the needle "
                              f"crosses {gap:.1f} mm of soft tissue (< {lb.soft_edge_hu:.0f} HU outside the bone): it "
                              "leaves the pedicle or passes between two bones", SAFETY, Severity.WARNING))
    cranial = _path_cranial(d, frame.spine_axis_lps, fit.cranial_lps)
    inf = _wall_clearance_mm(ct, lb, fwd, fit.center_lps_mm, d, -cranial)
    if inf is not None and inf < radius:
        ok = False
        notices.append(Notice("breaches_inferior_wall", f"{lv.value} {fit.side}: the needle breaches the inferior "
                              f"pedicle wall (nerve root) ({inf:.1f} mm from the axis)", SAFETY, Severity.WARNING))
    sup = _wall_clearance_mm(ct, lb, fwd, fit.center_lps_mm, d, cranial)
    if sup is not None and sup < radius:  # not a listed safety check: it makes the path unverified, not unsafe
        notices.append(Notice("breaches_superior_wall", f"{lv.value} {fit.side}: the needle (radius {radius:.2f} mm) "
                              f"crosses the pedicle's superior wall ({sup:.1f} mm from the axis): it leaves the "
                              "pedicle through its roof, toward the foramen above; check the path on the images",
                              SAFETY, Severity.CAUTION))
    ahead = tgt + np.arange(0, radius + R.ANTERIOR_CORTEX_CLEARANCE_MM.value + 1e-9, _STEP)[:, None] * d
    if not (lb.sample(ct, ahead, lb.body, order=0) > 0.5).all():
        ok = False
        notices.append(Notice("tip_exits_body", f"{lv.value} {fit.side}: the tip lies within "
                              f"{R.ANTERIOR_CORTEX_CLEARANCE_MM.value:.0f} mm of the body's outer cortex (aorta, vena "
                              "cava and segmental vessels lie beyond)", SAFETY, Severity.WARNING))
    sign = SIDE_SIGN[fit.side]
    angles = _angles(d, sign)
    tp = _transpedicular_notices(ct, lb, frame, fit, bone_entry, angles["mediolateral_angle_deg"], lv)
    if tp:
        ok = False
        notices += tp
    fields = dict(skin_entry_lps_mm=_t(skin), bone_entry_lps_mm=_t(bone_entry), target_lps_mm=_t(tgt),
                  **angles,
                  skin_to_target_mm=None if skin is None else round(float(np.linalg.norm(tgt - skin)), 2),
                  bone_entry_to_target_mm=round(depth, 2),
                  min_distance_to_medial_wall_mm=None if min_canal is None else round(min_canal, 2),
                  min_distance_to_inferior_wall_mm=None if inf is None else round(inf, 2),
                  min_distance_to_superior_wall_mm=None if sup is None else round(sup, 2),
                  skin_entry_slice_index=None if skin is None else int(round(ct.lps_to_index(skin)[0])))
    return {"ok": ok, "notices": notices, "fields": fields}


def _soft_tissue_run_mm(ct, lb: LevelBone, fwd: np.ndarray) -> float:
    """Longest run (mm) of path samples (``_STEP`` apart) outside the filled bone and the body that read as soft
    tissue (trilinear HU below ``LevelBone.soft_edge_hu``)."""
    if len(fwd) == 0:
        return 0.0
    soft = (sample_hu(ct, fwd) < lb.soft_edge_hu) & ~(lb.sample(ct, fwd, lb.filled | lb.body) > 0.5)
    return longest_run(soft) * _STEP


def _transpedicular_notices(ct, lb: LevelBone, frame, fit, bone_entry, ml_deg: float, lv) -> list[Notice]:
    """Reasons the path is not a transpedicular path (empty when it is); each a ``not_transpedicular`` notice.

    1. Place: the bone entry and the isthmus centre lie lateral to the canal's lateral wall on their slice
       and posterior to the body's posterior wall, to within ``_PLACE_TOLERANCE_VOXELS``
       (:func:`pvp_plan.needle.canal.canal_extent_mm`); a translaminar path enters bone behind the canal, medial
       to its wall.
    2. Section: the isthmus is a bone bridge with two walls: its width and height are at least
       ``PEDICLE_SLIVER_FACTOR`` x the apparent cortex (``PEDICLE_CORTEX_MM``, or the voxel size along
       the measured direction when larger), and width / height lies in ``PEDICLE_WIDTH_TO_HEIGHT``.
    3. Angle: the mediolateral angle lies in ``TRANSPEDICULAR_ML_ANGLE_DEG`` and, at lumbar levels, at
       most ``TRANSPEDICULAR_ANGLE_TOLERANCE_DEG`` below the level's mean transverse pedicle angle
       (``PEDICLE_TRANSVERSE_ANGLE_DEG``, as commonly quoted from Zindrick et al., Spine 1987): a needle much
       more sagittal than the pedicle leaves it through its walls (medially behind the isthmus: lamina, canal).
    """
    why, sources = [], set()
    sp = np.asarray(ct.spacing_mm, float)
    sign = SIDE_SIGN[fit.side]
    o = lb.origin_index
    wall_mm, _ = canal_extent_mm(lb, frame.midline_x - o[2], frame.posterior_wall_y - o[1], sign, sp)
    for name, pt in (("bone entry", bone_entry), ("isthmus centre", fit.center_lps_mm)):
        i = ct.lps_to_index(np.asarray(pt, float))
        lat = (i[2] - frame.midline_x) * sign * sp[2]
        behind = (i[1] - frame.posterior_wall_y) * sp[1]
        wall = float(wall_mm[int(np.clip(round(i[0] - o[0]), 0, len(wall_mm) - 1))])
        if lat < wall or behind < -_PLACE_TOLERANCE_VOXELS * sp[1]:
            why.append(f"the {name} ({lat:.1f} mm lateral of the midline, {behind:.1f} mm behind the body's "
                       f"posterior wall) is not lateral to the canal (wall at {wall:.1f} mm) behind the body")
            sources.add(SAFETY)
    section_why, section_sources = _section_reasons(fit, sp)
    why += section_why
    sources.update(section_sources)
    a = R.TRANSPEDICULAR_ML_ANGLE_DEG
    low, angle_sources = a.low, {a.source}
    if lv.value in R.PEDICLE_TRANSVERSE_ANGLE_DEG:
        low = max(low, R.PEDICLE_TRANSVERSE_ANGLE_DEG[lv.value].value - R.TRANSPEDICULAR_ANGLE_TOLERANCE_DEG.value)
        angle_sources.add(R.PEDICLE_TRANSVERSE_ANGLE_DEG[lv.value].source)
    if not low <= ml_deg <= a.high:  # the angle sources are cited only when the angle is a reason
        why.append(f"mediolateral angle {ml_deg:.1f} deg is outside {low:.1f}-{a.high:.0f} deg for {lv.value}")
        sources.update(angle_sources)
    if not why:
        return []
    return [Notice("not_transpedicular", f"{lv.value} {fit.side}: not a transpedicular path: " + "; ".join(why),
                   "; ".join(sorted(sources)), Severity.WARNING)]


def _section_reasons(fit, spacing_mm) -> tuple[list[str], set[str]]:
    """Why the isthmus section read is not a bone bridge with two walls (empty when it is), with the sources.

    Its width and height are at least ``PEDICLE_SLIVER_FACTOR`` x the apparent cortex (``PEDICLE_CORTEX_MM``,
    or the voxel size along the measured direction when larger; ``spacing_mm`` (z, y, x) in mm), and
    width / height lies in ``PEDICLE_WIDTH_TO_HEIGHT``.
    """
    why, sources = [], set()
    sp = np.asarray(spacing_mm, float)
    voxel = np.linalg.norm(np.stack([fit.lateral_lps, fit.cranial_lps]) * sp[::-1], axis=1)  # voxel along each
    for (name, v), vox in zip((("width", fit.width_mm), ("height", fit.height_mm)), voxel):
        least = R.PEDICLE_SLIVER_FACTOR.value * max(R.PEDICLE_CORTEX_MM.value, float(vox))
        if v < least:
            why.append(f"isthmus {name} {v:.2f} mm is under {R.PEDICLE_SLIVER_FACTOR.value:g} x the apparent "
                       f"cortex ({least:.2f} mm): a single cortical plate, not a pedicle")
            sources.update((R.PEDICLE_CORTEX_MM.source, R.PEDICLE_SLIVER_FACTOR.source))
    ratio = fit.width_mm / fit.height_mm if fit.height_mm > 0 else np.inf
    r = R.PEDICLE_WIDTH_TO_HEIGHT
    if not r.low <= ratio <= r.high:
        why.append(f"isthmus width / height {ratio:.2f} is outside the published {r.low:g}-{r.high:g}")
        sources.add(r.source)
    return why, sources


def _path_cranial(direction_lps: np.ndarray, spine_axis_lps: np.ndarray, fallback_lps: np.ndarray) -> np.ndarray:
    """Unit LPS direction perpendicular to a path (``direction_lps``, unit) toward the head: the spine axis
    (unit, cranial) less its component along the path; ``fallback_lps`` when the path runs along the axis."""
    up = np.asarray(spine_axis_lps, float)
    up = up - (up @ direction_lps) * direction_lps
    n = float(np.linalg.norm(up))
    return up / n if n > 1e-6 else np.asarray(fallback_lps, float)


def _wall_clearance_mm(ct, lb: LevelBone, fwd, centre_lps, direction_lps, outward_lps) -> float | None:
    """Smallest distance (mm) from the path, inside the pedicle, to the outer surface of the pedicle's wall that
    lies along ``outward_lps``: caudal for the inferior wall, cranial for the superior.

    ``fwd``: LPS points (mm) along the path from the bone entry to the tip; ``direction_lps``: the path's unit
    direction; ``outward_lps``: unit, perpendicular to the path (:func:`_path_cranial` or its opposite);
    ``centre_lps``: the isthmus centre (mm). Measured along ``outward_lps``, perpendicular to the needle (not to
    the fitted pedicle axis, which on real CT may lie 20-40 degrees off the path: the needle is what breaches the
    wall), to where the filled bone ends into soft tissue, at each path point inside the filled bone (the body
    counts as bone) within ``_ISTHMUS_HALF_LENGTH_MM`` of the isthmus centre along the path and before the body:
    the stretch under which the exiting nerve root runs (inferior wall). A gap in the filled bone none of whose
    samples reads as soft tissue (< ``LevelBone.soft_edge_hu``: cancellous bone the threshold left out, e.g. at
    the pedicle's base on the body) is crossed, not taken for the wall's surface. A ray that leaves the bone
    into soft tissue open behind (beside the posterior surface where the needle enters, not the foramen:
    :func:`_beside_is_foramen`) has not met the wall and is not counted; None when no ray meets it.
    """
    inb = lb.sample(ct, fwd, lb.body, order=0) > 0.5
    ped = fwd[: np.argmax(inb)] if inb.any() else fwd
    if len(ped):  # the isthmus region, within 5 mm of its centre along the path, where the root runs below
        ped = ped[np.abs((ped - centre_lps) @ direction_lps) <= _ISTHMUS_HALF_LENGTH_MM]
    ped = ped[lb.sample(ct, ped, lb.filled) > 0.5] if len(ped) else ped
    if len(ped) == 0:
        return None
    steps = np.arange(0, 20.0, 0.25)
    pts = (ped[:, None, :] + steps[None, :, None] * outward_lps).reshape(-1, 3)
    inside = (lb.sample(ct, pts, lb.filled | lb.body) > 0.5).reshape(len(ped), len(steps))
    soft = (sample_hu(ct, pts) < lb.soft_edge_hu).reshape(len(ped), len(steps))
    found = []
    for p, i, s in zip(ped, inside, soft, strict=True):
        k = _exit_into_soft_tissue(i, s)
        if k == len(steps) - 1 or _beside_is_foramen(ct, lb, p + steps[k] * outward_lps, direction_lps):
            found.append(float(steps[k]))
    return min(found) if found else None


def _beside_is_foramen(ct, lb: LevelBone, exit_lps, direction_lps) -> bool:
    """Whether the soft tissue where a ray leaves the pedicle (below or above it) is an intervertebral foramen:
    bone (the pars, facets and articular processes that close the foramen behind) lies posterior to it, back along
    the path's direction (``direction_lps``, unit, pointing into the body) within ``_FORAMEN_DEPTH_MM``. Beside the
    posterior surface where the needle enters, the soft tissue opens backwards (the back muscles) and no nerve
    root runs there."""
    back = exit_lps - np.arange(0.0, _FORAMEN_DEPTH_MM, _STEP)[:, None] * direction_lps
    return bool((lb.sample(ct, back, lb.filled) > 0.5).any())


def _exit_into_soft_tissue(inside: np.ndarray, soft: np.ndarray) -> int:
    """Index of the first sample outside the bone on a ray whose run outside the bone holds a soft-tissue
    sample; the last index when there is none."""
    k = 0
    while k < len(inside):
        if inside[k]:
            k += 1
            continue
        end = k
        while end < len(inside) and not inside[end]:
            end += 1
        if soft[k:end].any() or end == len(inside):
            return k
        k = end
    return len(inside) - 1


def morphometry_notices(lv: Level, side: str, width_mm: float, height_mm: float) -> list[Notice]:
    """A ``isthmus_outside_published_range`` caution for each isthmus figure (mm) outside its published range.

    Width against ``PEDICLE_WIDTH_THORACIC_MM`` or ``PEDICLE_WIDTH_LUMBAR_MM`` (by the level's region; no
    width range for cervical levels), height against ``PEDICLE_HEIGHT_MM``. Outside the range the pedicle is
    unusual or the section was misread (a tilted axis widens it, a section at a wall thins it): the operator
    checks it on the images. The path's safety checks are not changed by it, but the path is suspect too: on the
    shared real CT (abdomen L1-L5, chest T12, planned on the reference bodies and on pvp-plan's own), 3 of 8 paths
    called safe with such a figure left the reference vertebra over 3-7 mm, none of the 10 with both figures in
    range (2026-11-22): a safe path with this caution has the verdict ``safe_unverified``
    (:data:`pvp_plan.needle.types.UNVERIFIED_BY`).
    """
    width_rule = {Region.THORACIC: R.PEDICLE_WIDTH_THORACIC_MM, Region.LUMBAR: R.PEDICLE_WIDTH_LUMBAR_MM}.get(lv.region)
    out = []
    for name, value, rule in (("width", width_mm, width_rule), ("height", height_mm, R.PEDICLE_HEIGHT_MM)):
        if rule is None or rule.low <= value <= rule.high:
            continue
        where = "below" if value < rule.low else "above"
        out.append(Notice("isthmus_outside_published_range",
                          f"{lv.value} {side}: measured isthmus {name} {value:.1f} mm is {where} the published "
                          f"{rule.low:g}-{rule.high:g} mm ({rule.name}): an unusual pedicle or a misread section; "
                          "check the pedicle and the path on the images before relying on either", rule.source,
                          Severity.CAUTION))
    return out


def _gauge_notices(lv, side, width, gauge):
    margin = R.BONE_MARGIN_MM.value
    need = R.GAUGE_OD_MM[gauge].value + 2 * margin
    if width >= need:
        return []
    fits = [g for g in R.GAUGES_THIN_TO_THICK if width >= R.GAUGE_OD_MM[g].value + 2 * margin]
    if fits:
        alt = f"consider {fits[-1]}"
    elif lv.region == Region.THORACIC:
        alt = "no gauge fits: consider a parapedicular or costovertebral approach"
    else:
        alt = "no gauge fits: consider another approach"
    return [Notice("pedicle_too_narrow_for_gauge",
                   f"{lv.value} {side}: isthmus {width:.1f} mm leaves less than {margin:.0f} mm of bone each side of "
                   f"the {gauge} needle ({R.GAUGE_OD_MM[gauge].value:.2f} mm); {alt}",
                   f"{R.BONE_MARGIN_MM.source}; {R.GAUGE_OD_MM[gauge].source}", Severity.WARNING)]
