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

from pvp_plan.errors import PlanError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import Level, Region
from pvp_plan.messages import Notice, Severity
from pvp_plan.needle.pedicle import SIDE_SIGN, body_frame, find_pedicle, sample_hu
from pvp_plan.needle.types import NeedlePath, PedicleMeasurement
from pvp_plan.rules import needle as R
from pvp_plan.segment.types import Segmentation

logger = logging.getLogger(__name__)
SAFETY = "pvp-plan safety check"
_STEP = 0.5


def _t(p) -> tuple[float, float, float] | None:
    return None if p is None else tuple(float(v) for v in p)


def plan_level_needle_paths(ct: CTVolume, segmentation: Segmentation, level: str | Level, *, gauge: str = "11G",
                            target: str = "anterior_third", bone_hu: float = R.BONE_HU.value
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
    bone_hu : float
        Bone threshold in HU (default ``rules.needle.BONE_HU``).

    Returns
    -------
    (left, right) : tuple of NeedlePath
    """
    if gauge not in R.GAUGE_OD_MM:
        raise PlanError(f"needle gauge {gauge!r} unknown; choose one of {', '.join(R.GAUGE_OD_MM)}")
    if target not in R.TARGET_DEPTH_FRACTION:
        raise PlanError(f"target {target!r} unknown; choose one of {', '.join(R.TARGET_DEPTH_FRACTION)}")
    lv = level if isinstance(level, Level) else Level.parse(str(level))
    try:
        body = segmentation.mask(lv)
    except KeyError as exc:
        raise PlanError(str(exc)) from None
    frame = body_frame(ct, body)
    outline = _body_outline(ct)
    return tuple(_plan_side(ct, body, frame, outline, lv, side, gauge, target, bone_hu) for side in ("left", "right"))


def _body_outline(ct: CTVolume) -> np.ndarray:
    m = ct.hu > R.BODY_OUTLINE_HU.value
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    big = np.argmax(np.bincount(lab.ravel())[1:]) + 1
    m = lab == big
    return np.stack([ndimage.binary_fill_holes(s) for s in m])


def _target_point(ct, frame, target, sign, offset_mm) -> np.ndarray:
    f = R.TARGET_DEPTH_FRACTION[target].value
    y = frame.anterior_wall_y + f * (frame.posterior_wall_y - frame.anterior_wall_y)
    p = ct.index_to_lps(np.array([0.0, y, frame.midline_x]))
    return np.array([p[0] + sign * offset_mm, p[1], frame.centroid_lps_mm[2]])


def _plan_side(ct, body, frame, outline, lv, side, gauge, target, bone_hu) -> NeedlePath:
    sign = SIDE_SIGN[side]
    fit = find_pedicle(ct, body, frame, side, bone_hu=bone_hu, edge_hu=max(bone_hu, R.CORTEX_EDGE_HU.value))
    if fit is None:
        n = Notice("pedicle_not_found", f"{lv.value} {side}: no pedicle found posterior to the body "
                   f"(bone > {bone_hu:.0f} HU lateral to the canal); no path planned", SAFETY, Severity.WARNING)
        return NeedlePath(level=lv.value, side=side, gauge=gauge,
                          pedicle=PedicleMeasurement(side, None, None, None), skin_entry_lps_mm=None,
                          bone_entry_lps_mm=None, target_lps_mm=None, mediolateral_angle_deg=None,
                          craniocaudal_angle_deg=None, skin_to_target_mm=None, bone_entry_to_target_mm=None,
                          min_distance_to_medial_wall_mm=None, min_distance_to_inferior_wall_mm=None, safe=False,
                          notices=(n,))
    notices = list(_gauge_notices(lv, side, fit.width_mm, gauge))
    radius = R.GAUGE_OD_MM[gauge].value / 2
    canal_d = _canal_distance(ct, frame, bone_hu)
    best = None
    for offset in np.arange(0.0, 20.01, 1.0):  # from the midline outward
        tgt = _target_point(ct, frame, target, sign, offset)
        ev = _evaluate(ct, body, outline, canal_d, fit, tgt, radius, bone_hu, lv)
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


def _canal_distance(ct, frame, bone_hu) -> np.ndarray:
    """Distance (mm) to the spinal canal: the non-bone region behind the body's midline, box-limited."""
    sz, sy, sx = ct.spacing_mm
    z0, z1 = frame.z_range
    canal = np.zeros(ct.shape, bool)
    y0 = int(np.ceil(frame.posterior_wall_y)) + 1
    y1 = min(ct.shape[1], y0 + int(30 / sy))
    x0, x1 = max(0, int(frame.midline_x - 20 / sx)), min(ct.shape[2], int(frame.midline_x + 20 / sx) + 1)
    seed_y = y0 + max(1, int(round(3.0 / sy))) - y0
    for z in range(z0, z1 + 1):
        sec = ct.hu[z, y0:y1, x0:x1] <= bone_hu
        lab, _ = ndimage.label(sec)
        k = lab[min(seed_y, sec.shape[0] - 1), int(round(frame.midline_x)) - x0]
        if k:
            comp = lab == k
            if not (comp[:, 0].any() or comp[:, -1].any() or comp[-1].any()):
                canal[z, y0:y1, x0:x1] = comp
    if not canal.any():
        return np.full(ct.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~canal, sampling=ct.spacing_mm).astype(np.float32)


def _evaluate(ct, body, outline, canal_d, fit, tgt, radius, bone_hu, lv) -> dict:
    c = fit.center_lps_mm
    d = tgt - c
    d /= np.linalg.norm(d)
    back = c - np.arange(0, 200, _STEP)[:, None] * d  # isthmus -> skin
    idx = ct.lps_to_index(back)
    inside_grid = np.all((idx >= 0) & (idx <= np.array(ct.shape) - 1), axis=1)
    inside_body = sample_hu(ct, back, outline.astype(np.float32), order=0) > 0.5
    notices, ok = [], True
    exits = np.nonzero(~inside_body | ~inside_grid)[0]
    skin = None
    if len(exits) and inside_grid[exits[0]]:
        skin = back[exits[0] - 1]
    else:
        notices.append(Notice("skin_outside_fov", f"{lv.value} {fit.side}: the path leaves the scanned field before "
                              "the skin; skin entry not measured", SAFETY, Severity.CAUTION))
    n_back = exits[0] if len(exits) else len(back)
    hu_back = sample_hu(ct, back[:n_back])
    bone = hu_back > bone_hu
    # bone run containing the isthmus, merging gaps < 3 mm
    gap, j, last_bone = int(3.0 / _STEP), 0, 0
    while j < len(bone):
        if bone[j]:
            last_bone = j
        elif j - last_bone > gap:
            break
        j += 1
    bone_entry = back[last_bone]
    before = bone[last_bone + gap:]
    if before.sum() * _STEP >= 1.0:
        ok = False
        what = "a rib or another bone" if lv.region == Region.THORACIC else "another bone"
        notices.append(Notice("bone_before_pedicle", f"{lv.value} {fit.side}: the path crosses {what} before the "
                              "pedicle", SAFETY, Severity.WARNING))
    soft = hu_back[last_bone:max(last_bone, len(hu_back) - int(5.0 / _STEP))]  # skip the skin's partial volume
    if (soft < R.LUNG_HU.high).sum() * _STEP >= 3.0:
        ok = False
        notices.append(Notice("lung_crossed", f"{lv.value} {fit.side}: the path crosses lung "
                              f"(< {R.LUNG_HU.high:.0f} HU inside the body outline)", SAFETY, Severity.WARNING))
    depth = float(np.linalg.norm(tgt - bone_entry))
    fwd = bone_entry + np.arange(0, depth + 1e-9, _STEP)[:, None] * d
    cd = sample_hu(ct, fwd, canal_d, order=0)
    cd = cd[np.isfinite(cd)]
    min_canal = float(cd.min()) if len(cd) else None
    if min_canal is not None and min_canal < radius:
        ok = False
        notices.append(Notice("enters_canal", f"{lv.value} {fit.side}: the needle (radius {radius:.2f} mm) comes "
                              f"within {min_canal:.1f} mm of the spinal canal", SAFETY, Severity.WARNING))
    inf = _inferior_wall(ct, fwd, body, fit, bone_hu)
    if inf is not None and inf < radius:
        ok = False
        notices.append(Notice("breaches_inferior_wall", f"{lv.value} {fit.side}: the needle breaches the inferior "
                              f"pedicle wall (nerve root) ({inf:.1f} mm from the axis)", SAFETY, Severity.WARNING))
    ahead = tgt + np.arange(0, radius + R.ANTERIOR_CORTEX_CLEARANCE_MM.value + 1e-9, _STEP)[:, None] * d
    if not (sample_hu(ct, ahead, body.astype(np.float32), order=0) > 0.5).all():
        ok = False
        notices.append(Notice("tip_exits_body", f"{lv.value} {fit.side}: the tip lies within "
                              f"{R.ANTERIOR_CORTEX_CLEARANCE_MM.value:.0f} mm of the body's outer cortex (aorta, vena "
                              "cava and segmental vessels lie beyond)", SAFETY, Severity.WARNING))
    sign = SIDE_SIGN[fit.side]
    fields = dict(skin_entry_lps_mm=_t(skin), bone_entry_lps_mm=_t(bone_entry), target_lps_mm=_t(tgt),
                  **_angles(d, sign),
                  skin_to_target_mm=None if skin is None else round(float(np.linalg.norm(tgt - skin)), 2),
                  bone_entry_to_target_mm=round(depth, 2),
                  min_distance_to_medial_wall_mm=None if min_canal is None else round(min_canal, 2),
                  min_distance_to_inferior_wall_mm=None if inf is None else round(inf, 2),
                  skin_entry_slice_index=None if skin is None else int(round(ct.lps_to_index(skin)[0])))
    return {"ok": ok, "notices": notices, "fields": fields}


def _inferior_wall(ct, fwd, body, fit, bone_hu) -> float | None:
    """Smallest distance from the path axis, inside the pedicle, to the outer surface of its inferior wall."""
    inb = sample_hu(ct, fwd, body.astype(np.float32), order=0) > 0.5
    ped = fwd[: np.argmax(inb)] if inb.any() else fwd
    if len(ped) == 0:
        return None
    steps = np.arange(0, 20.0, 0.25)
    best = None
    for p in ped:
        prof = sample_hu(ct, p - steps[:, None] * fit.cranial_lps) > bone_hu
        if not prof.any():
            continue
        k = int(np.argmax(prof))
        while k + 1 < len(prof) and (prof[k + 1] or (k + 4 < len(prof) and prof[k + 2:k + 5].any())):
            k += 1
        dist = steps[k]
        best = dist if best is None else min(best, dist)
    return None if best is None else float(best)


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
