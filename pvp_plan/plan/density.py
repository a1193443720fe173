"""Trabecular density class of one body (sclerotic, lytic, mixed, osteoporotic, normal) with its notices."""

from __future__ import annotations

from pvp_plan.measure.density import TrabecularDensity
from pvp_plan.messages import Notice, Severity
from pvp_plan.plan.types import DensityAssessment
from pvp_plan.rules.density import CQ3, PICKHARDT_2013, DensityThresholds

DENSITY_CLASSES = ("sclerotic", "lytic", "mixed", "osteoporotic", "normal")


def classify_density(td: TrabecularDensity, *, thresholds: DensityThresholds, level: str
                     ) -> tuple[DensityAssessment, tuple[Notice, ...]]:
    """Classify trabecular density and say what it means for PVP, quoting the thresholds used.

    sclerotic: one cluster above ``sclerotic_hu`` holds >= ``sclerotic_min_fraction`` of the trabecular region
    (CQ3: PVP not recommended); lytic: one cluster below ``lytic_hu`` holds >= ``lytic_min_fraction`` of the
    lesion-search region (the trabecular region measured from the body's closed outline);
    mixed: both; otherwise osteoporotic when the median is <= ``osteoporosis_hu`` (Pickhardt 2013), else normal.
    """
    t = thresholds
    low_used = t.lytic_hu if td.low_hu_used is None else td.low_hu_used
    sclerotic = td.high_cluster_fraction >= t.sclerotic_min_fraction
    lytic = td.low_cluster_fraction >= t.lytic_min_fraction
    if sclerotic and lytic:
        cls = "mixed"
    elif sclerotic:
        cls = "sclerotic"
    elif lytic:
        cls = "lytic"
    elif td.hu_median <= t.osteoporosis_hu:
        cls = "osteoporotic"
    else:
        cls = "normal"
    note = ""
    if cls in ("osteoporotic", "normal"):
        if td.hu_median <= t.osteoporosis_hu:
            note = f"median {td.hu_median:.0f} HU <= {t.osteoporosis_hu:g} HU: osteoporotic range"
        elif td.hu_median < t.normal_hu:
            note = (f"median {td.hu_median:.0f} HU between {t.osteoporosis_hu:g} and {t.normal_hu:g} HU: "
                    "indeterminate (osteopenia possible)")
        else:
            note = f"median {td.hu_median:.0f} HU >= {t.normal_hu:g} HU: osteoporosis unlikely"
        note += " (thresholds for L1 on abdominal CT; kVp, the scanner and contrast shift HU)"
    location = td.high_cluster_center_zyx if cls in ("sclerotic", "mixed") else (
        td.low_cluster_center_zyx if cls == "lytic" else None)
    da = DensityAssessment(
        density_class=cls, hu_mean=td.hu_mean, hu_median=td.hu_median, hu_p05=td.hu_p05, hu_p95=td.hu_p95,
        hu_std=td.hu_std, lytic_fraction=td.low_fraction, lytic_cluster_fraction=td.low_cluster_fraction,
        sclerotic_fraction=td.high_fraction, sclerotic_cluster_fraction=td.high_cluster_fraction,
        margin_mm=td.margin_mm, thresholds={**t.to_dict(), "lytic_hu_applied": round(low_used, 1)},
        osteoporosis_note=note, location_zyx=location, lytic_cortex_fraction=td.low_cluster_cortex_fraction,
    )
    notices = []
    if cls in ("sclerotic", "mixed"):
        notices.append(Notice(
            code="sclerotic_density",
            message=(f"CQ3: {level} has sclerotic (osteoblastic-type) density: {td.high_cluster_fraction:.0%} of the "
                     f"trabecular bone above {t.sclerotic_hu:g} HU in one cluster. PVP is not recommended for "
                     "osteoblastic metastases (hard to puncture, high injection pressure, sudden leaks); consider "
                     "alternatives. CT density alone does not prove the lesion type."),
            source=CQ3, severity=Severity.WARNING))
    if cls in ("lytic", "mixed"):
        notices.append(Notice(
            code="lytic_density",
            message=(f"pvp-plan measurement: {level} has a soft-tissue-density (lytic-type) region: "
                     f"{td.low_cluster_fraction:.1%} of the trabecular bone (farther than {td.margin_mm:g} mm from the "
                     f"body's outline) below {low_used:.0f} HU in one cluster "
                     f"(median {td.hu_median:.0f} HU)"
                     + (f"; it reaches the body surface ({td.low_cluster_cortex_fraction:.1%} of it): cortical "
                        "destruction, a possible leak route" if td.low_cluster_cortex_fraction > 0 else
                        "; the surrounding cortex looks intact on CT")
                     + ". Check the cortex and the posterior wall before injecting."),
            source="pvp-plan measurement", severity=Severity.CAUTION))
    if cls == "osteoporotic":
        notices.append(Notice(
            code="osteoporotic_density",
            message=f"Pickhardt 2013: {level} {note}.", source=PICKHARDT_2013))
    return da, tuple(notices)
