"""Every rule branch, with inputs that make it fire and inputs that keep it silent."""

from __future__ import annotations

import pytest

from pvp_plan.errors import PlanError
from pvp_plan.levels import Level
from pvp_plan.measure.density import TrabecularDensity
from pvp_plan.measure.heights import BodyHeights
from pvp_plan.pipeline import PlanOptions
from pvp_plan.plan.collapse import assess_collapse
from pvp_plan.plan.density import classify_density
from pvp_plan.plan.fill import fill_guidance
from pvp_plan.plan.session import needle_notices, not_plannable_reason, session_notices
from pvp_plan.rules import cement, collapse, density, session
from pvp_plan.rules.collapse import genant_grade
from pvp_plan.rules.density import DensityThresholds
from pvp_plan.segment.types import BodyInfo


# --- CQ5 fill guidance -----------------------------------------------------------------------------------------
def test_fill_guidance_is_50_to_70_percent_and_raises_the_5ml_caution():
    g, notices = fill_guidance(35.6, level=Level.L1, posterior_third_stop_ml=22.9)
    assert g.low_ml == pytest.approx(17.8) and g.high_ml == pytest.approx(24.92)
    assert g.exceeds_5ml_caution
    caution = [n for n in notices if n.code == "fill_exceeds_5ml"]
    assert len(caution) == 1
    msg = caution[0].message
    assert msg.startswith("CQ5: fill guidance 17.8-24.9 mL")
    assert "5 mL caution" in msg and "no fixed upper limit" in msg and "posterior third" in msg and "leak" in msg
    assert caution[0].source == "JSIR PVP guideline 2019, CQ5"


def test_small_body_does_not_raise_the_5ml_caution():
    g, notices = fill_guidance(6.0, level=Level.T8, posterior_third_stop_ml=4.0)
    assert g.high_ml == pytest.approx(4.2) and not g.exceeds_5ml_caution
    assert "fill_exceeds_5ml" not in {n.code for n in notices}


def test_fill_guidance_just_above_caution():
    g, _ = fill_guidance(7.2, level=Level.T8, posterior_third_stop_ml=None)  # 0.7 * 7.2 = 5.04 mL
    assert g.exceeds_5ml_caution


@pytest.mark.parametrize("level, region, myeloma, osteoporotic", [(Level.T10, "thoracic", 2.5, 3.0),
                                                                  (Level.L3, "lumbar", 4.5, 5.0)])
def test_typical_volumes_by_region(level, region, myeloma, osteoporotic):
    g, notices = fill_guidance(30.0, level=level, posterior_third_stop_ml=20.0)
    assert (g.region, g.typical_myeloma_ml, g.typical_osteoporotic_ml) == (region, myeloma, osteoporotic)
    context = [n for n in notices if n.code == "biomechanics_context"][0]
    assert context.message.startswith("Context, not guideline") and "Molloy" in context.source


@pytest.mark.parametrize("volume", [None, 0.0, -1.0])
def test_fill_guidance_refuses_unmeasured_volume(volume):
    with pytest.raises(ValueError, match="measured body volume"):
        fill_guidance(volume, level=Level.L1, posterior_third_stop_ml=None)


# --- levels per session, needle ----------------------------------------------------------------------------------
def test_three_levels_are_silent_four_raise_a_caution():
    assert session_notices(["L1", "L2", "L3"]) == ()
    (n,) = session_notices(["T12", "L1", "L2", "L3"])
    assert n.code == "more_than_3_levels" and n.severity.value == "caution"
    assert "4 levels" in n.message and "leakage" in n.message and "Myeloma" in n.message
    assert "JSIR" in n.source


def test_10g_needle_is_flagged_11g_and_13g_are_not():
    assert needle_notices("11G") == () and needle_notices("13G") == ()
    (n,) = needle_notices("10G")
    assert "11-gauge" in n.message and "3.05 mm" in n.message


# --- Genant ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss, grade", [(None, None), (0.0, 0), (0.19, 0), (0.20, 1), (0.249, 1), (0.25, 2),
                                         (0.40, 2), (0.41, 3), (0.9, 3)])
def test_genant_grades(loss, grade):
    assert genant_grade(loss) == grade


def test_wedge_against_own_posterior_height():
    ca, notices = assess_collapse(BodyHeights(18.0, 24.0, 25.0, 30.0), level="L1")
    assert ca.own_ratio == pytest.approx(0.72) and ca.genant_grade == 2 and ca.genant_name == "moderate"
    assert any(n.code == "collapse_grade" and n.message.startswith("Genant 1993") for n in notices)


def test_crush_against_neighbours():
    nb = {"L1": BodyHeights(26.0, 25.0, 26.0, 30.0), "L3": BodyHeights(28.0, 27.0, 28.0, 30.0)}
    ca, _ = assess_collapse(BodyHeights(14.0, 13.5, 14.0, 30.0), level="L2", neighbours=nb)
    assert ca.own_ratio == pytest.approx(13.5 / 14.0)  # uniform crush: the level alone looks normal
    assert ca.neighbour_ratio == pytest.approx((41.5 / 3) / ((77.0 / 3 + 83.0 / 3) / 2))
    assert ca.genant_grade == 3 and ca.neighbours == ("L1", "L3")


