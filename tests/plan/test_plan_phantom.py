"""DONE-WHEN criteria on the ground-truth phantom (truth segmentation) and on the analytic spine."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pvp_plan.pipeline import PlanOptions, plan_case, plan_level
from tests.plan.conftest import make_spine

FLAG_OF = {"wedge": "collapse", "lytic": "lytic", "sclerotic": "sclerotic", "posterior_wall_breach": "breach"}


def _has(lp, kind: str) -> bool:
    if kind == "collapse":
        return (lp.collapse.genant_grade or 0) >= 1
    if kind == "breach":
        return lp.wall.flag
    return lp.density.density_class in (kind, "mixed")


def test_every_planted_finding_is_flagged_on_its_level_and_no_other(phantom_plan):
    ph, _, plan = phantom_plan
    planted = {lv: d["pathology"]["type"] for lv, d in ph.truth["levels"].items() if d["pathology"]}
    assert set(planted.values()) == set(FLAG_OF)  # the phantom plants all four findings
    for kind in FLAG_OF.values():
        flagged = {lp.level for lp in plan.levels if _has(lp, kind)}
        expected = {lv for lv, p in planted.items() if FLAG_OF[p] == kind}
        assert flagged == expected, kind
    for lv in ph.truth["normal_levels"]:
        assert plan.level(lv).flags == ()


def test_fill_guidance_is_50_70_percent_of_the_true_volume(phantom_plan):
    ph, _, plan = phantom_plan
    for lp in plan.levels:
        true_ml = ph.truth["levels"][lp.level]["volume_ml"]
        assert lp.volume_low_ml < true_ml < lp.volume_high_ml  # truth within the one-voxel band
        assert lp.body_volume_ml == pytest.approx(ph.truth["levels"][lp.level]["volume_ml_from_labels"], rel=1e-3)
        assert abs(lp.body_volume_ml - true_ml) / true_ml < 0.08  # voxelisation of small thoracic bodies
        assert lp.fill.low_ml == pytest.approx(0.5 * lp.body_volume_ml)
        assert lp.fill.high_ml == pytest.approx(0.7 * lp.body_volume_ml)
        assert 0.5 * lp.volume_low_ml < 0.5 * true_ml < 0.5 * lp.volume_high_ml
        assert lp.fill.exceeds_5ml_caution  # every phantom body is > 7.1 mL
        assert 0.6 * lp.body_volume_ml < lp.fill.posterior_third_stop_ml < 0.9 * lp.body_volume_ml


def test_breach_location_side_and_extent(phantom_plan):
    ph, _, plan = phantom_plan
    truth = ph.truth["levels"]["L2"]["pathology"]
    w = plan.level("L2").wall
    assert w.flag and "left" in w.side and "centre" in w.side and "right" not in w.side
    lo, hi = w.extent_mm
    half = truth["craniocaudal_extent_mm"] / 2
    assert lo == pytest.approx(truth["center_w_mm"] - half, abs=3.0)
    assert hi == pytest.approx(truth["center_w_mm"] + half, abs=3.0)
    assert 0.05 < w.missing_fraction < 0.4 and 0.0 < w.confidence <= 1.0
    msg = [n for n in plan.level("L2").warnings if n.code == "posterior_wall_breach"][0].message
    assert "spinal canal" in msg and "L2" in msg


def test_sclerotic_level_carries_the_cq3_warning(phantom_plan):
    _, _, plan = phantom_plan
    codes = {n.code: n for n in plan.level("T11").warnings}
    assert codes["sclerotic_density"].source.endswith("CQ3")


def test_wedge_grade_matches_the_planted_loss(phantom_plan):
    ph, _, plan = phantom_plan
    c = plan.level("L1").collapse
    planted = ph.truth["levels"]["L1"]["pathology"]["anterior_height_loss_fraction"]
    assert c.genant_grade >= 1 and abs(c.height_loss - planted) < 0.08
    assert c.anterior_margin_mm == pytest.approx(ph.truth["levels"]["L1"]["heights_mm"]["anterior"], abs=2.5)


def test_all_levels_without_a_selection_are_informational_not_a_session_caution(phantom_plan):
    _, _, plan = phantom_plan
    codes = {n.code for n in plan.notices}
    assert "levels_not_selected" in codes and "more_than_3_levels" not in codes


def test_selecting_more_than_three_levels_raises_the_session_caution(phantom_plan):
    ph, seg, _ = phantom_plan
    plan = plan_case(ph.ct, segmentation=seg,
                     options=PlanOptions(levels=("T12", "L1", "L2", "L4"), plan_needles=False))
    assert "more_than_3_levels" in {n.code for n in plan.notices}
    three = plan_case(ph.ct, segmentation=seg, options=PlanOptions(levels=("L1", "L2", "L4"), plan_needles=False))
    assert not {"more_than_3_levels", "levels_not_selected"} & {n.code for n in three.notices}


def test_lytic_lesion_through_the_cortex_is_reported_as_cortical_destruction(phantom_plan):
    _, _, plan = phantom_plan
    d = plan.level("L3").density
    assert d.lytic_cortex_fraction > 0
    msg = [n for n in plan.level("L3").warnings if n.code == "lytic_density"][0].message
    assert "cortical destruction" in msg


def test_internal_lytic_lesion_keeps_an_intact_cortex():
    ct, seg = make_spine(lytic=True)
    lp = plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False)).level("L2")
    assert lp.density.density_class == "lytic" and lp.density.lytic_cortex_fraction == 0.0


def test_replanning_one_level_is_fast(phantom_plan):
    ph, seg, _ = phantom_plan
    t = time.process_time()  # CPU time: robust to other jobs sharing the machine
    lp = plan_level(ph.ct, seg, "L3", options=PlanOptions(plan_needles=False))
    assert time.process_time() - t < 1.0
    assert lp.density.density_class == "lytic"


@pytest.mark.parametrize("kw, level_flag", [({"wedge": 0.4}, "collapse:"), ({"crush": 0.35}, "collapse:"),
                                            ({"lytic": True}, "lytic"), ({"sclerotic": True}, "sclerotic"),
                                            ({"breach": True}, "posterior wall breach"),
                                            ({"retropulsion": True}, "posterior wall breach")])
def test_analytic_findings_only_on_l2(kw, level_flag):
    ct, seg = make_spine(**kw)
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False))
    assert any(f.startswith(level_flag) for f in plan.level("L2").flags)
    assert plan.level("L1").flags == () and plan.level("L3").flags == ()


def test_analytic_breach_is_on_the_right(normal_spine):
    ct, seg = make_spine(breach=True)
    w = plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False)).level("L2").wall
    assert w.flag and w.side.startswith("right") and "left" not in w.side


def _unlabelled_breach_wall(height_mm: float):
    ct, seg = make_spine(breach=True, breach_unlabelled=True, breach_height_mm=height_mm)
    return plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False)).level("L2").wall


def test_breach_left_outside_the_body_mask_is_read_at_the_wall_line():
    """A segmentation that keeps to bone leaves the tumour out: the outline has a 6 mm recess where the wall was
    and bone (the recess's floor) right across its boundary. The wall is then read at the line of the wall
    around it, where soft tissue stands in place of the cortex. (10 mm high: the phantom's breach; the mask's
    wall is assessed over about 18 mm of the body's 26.)"""
    w = _unlabelled_breach_wall(10.0)
    assert w.flag and "cortical gap" in w.finding and w.side.startswith("right") and "left" not in w.side
    assert w.extent_mm[0] == pytest.approx(-5.0, abs=2.5) and w.extent_mm[1] == pytest.approx(5.0, abs=2.5)


@pytest.mark.xfail(strict=True, reason="limit of measure/wall.py: a recess covering more than three quarters of "
                                       "the assessed wall's height over half its width sets the wall line itself "
                                       "(14 of 18 mm here)")
def test_tall_breach_left_outside_the_body_mask_is_read_at_the_wall_line():
    assert _unlabelled_breach_wall(14.0).flag


def test_retropulsed_fragment_is_a_protrusion_on_the_left():
    ct, seg = make_spine(retropulsion=True)
    w = plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False)).level("L2").wall
    assert w.flag and "protrusion" in w.finding and "left" in w.side and "right" not in w.side
    assert w.protrusion_max_mm > 4.0 and w.extent_mm[1] > 0  # centred 4 mm cranial of the body centre


