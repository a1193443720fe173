"""Needle paths from pvp_plan.needle are stored per level, written to plan.json and drawn on the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pvp_plan.needle
from pvp_plan.errors import PlanError
from pvp_plan.needle.types import NeedlePath, PedicleMeasurement
from pvp_plan.pipeline import PlanOptions, plan_case, write_case_outputs
from tests.plan.conftest import make_spine


def _fake_paths(ct, segmentation, level, *, gauge, target):
    """Two safe paths; the right one's isthmus width is above the published range (verdict safe_unverified)."""
    from pvp_plan.levels import Level
    from pvp_plan.needle.planner import morphometry_notices

    body = segmentation.body(level)
    c = np.asarray(body.centroid_lps_mm)
    out = []
    for side, sign, width in (("left", 1.0, 8.0), ("right", -1.0, 19.0)):
        entry = c + np.array([sign * 25.0, 60.0, 0.0])
        tip = c + np.array([sign * 3.0, -6.0, 0.0])
        out.append(NeedlePath(level=level, side=side, gauge=gauge,
                              pedicle=PedicleMeasurement(side, width, 14.0, None),
                              skin_entry_lps_mm=tuple(entry), bone_entry_lps_mm=None, target_lps_mm=tuple(tip),
                              mediolateral_angle_deg=20.0, craniocaudal_angle_deg=0.0, skin_to_target_mm=70.0,
                              bone_entry_to_target_mm=35.0, min_distance_to_medial_wall_mm=2.0,
                              min_distance_to_inferior_wall_mm=2.0, safe=True,
                              notices=tuple(morphometry_notices(Level(level), side, width, 14.0))))
    return tuple(out)


def test_needle_paths_are_stored_written_and_drawn(tmp_path, monkeypatch):
    monkeypatch.setattr(pvp_plan.needle, "plan_level_needle_paths", _fake_paths, raising=False)
    ct, seg = make_spine()
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",), needle_gauge="13G"))
    lp = plan.level("L2")
    assert [p.side for p in lp.needle_paths] == ["left", "right"] and lp.needle_paths[0].gauge == "13G"
    assert "needle_planning_unavailable" not in {n.code for n in plan.notices}
    paths = write_case_outputs(plan, tmp_path)
    d = json.loads(paths["json"].read_text())
    assert len(d["levels"][0]["needle_paths"]) == 2 and d["levels"][0]["needle_paths"][0]["safe"] is True
    assert [p["verdict"] for p in d["levels"][0]["needle_paths"]] == ["safe", "safe_unverified"]
    html = paths["html"].read_text()
    assert "needle paths (entry to target)" in html
    assert "left 13G: acceptable (every safety check passed)" in html
    assert "right 13G: <b class='flag'>acceptable but UNVERIFIED</b>: every safety check passed, but a caution" in html
    assert "measured isthmus width 19.0 mm is above the published 7-18 mm" in html  # the caution saying why
    assert "<th>Needle L/R</th>" in html and "<td>ok/chk</td></tr>" in html  # the summary table's cell


def test_unavailable_needle_planning_is_a_notice(monkeypatch):
    def not_yet(*args, **kwargs):
        raise NotImplementedError

    monkeypatch.setattr(pvp_plan.needle, "plan_level_needle_paths", not_yet, raising=False)
    ct, seg = make_spine()
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",)))
    assert plan.level("L2").needle_paths == ()
    assert "needle_planning_unavailable" in {n.code for n in plan.notices}


def test_needle_failure_on_one_level_is_a_level_notice(monkeypatch):
    def fails(ct, segmentation, level, **kwargs):
        raise PlanError(f"{level}: pedicle not found")

    monkeypatch.setattr(pvp_plan.needle, "plan_level_needle_paths", fails, raising=False)
    ct, seg = make_spine()
    lp = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",))).level("L2")
    assert any(n.code == "needle_planning_failed" and "pedicle not found" in n.message for n in lp.warnings)


def test_no_needles_when_switched_off(monkeypatch):
    monkeypatch.setattr(pvp_plan.needle, "plan_level_needle_paths", _fake_paths, raising=False)
    ct, seg = make_spine()
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",), plan_needles=False))
    assert plan.level("L2").needle_paths == ()


@pytest.mark.parametrize("gauge, cautioned", [("10G", True), ("11G", False)])
def test_10g_caution_reaches_the_case_notices(gauge, cautioned, normal_spine_plan_options=None):
    ct, seg = make_spine()
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",), needle_gauge=gauge, plan_needles=False))
    assert ("needle_thicker_than_11g" in {n.code for n in plan.notices}) is cautioned


def _path_pixels(png: bytes) -> int:
    """Pixels of the needle-path colours (``VERDICT_RGBA``) in a PNG."""
    import io

    import matplotlib.image as mpimg

    from pvp_plan.needle.draw import VERDICT_RGBA

    rgb = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    return int(sum((np.abs(rgb - np.array(c[:3])).max(axis=-1) < 0.08).sum() for c in VERDICT_RGBA.values()))


def test_level_sagittal_close_up_draws_the_level_paths(monkeypatch):
    """The per-level sagittal close-up shows the level's needle paths projected on it (it showed none before)."""
    from pvp_plan.report.figures import level_sagittal_png

    ct, seg = make_spine()
    without = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",), plan_needles=False))
    monkeypatch.setattr(pvp_plan.needle, "plan_level_needle_paths", _fake_paths, raising=False)
    with_paths = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",)))
    assert _path_pixels(level_sagittal_png(without, without.level("L2"))) == 0
    assert _path_pixels(level_sagittal_png(with_paths, with_paths.level("L2"))) > 50


def test_each_side_s_verdict_in_the_table_rows_and_the_terminal(monkeypatch):
    """plan.csv / batch rows carry each side's verdict; the terminal table shows it (ok / chk / NO)."""
    from pvp_plan.cli.common import console
    from pvp_plan.cli.plan_cmd import print_plan_table

    monkeypatch.setattr(pvp_plan.needle, "plan_level_needle_paths", _fake_paths, raising=False)
    ct, seg = make_spine()
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",)))
    row = plan.table_rows()[0]
    assert (row["needle_left"], row["needle_right"]) == ("safe", "safe_unverified")
    with console.capture() as captured:
        print_plan_table(plan)
    out = " ".join(captured.get().split())  # the legend wraps at the console's width
    assert "Needle" in out and " ok/chk " in out and "chk = passed, but a caution says it may leave the pedicle" in out
    without = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",), plan_needles=False))
    assert (without.table_rows()[0]["needle_left"], without.table_rows()[0]["needle_right"]) == ("", "")


def test_terminal_colours_each_verdict_as_the_report_and_napari_draw_it():
    """One palette for a verdict wherever it is shown: the terminal table's ok / chk / NO take ``VERDICT_RGBA``."""
    from rich.style import Style
    from rich.text import Text

    from pvp_plan.cli.plan_cmd import _in_verdict_colour
    from pvp_plan.needle.draw import VERDICT_RGBA

    for verdict, rgba in VERDICT_RGBA.items():
        (span,) = Text.from_markup(_in_verdict_colour(verdict, "ok")).spans
        rgb = Style.parse(str(span.style)).color.get_truecolor()
        np.testing.assert_allclose(np.array(tuple(rgb)) / 255, rgba[:3], atol=0.5 / 255)