def test_vertebra_plana_warning():
    ca, notices = assess_collapse(BodyHeights(5.0, 4.0, 20.0, 30.0), level="T9")
    assert ca.vertebra_plana and ca.genant_grade == 3
    assert any(n.code == "vertebra_plana" for n in notices)


def test_normal_heights_are_grade_0_and_silent():
    ca, notices = assess_collapse(BodyHeights(27.0, 25.0, 26.0, 30.0), level="L3")
    assert ca.genant_grade == 0 and not ca.vertebra_plana and notices == ()


def test_unmeasured_heights_give_no_grade():
    ca, notices = assess_collapse(BodyHeights(None, None, None, None), level="L3")
    assert ca.genant_grade is None and ca.height_loss is None
    assert [n.code for n in notices] == ["heights_not_measured"]


# --- density classes ---------------------------------------------------------------------------------------------
def _td(median=180.0, low=0.0, high=0.0):
    return TrabecularDensity(hu_mean=median, hu_median=median, hu_p05=median - 50, hu_p95=median + 50, hu_std=30.0,
                             n_voxels=1000, margin_mm=3.0, low_fraction=low, low_cluster_fraction=low,
                             high_fraction=high, high_cluster_fraction=high)


@pytest.mark.parametrize("td, cls, code", [
    (_td(high=0.2), "sclerotic", "sclerotic_density"),
    (_td(low=0.2), "lytic", "lytic_density"),
    (_td(low=0.2, high=0.2), "mixed", "sclerotic_density"),
    (_td(median=90.0), "osteoporotic", "osteoporotic_density"),
    (_td(median=200.0), "normal", None),
])
def test_each_density_class(td, cls, code):
    da, notices = classify_density(td, thresholds=DensityThresholds(), level="L2")
    assert da.density_class == cls
    assert da.thresholds["sclerotic_hu"] == 500.0  # the thresholds travel with the result
    if code is None:
        assert notices == ()
    else:
        assert code in {n.code for n in notices}


def test_sclerotic_message_cites_cq3_and_says_not_recommended():
    _, notices = classify_density(_td(high=0.3), thresholds=DensityThresholds(), level="L2")
    n = [n for n in notices if n.code == "sclerotic_density"][0]
    assert n.message.startswith("CQ3:") and "not recommended" in n.message and n.source.endswith("CQ3")
    assert "500 HU" in n.message


def test_indeterminate_band_between_pickhardt_thresholds():
    da, notices = classify_density(_td(median=130.0), thresholds=DensityThresholds(), level="L1")
    assert da.density_class == "normal" and "indeterminate" in da.osteoporosis_note and notices == ()


def test_thresholds_are_configurable():
    da, _ = classify_density(_td(median=130.0), thresholds=DensityThresholds(osteoporosis_hu=135.0), level="L1")
    assert da.density_class == "osteoporotic"


@pytest.mark.parametrize("kwargs, match", [
    ({"osteoporosis_hu": 200.0}, "must not exceed normal_hu"),
    ({"lytic_hu": 120.0}, "lytic_hu"),
    ({"sclerotic_hu": 150.0}, "sclerotic_hu"),
    ({"lytic_min_fraction": 0.0}, "lytic_min_fraction"),
    ({"cortex_margin_mm": -1.0}, "cortex_margin_mm"),
])
def test_density_thresholds_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DensityThresholds(**kwargs)


# --- plannability, options ---------------------------------------------------------------------------------------
def _body(**kw):
    base = dict(label=20, level=Level.L1, level_confidence=0.9, cut_by_fov=False, voxel_count=1000,
                centroid_lps_mm=(0.0, 0.0, 0.0))
    return BodyInfo(**{**base, **kw})


@pytest.mark.parametrize("kw, expected", [
    ({}, None),
    ({"cut_by_fov": True}, "cut by the field of view"),
    ({"level_confidence": 0.3}, "level name uncertain"),
    ({"segmentation_confidence": 0.2}, "segmentation uncertain"),
])
def test_not_plannable_reasons(kw, expected):
    reason = not_plannable_reason(_body(**kw))
    assert reason is None if expected is None else expected in reason


def test_fragment_is_not_plannable():
    assert "implausibly small" in not_plannable_reason(_body(voxel_count=100), voxel_volume_ml=0.001)
    assert not_plannable_reason(_body(voxel_count=10000), voxel_volume_ml=0.001) is None


@pytest.mark.parametrize("kw, match", [({"needle_gauge": "8G"}, "gauge"), ({"needle_target": "middle"}, "target"),
                                       ({"levels": ("L9",)}, "unknown vertebral level")])
def test_plan_options_validation(kw, match):
    with pytest.raises(PlanError, match=match):
        PlanOptions(**kw)


def test_plan_options_normalise_levels_and_gauge():
    o = PlanOptions(levels=("l1", "L2"), needle_gauge="13g")
    assert o.levels == ("L1", "L2") and o.needle_gauge == "13G"


def test_every_rule_has_a_source_and_unit():
    rules = (*cement.ALL, *collapse.ALL, *session.ALL, *density.DEFAULT_THRESHOLDS.rules())
    assert rules and all(r.source and r.unit for r in rules)