def test_low_density_body_is_osteoporotic_not_lytic():
    ct, seg = make_spine(trab_hu=85.0, noise_hu=25.0)
    d = plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False)).level("L2").density
    assert d.density_class == "osteoporotic" and "osteoporotic range" in d.osteoporosis_note


def test_body_cut_by_the_field_of_view_is_not_plannable(normal_spine):
    ct, seg = normal_spine
    from pvp_plan.io.ct_volume import ct_from_array
    from pvp_plan.segment.types import Segmentation

    top = int(np.argwhere(seg.labels == 20)[:, 0].mean())  # cut L1 through its middle
    cut_ct = ct_from_array(ct.hu[:top + 1].copy(), spacing_mm=ct.spacing_mm)
    cut_seg = Segmentation.from_label_map(seg.labels[:top + 1].copy(), cut_ct, method="cut")
    plan = plan_case(cut_ct, segmentation=cut_seg, options=PlanOptions(plan_needles=False))
    lp = plan.level("L1")
    assert not lp.plannable and "field of view" in lp.not_plannable_reason
    assert lp.body_volume_ml is None and lp.fill is None and lp.to_dict()["body_volume_ml"] is None
    assert plan.level("L2").plannable


def test_low_level_confidence_is_not_plannable(normal_spine):
    ct, seg = normal_spine
    from pvp_plan.segment.types import Segmentation

    low = Segmentation.from_label_map(seg.labels, ct, method="test", level_confidence=0.2)
    lp = plan_case(ct, segmentation=low, options=PlanOptions(plan_needles=False)).level("L2")
    assert not lp.plannable and "level name uncertain" in lp.not_plannable_reason and lp.body_volume_ml is None


