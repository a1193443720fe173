"""CQ5 cement-volume guidance for one body: 50-70% fill next to the 5 mL caution, never hiding the conflict."""

from __future__ import annotations

from pvp_plan.levels import Level, Region
from pvp_plan.messages import Notice, Severity
from pvp_plan.plan.types import FillGuidance
from pvp_plan.rules import cement


def fill_guidance(volume_ml: float, *, level: Level, posterior_third_stop_ml: float | None
                  ) -> tuple[FillGuidance, tuple[Notice, ...]]:
    """Fill guidance (mL) for a body of ``volume_ml`` and the notices it raises.

    The 50-70% range (one CQ5 reference) is compared with the 5 mL caution (several CQ5 reports);
    when it exceeds it, CQ5's own procedural advice is quoted. Typical volumes for the region and
    the Molloy 2003 cadaver figures are given as context.
    """
    if volume_ml is None or volume_ml <= 0:
        raise ValueError(f"fill guidance needs a measured body volume > 0 mL, got {volume_ml}")
    region = "thoracic" if level.region is not Region.LUMBAR else "lumbar"
    low = cement.FILL_FRACTION.low * volume_ml
    high = cement.FILL_FRACTION.high * volume_ml
    caution = cement.CAUTION_VOLUME_ML.value
    exceeds = high > caution
    g = FillGuidance(
        low_ml=low, high_ml=high, exceeds_5ml_caution=exceeds, caution_ml=caution,
        usual_low_ml=cement.USUAL_VOLUME_ML.low, usual_high_ml=cement.USUAL_VOLUME_ML.high,
        typical_myeloma_ml=cement.TYPICAL_MYELOMA_ML[region].value,
        typical_osteoporotic_ml=cement.TYPICAL_OSTEOPOROTIC_ML[region].value, region=region,
        posterior_third_stop_ml=posterior_third_stop_ml,
        context_strength_ml=cement.MOLLOY_STRENGTH_FILL.value * volume_ml,
        context_stiffness_ml=cement.MOLLOY_STIFFNESS_FILL.value * volume_ml,
    )
    notices = []
    if exceeds:
        notices.append(Notice(
            code="fill_exceeds_5ml",
            message=(f"CQ5: fill guidance {low:.1f}-{high:.1f} mL (50-70% of the {volume_ml:.1f} mL body, one "
                     f"reference) exceeds the {caution:g} mL caution several reports advise (usually "
                     f"{cement.USUAL_VOLUME_ML.low:g}-{cement.USUAL_VOLUME_ML.high:g} mL). {cement.CQ5_PROCEDURE_ADVICE}."),
            source=cement.CQ5, severity=Severity.CAUTION))
    if posterior_third_stop_ml is not None:
        notices.append(Notice(
            code="posterior_third_stop",
            message=(f"CQ5: the body anterior to its posterior third holds about {posterior_third_stop_ml:.1f} mL; "
                     "inject from the anterior body and stop when cement reaches the posterior third."),
            source=cement.CQ5))
    notices.append(Notice(
        code="typical_volume",
        message=(f"Typical {region} volumes: about {g.typical_myeloma_ml:g} mL in myeloma, "
                 f"{g.typical_osteoporotic_ml:g} mL for osteoporotic fractures."),
        source=f"{cement.MYELOMA_STUDY}; {cement.CQ5}"))
    notices.append(Notice(
        code="biomechanics_context",
        message=(f"Context, not guideline (Molloy 2003, cadaver): about 16% fill ({g.context_strength_ml:.1f} mL here) "
                 f"restored strength and about 30% ({g.context_stiffness_ml:.1f} mL) stiffness."),
        source=cement.MOLLOY_2003))
    return g, tuple(notices)
