"""Display text of the level table (Qt-free): one row per :class:`pvp_plan.plan.types.LevelPlan`.

Only formatting lives here: every figure and flag comes from the LevelPlan. "Not measured" (None)
shows as an em dash, never as 0.
"""

from __future__ import annotations

from typing import Any

from pvp_plan.needle.types import VERDICT_LEGEND, verdicts_in_words

NOT_MEASURED = "\u2014"
#: The widget's button that confirms the level names (``PlannerModel.confirm_names``), named in the tooltips.
CONFIRM_NAMES_BUTTON = "Names checked on the images: confirm levels"

#: (key, header, tooltip) of each column, left to right.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("level", "Level", "Vertebral level (VerSe numbering)"),
    ("volume", "Vol mL", "Body volume (mL); \u2014 when not measurable (e.g. cut by the field of view)"),
    ("fill", "Fill 50-70%", "CQ5: 50-70% of the body volume (one cited reference; no fixed upper limit)"),
    ("caution", ">5 mL", "CQ5: several reports advise 5 mL or less; shown when the fill guidance exceeds it"),
    ("posterior", "Stop mL", "CQ5: volume anterior to the posterior-third plane (inject anteriorly, stop there)"),
    ("density", "Density", "Trabecular density class (thresholds in the report)"),
    ("breach", "Wall", "Posterior wall breach flag"),
    ("collapse", "Collapse", "Genant grade from the body heights"),
    ("needles", "Needle L/R", f"Transpedicular path per side: {VERDICT_LEGEND} (the row's tooltip says why)"),
    ("plannable", "Plan", "Plannable: no when cut by the field of view or low confidence"),
)
HEADERS = tuple(c[1] for c in COLUMNS)


def _num(v: float | None, nd: int = 1) -> str:
    return NOT_MEASURED if v is None else f"{v:.{nd}f}"


def level_row(lp: Any) -> dict[str, str]:
    """Display text per column key for one LevelPlan."""
    fill, wall, dens, col = lp.fill, lp.wall, lp.density, lp.collapse
    if col is None or col.genant_grade is None:
        collapse = NOT_MEASURED
    else:
        collapse = "none" if col.genant_grade == 0 else f"G{col.genant_grade} {col.genant_name or ''}".strip()
        if col.vertebra_plana:
            collapse += " (plana)"
    return {
        "level": str(lp.level),
        "volume": _num(lp.body_volume_ml),
        "fill": NOT_MEASURED if fill is None else f"{fill.low_ml:.1f}-{fill.high_ml:.1f}",
        "caution": NOT_MEASURED if fill is None else ("exceeds" if fill.exceeds_5ml_caution else "no"),
        "posterior": NOT_MEASURED if fill is None else _num(fill.posterior_third_stop_ml),
        "density": NOT_MEASURED if dens is None else dens.density_class,
        "breach": NOT_MEASURED if wall is None else ("BREACH" if wall.flag else "intact"),
        "collapse": collapse,
        "needles": verdicts_in_words(getattr(lp, "needle_paths", ())),
        "plannable": "yes" if lp.plannable else "no",
    }


def level_tooltip(lp: Any) -> str:
    """Row tooltip: why a level is not plannable, and its warnings (each with its source)."""
    lines = []
    if not lp.plannable and lp.not_plannable_reason:
        lines.append(f"not plannable: {lp.not_plannable_reason}")
        if lp.not_plannable_reason.startswith("level name uncertain"):
            lines.append(f"in napari: check the names on the images, then press \"{CONFIRM_NAMES_BUTTON}\"")
    if lp.wall is not None and lp.wall.finding:
        lines.append(f"wall: {lp.wall.finding}")
    lines += [str(n) for n in getattr(lp, "warnings", ())]
    return "\n".join(lines)


def is_alert(key: str, lp: Any) -> bool:
    """Cells to highlight: >5 mL caution, wall breach, not plannable, collapse graded, a needle path not safe."""
    if key == "caution":
        return lp.fill is not None and lp.fill.exceeds_5ml_caution
    if key == "breach":
        return lp.wall is not None and lp.wall.flag
    if key == "plannable":
        return not lp.plannable
    if key == "collapse":
        return lp.collapse is not None and (lp.collapse.genant_grade or 0) >= 1
    if key == "needles":
        return any(p.verdict != "safe" for p in getattr(lp, "needle_paths", ()))
    if key == "density":
        return lp.density is not None and lp.density.density_class in ("sclerotic", "lytic", "mixed")
    return False