def test_unknown_level_is_a_plan_error(normal_spine):
    from pvp_plan.errors import PlanError

    ct, seg = normal_spine
    with pytest.raises(PlanError, match="T4 not found"):
        plan_case(ct, segmentation=seg, options=PlanOptions(levels=("T4",)))


def test_needle_planning_absent_or_present_is_reported(normal_spine):
    ct, seg = normal_spine
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(levels=("L2",)))
    lp = plan.level("L2")
    codes = {n.code for n in plan.notices}
    assert lp.needle_paths or "needle_planning_unavailable" in codes


@pytest.fixture(scope="module")
def phantom_auto_plan(phantom_plan):
    """The default phantom planned end to end with the automatic segmentation."""
    ph, _, _ = phantom_plan
    return ph, plan_case(ph.ct, options=PlanOptions(plan_needles=False))


def test_end_to_end_with_the_real_segmenter(phantom_auto_plan):
    """plan_case segments by itself and flags the wedge, sclerotic and breach levels, and nothing on normal levels."""
    ph, plan = phantom_auto_plan
    planted = {lv: d["pathology"]["type"] for lv, d in ph.truth["levels"].items() if d["pathology"]}
    for lv, kind in planted.items():
        if kind != "lytic":
            assert _has(plan.level(lv), FLAG_OF[kind]), (lv, kind)
    for lv in ph.truth["normal_levels"]:
        lp = plan.level(lv)
        if not lp.plannable:  # the top body has no disc above it in view: marked cut, not assessed
            assert lp.not_plannable_reason and lp.body_volume_ml is None, lv
            continue
        assert not lp.wall.flag and lp.density.density_class not in ("sclerotic", "lytic", "mixed"), lv
        true_ml = ph.truth["levels"][lv]["volume_ml"]
        assert abs(lp.body_volume_ml - true_ml) / true_ml < 0.45, lv


def test_end_to_end_lytic_level_is_flagged(phantom_auto_plan):
    """L3's lesion breaks the cortex; the automatic mask leaves out its rim and the broken cortex (a bay around
    it), and the lesion lay within the 3 mm cortex margin measured from the mask's surface (0.5-0.8 % in one
    cluster, under the 1.5 % lytic share, session 8). The soft-tissue search measures the margin from the body's
    outline (tests/plan/test_measure.py): 1.7-2.1 % on five phantoms at 1-3 mm."""
    _, plan = phantom_auto_plan
    assert _has(plan.level("L3"), FLAG_OF["lytic"]) and (plan.level("L3").collapse.genant_grade or 0) == 0


@pytest.mark.parametrize(("phantom", "root_mm"), [("sample", 7.0), ("sample", 9.0), ("seed 2, 1 x 0.6 x 0.6 mm", 8.0)])
def test_breach_is_flagged_whatever_the_pedicle_root_cut_and_grid(phantom, root_mm, fine_phantom):
    """The L2 breach is found with the automatic segmentation when the in-plane pedicle-root cut (default 8 mm) is
    a millimetre smaller or larger, and on a fine grid. A redraw of the posterior sections across the wall (not
    only at the corners) half filled the tumour's bay, the outline no longer recessed, and the breach was missed:
    on the sample at 7, 7.5, 8.5 and 9 mm (found at 8 only), on seed 2 at 8 mm."""
    from pvp_plan.sample_data.sample import load_sample
    from pvp_plan.segment import segment_vertebral_bodies
    from pvp_plan.segment.column_options import ColumnOptions

    ct = load_sample().ct if phantom == "sample" else fine_phantom.ct
    seg = segment_vertebral_bodies(ct, options=ColumnOptions(pedicle_root_mm=root_mm))
    plan = plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False))
    assert _has(plan.level("L2"), FLAG_OF["posterior_wall_breach"])
