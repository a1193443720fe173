"""Real 3 mm abdominal CT (../shared/data/abdomen_3mm) with TotalSegmentator's per-level body map.

T12 is cut by the field of view; L1-L5 are believed normal. L1 is shorter in front: 22% between the
band heights, as TotalSegmentator's own report says (0.22), and 31% between the fitted margin heights
(Genant grade 2 by the numbers; physiological thoracolumbar wedging or an old mild fracture: the
operator judges). No density or posterior-wall flag on any level.
"""

from __future__ import annotations

import functools
import json

import pytest

from pvp_plan.pipeline import PlanOptions, plan_case
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data


@functools.lru_cache(maxsize=1)
def _case():
    from pvp_plan.io import load_ct
    from pvp_plan.segment.external import load_external_segmentation

    ct = load_ct(shared_path("abdomen_3mm", "ct.nii.gz"))
    seg = load_external_segmentation(
        shared_path("abdomen_3mm", "reference", "totalseg_vertebral_bodies_per_level.nii.gz"), ct,
        convention="verse-bodies")
    report = json.loads(shared_path("abdomen_3mm", "reference", "totalseg_spine_report.json").read_text())["results"]
    return plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=False)), report


@pytest.fixture(scope="module")
def abdomen():
    return _case()


@pytest.mark.parametrize("level", ["L1", "L2", "L3", "L4", "L5"])
def test_heights_within_3mm_of_totalsegmentator(abdomen, level):
    plan, ref = abdomen
    c = plan.level(level).collapse
    for name, ours in (("anterior", c.anterior_mm), ("middle", c.middle_mm), ("posterior", c.posterior_mm)):
        assert ours == pytest.approx(ref[f"vertebrae_{level}_height_{name}_mm"], abs=3.0), name


@pytest.mark.parametrize("level", ["L1", "L2", "L3", "L4", "L5"])
def test_volume_matches_the_reference_body_map(abdomen, level):
    plan, ref = abdomen
    assert plan.level(level).body_volume_ml == pytest.approx(ref[f"vertebrae_{level}_volume_ml"], abs=0.1)


def test_no_false_sclerotic_lytic_or_breach_flag_on_normal_levels(abdomen):
    plan, _ = abdomen
    for lp in plan.levels:
        assert lp.density.density_class not in ("sclerotic", "lytic", "mixed"), lp.level
        assert lp.wall is None or not lp.wall.flag, lp.level


def test_only_l1_shows_a_height_difference(abdomen):
    """L1 is shorter in front on the images too (TotalSegmentator: height difference 0.22)."""
    plan, ref = abdomen
    graded = {lp.level: lp.collapse.genant_grade for lp in plan.levels if lp.collapse is not None}
    assert graded["L1"] in (1, 2) and all(graded[lv] == 0 for lv in ("L2", "L3", "L4", "L5"))
    c = plan.level("L1").collapse
    assert 1 - c.anterior_mm / c.posterior_mm == pytest.approx(ref["vertebrae_L1_height_difference"], abs=0.03)
    assert c.wedge_ratio < 0.8 and c.neighbour_ratio > 0.9  # an anterior wedge, not a crush


def test_t12_cut_by_the_field_of_view_is_not_plannable(abdomen):
    plan, _ = abdomen
    t12 = plan.level("T12")
    assert not t12.plannable and "field of view" in t12.not_plannable_reason
    assert t12.body_volume_ml is None and t12.to_dict()["fill_guidance_ml"] is None
    assert t12.collapse is None  # heights of a cut body are not measured


def test_fill_guidance_conflict_is_shown_on_every_lumbar_level(abdomen):
    plan, _ = abdomen
    for lp in plan.levels[1:]:
        assert lp.fill.exceeds_5ml_caution
        msg = [n.message for n in lp.warnings if n.code == "fill_exceeds_5ml"][0]
        assert msg.startswith(f"CQ5: fill guidance {lp.fill.low_ml:.1f}-{lp.fill.high_ml:.1f} mL")


def test_label_map_written_back_on_the_ras_source_grid(abdomen, tmp_path):
    """The input is a RAS-stored NIfTI: the written body map must match TotalSegmentator's voxel for voxel."""
    import numpy as np
    import SimpleITK as sitk

    from pvp_plan.pipeline import write_case_outputs

    plan, _ = abdomen
    paths = write_case_outputs(plan, tmp_path, html=False)
    ours = sitk.ReadImage(str(paths["label_map"]))
    ref = sitk.ReadImage(str(shared_path("abdomen_3mm", "reference", "totalseg_vertebral_bodies_per_level.nii.gz")))
    assert ours.GetDirection() == pytest.approx(ref.GetDirection())
    assert ours.GetOrigin() == pytest.approx(ref.GetOrigin(), abs=1e-3)
    assert np.array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref).astype(np.uint8))
    assert set(paths) == {"json", "csv", "label_map"}
