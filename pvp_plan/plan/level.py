"""Plan one vertebral level: measure the body, apply the rules, collect the notices."""

from __future__ import annotations

import logging
from dataclasses import replace

from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import Level
from pvp_plan.measure.density import trabecular_density
from pvp_plan.measure.frame import BodyFrame, body_frame
from pvp_plan.measure.heights import BodyHeights, body_heights
from pvp_plan.measure.volume import posterior_third_stop_ml, volume_estimate
from pvp_plan.measure.wall import posterior_wall
from pvp_plan.messages import Notice, Severity
from pvp_plan.plan.collapse import assess_collapse
from pvp_plan.plan.density import classify_density
from pvp_plan.plan.fill import fill_guidance
from pvp_plan.plan.session import not_plannable_reason
from pvp_plan.plan.types import LevelPlan
from pvp_plan.plan.wall import assess_wall
from pvp_plan.rules.cement import POSTERIOR_THIRD_FRACTION
from pvp_plan.rules.density import DensityThresholds
from pvp_plan.segment.types import Segmentation

logger = logging.getLogger(__name__)

#: Margin (mm) kept around a body when cropping (the wall is read a few mm behind the body).
CROP_MARGIN_MM = 12.0


def _shift(loc: tuple[float, float, float] | None, box: tuple[slice, ...]) -> tuple[float, float, float] | None:
    return None if loc is None else tuple(float(v + s.start) for v, s in zip(loc, box, strict=True))


def measure_heights(segmentation: Segmentation, level: Level) -> tuple[BodyHeights, BodyFrame] | None:
    """Heights and frame of one body (None when it is cut by the field of view)."""
    body = segmentation.body(level)
    if body.cut_by_fov:
        return None
    box = segmentation.body_box(level, margin_mm=CROP_MARGIN_MM)
    mask = segmentation.labels[box] == body.label
    frame = body_frame(mask, spacing_mm=segmentation.spacing_mm, axis_lps=body.axis_lps)
    return body_heights(mask, spacing_mm=segmentation.spacing_mm, frame=frame), frame


def neighbour_heights(segmentation: Segmentation, level: Level) -> dict[str, BodyHeights]:
    """Heights of the measured, whole bodies directly above and below ``level``."""
    out = {}
    order = [b.level for b in segmentation.bodies]
    i = order.index(level)
    for j in (i - 1, i + 1):
        if 0 <= j < len(order) and abs(order[j].order - level.order) == 1:
            res = measure_heights(segmentation, order[j])
            if res is not None and None not in res[0].as_tuple():
                out[order[j].value] = res[0]
    return out


def assess_level(ct: CTVolume, segmentation: Segmentation, level: Level | str, *, thresholds: DensityThresholds
                 ) -> LevelPlan:
    """Measure one body and apply the rules (no needle planning; see :func:`pvp_plan.pipeline.plan_level`).

    Density is assessed on every body; heights and the posterior wall on every body not cut by the field
    of view; volume and fill guidance only on plannable bodies (otherwise None, with the reason).
    """
    level = Level.parse(str(getattr(level, "value", level)))
    body = segmentation.body(level)
    reason = not_plannable_reason(body, voxel_volume_ml=ct.voxel_volume_ml)
    box = segmentation.body_box(level, margin_mm=CROP_MARGIN_MM)
    mask, hu, sp = segmentation.labels[box] == body.label, ct.hu[box], ct.spacing_mm
    frame = body_frame(mask, spacing_mm=sp, axis_lps=body.axis_lps)
    td = trabecular_density(hu, mask, spacing_mm=sp, margin_mm=thresholds.cortex_margin_mm,
                            low_hu=thresholds.lytic_hu, high_hu=thresholds.sclerotic_hu,
                            noise_sd=thresholds.lytic_noise_sd)
    density, notices = classify_density(td, thresholds=thresholds, level=level.value)
    notices = list(notices)
    collapse = wall = volume = fill = None
    if not body.cut_by_fov:
        collapse, n = assess_collapse(body_heights(mask, spacing_mm=sp, frame=frame), level=level.value,
                                      neighbours=neighbour_heights(segmentation, level))
        notices += n
        wall, n = assess_wall(posterior_wall(hu, mask, spacing_mm=sp, frame=frame), frame=frame, spacing_mm=sp,
                              level=level.value)
        notices += n
    if reason is None:
        volume = volume_estimate(mask, spacing_mm=sp)
        stop = posterior_third_stop_ml(mask, spacing_mm=sp, frame=frame, stop_fraction=POSTERIOR_THIRD_FRACTION.value)
        fill, n = fill_guidance(volume.volume_ml, level=level, posterior_third_stop_ml=stop)
        notices = list(n) + notices
    else:
        notices.append(Notice(code="not_plannable", message=f"{level.value} not plannable: {reason}.",
                              source="pvp-plan measurement", severity=Severity.CAUTION))
    return LevelPlan(
        level=level.value, label=body.label, plannable=reason is None, not_plannable_reason=reason,
        body_volume_ml=None if volume is None else volume.volume_ml,
        volume_low_ml=None if volume is None else volume.low_ml,
        volume_high_ml=None if volume is None else volume.high_ml,
        voxel_size_mm=tuple(float(v) for v in sp), fill=fill, density=_in_full_grid(density, box),
        wall=None if wall is None else _in_full_grid(wall, box), collapse=collapse,
        level_confidence=body.level_confidence, segmentation_confidence=body.segmentation_confidence,
        warnings=tuple(notices),
    )


def _in_full_grid(obj, box: tuple[slice, ...]):
    """``obj`` with its ``location_zyx`` moved from the crop to the full CT grid."""
    return replace(obj, location_zyx=_shift(obj.location_zyx, box))
