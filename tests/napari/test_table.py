"""The plugin's level table text (Qt-free): each side's needle verdict and when the cell is highlighted."""

from __future__ import annotations

from dataclasses import replace

from pvp_plan_napari._table import HEADERS, is_alert, level_row

from pvp_plan.levels import Level
from pvp_plan.needle.planner import morphometry_notices
from pvp_plan.needle.types import NeedlePath, PedicleMeasurement
from pvp_plan.pipeline import PlanOptions, plan_case
from tests.plan.conftest import make_spine


def _path(side: str, safe: bool, width_mm: float) -> NeedlePath:
    return NeedlePath(level="L2", side=side, gauge="11G", pedicle=PedicleMeasurement(side, width_mm, 14.0, None),
                      skin_entry_lps_mm=None, bone_entry_lps_mm=None, target_lps_mm=None,
                      mediolateral_angle_deg=None, craniocaudal_angle_deg=None, skin_to_target_mm=None,
                      bone_entry_to_target_mm=None, min_distance_to_medial_wall_mm=None,
                      min_distance_to_inferior_wall_mm=None, safe=safe,
                      notices=tuple(morphometry_notices(Level.L2, side, width_mm, 14.0)))


def test_needle_column_gives_each_side_s_verdict():
    ct, seg = make_spine()
    lp = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",), plan_needles=False)).level("L2")
    assert "Needle L/R" in HEADERS
    assert level_row(lp)["needles"] == "\u2014" and not is_alert("needles", lp)  # not planned
    both_safe = replace(lp, needle_paths=(_path("left", True, 9.0), _path("right", True, 9.0)))
    assert level_row(both_safe)["needles"] == "ok/ok" and not is_alert("needles", both_safe)
    doubtful = replace(lp, needle_paths=(_path("left", True, 19.0), _path("right", False, 9.0)))
    assert level_row(doubtful)["needles"] == "chk/NO" and is_alert("needles", doubtful)
    one_side = replace(lp, needle_paths=(_path("right", True, 9.0),))
    assert level_row(one_side)["needles"] == "-/ok"


def test_an_uncertain_name_points_to_the_confirm_button():
    from pvp_plan_napari._table import CONFIRM_NAMES_BUTTON, level_tooltip

    ct, seg = make_spine()
    uncertain = replace(seg, bodies=tuple(replace(b, level_confidence=0.4) for b in seg.bodies))
    lp = plan_case(ct, segmentation=uncertain, options=PlanOptions(levels=("L2",), plan_needles=False)).level("L2")
    assert not lp.plannable and CONFIRM_NAMES_BUTTON in level_tooltip(lp)
    sure = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",), plan_needles=False)).level("L2")
    assert CONFIRM_NAMES_BUTTON not in level_tooltip(sure)
