"""Collapse grade of one body (Genant 1993) from its heights and its neighbours'."""

from __future__ import annotations

import numpy as np

from pvp_plan.measure.heights import BodyHeights
from pvp_plan.messages import Notice, Severity
from pvp_plan.plan.types import CollapseAssessment
from pvp_plan.rules.collapse import GENANT_1993, GRADE_NAMES, VERTEBRA_PLANA, genant_grade


def assess_collapse(heights: BodyHeights, *, level: str, neighbours: dict[str, BodyHeights] | None = None
                    ) -> tuple[CollapseAssessment, tuple[Notice, ...]]:
    """Height ratios, height loss and Genant grade.

    Height loss is the larger of (a) 1 - min(anterior, middle) / posterior (wedge, biconcave) and
    (b) 1 - the smallest ratio of a height to the mean of the same height in the measured neighbours (crush).
    """
    a, m, p = heights.as_tuple()
    own = None
    if p and a is not None and m is not None:
        own = min(a, m) / p
    nb_ratio = None
    used = []
    if neighbours:
        ratios = []
        for idx, h in enumerate((a, m, p)):
            ref = [nb.as_tuple()[idx] for nb in neighbours.values() if nb.as_tuple()[idx]]
            if h is not None and ref:
                ratios.append(h / float(np.mean(ref)))
        if ratios:
            nb_ratio = min(ratios)
            used = sorted(neighbours)
    losses = [1.0 - r for r in (own, nb_ratio) if r is not None]
    loss = max(0.0, max(losses)) if losses else None
    grade = genant_grade(loss)
    plana = loss is not None and loss >= VERTEBRA_PLANA.value
    ca = CollapseAssessment(anterior_mm=a, middle_mm=m, posterior_mm=p, own_ratio=own, neighbour_ratio=nb_ratio,
                            height_loss=loss, genant_grade=grade, genant_name=None if grade is None else GRADE_NAMES[grade],
                            vertebra_plana=plana, neighbours=tuple(used))
    notices = []
    if grade:
        notices.append(Notice(
            code="collapse_grade",
            message=(f"Genant 1993: {level} height loss {loss:.0%} (anterior {a:.1f}, middle {m:.1f}, posterior "
                     f"{p:.1f} mm) = grade {grade} ({GRADE_NAMES[grade]}; 20-25% mild, 25-40% moderate, >40% severe)."),
            source=GENANT_1993, severity=Severity.CAUTION if grade < 3 else Severity.WARNING))
    if plana:
        notices.append(Notice(
            code="vertebra_plana",
            message=(f"{level}: near-complete collapse (vertebra plana, height loss >= {VERTEBRA_PLANA.value:.0%}): "
                     "needle access and cement filling are difficult; the operator judges feasibility."),
            source=VERTEBRA_PLANA.source, severity=Severity.WARNING))
    if loss is None:
        notices.append(Notice(code="heights_not_measured", message=f"{level}: heights could not be measured.",
                              source="pvp-plan measurement", severity=Severity.INFO))
    return ca, tuple(notices)
