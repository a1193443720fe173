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

    Height loss is the largest of (a) wedge: 1 - anterior / posterior margin height (line fitted across the
    body, :attr:`BodyHeights.anterior_margin_mm`), (b) biconcave: 1 - middle / posterior height, and
    (c) crush: 1 - the mean of the level's three heights over the mean height of its measured neighbours.
    The crush ratio uses means because single heights of a voxel mask are only known to about a voxel.
    """
    a, m, p = heights.as_tuple()
    wedge = biconcave = None
    if p and m is not None:
        biconcave = m / p
    am, pm = heights.anterior_margin_mm, heights.posterior_margin_mm
    if am is not None and pm and pm > 0:
        wedge = am / pm
    elif p and a is not None:
        wedge = a / p
    own = min(r for r in (wedge, biconcave) if r is not None) if (wedge, biconcave) != (None, None) else None
    nb_ratio = None
    used = []
    if neighbours and None not in (a, m, p):
        refs = [float(np.mean(nb.as_tuple())) for nb in neighbours.values() if None not in nb.as_tuple()]
        if refs:
            nb_ratio = float(np.mean((a, m, p))) / float(np.mean(refs))
            used = sorted(neighbours)
    losses = [1.0 - r for r in (own, nb_ratio) if r is not None]
    loss = max(0.0, max(losses)) if losses else None
    grade = genant_grade(loss)
    loss = None if loss is None else float(loss)
    plana = bool(loss is not None and loss >= VERTEBRA_PLANA.value)
    ca = CollapseAssessment(anterior_mm=a, middle_mm=m, posterior_mm=p, own_ratio=own, neighbour_ratio=nb_ratio,
                            wedge_ratio=wedge, biconcave_ratio=biconcave, anterior_margin_mm=am,
                            posterior_margin_mm=pm,
                            height_loss=loss, genant_grade=grade, genant_name=None if grade is None else GRADE_NAMES[grade],
                            vertebra_plana=plana, neighbours=tuple(used))
    notices = []
    margins = ("" if am is None or pm is None else
               f"; fitted margins anterior {am:.1f}, posterior {pm:.1f} mm")
    if grade:
        notices.append(Notice(
            code="collapse_grade",
            message=(f"Genant 1993: {level} height loss {loss:.0%} ({_kind(wedge, biconcave, nb_ratio)}; heights anterior "
                     f"{a:.1f}, middle {m:.1f}, posterior {p:.1f} mm{margins}) = grade {grade} ({GRADE_NAMES[grade]}; 20-25% "
                     "mild, 25-40% moderate, >40% severe). The operator confirms fracture versus normal shape."),
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


def _kind(wedge: float | None, biconcave: float | None, crush: float | None) -> str:
    """Which comparison gave the largest loss: 'anterior wedge', 'middle (biconcave)' or 'crush vs neighbours'."""
    named = {"anterior wedge": wedge, "middle (biconcave)": biconcave, "crush vs neighbours": crush}
    named = {k: v for k, v in named.items() if v is not None}
    return min(named, key=named.get) if named else "not measured"
