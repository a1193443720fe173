"""Needle planning (issue 5): phantom truth, real CT plausibility, output contracts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from pvp_plan.errors import PlanError
from pvp_plan.needle import needle_layer_data, plan_level_needle_paths, project_path_on_axial
from pvp_plan.rules.needle import PEDICLE_WIDTH_LUMBAR_MM
from pvp_plan.segment.types import Segmentation
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def phantom():
    from pvp_plan.sample_data import generate_phantom

    ph = generate_phantom(levels=("T11", "T12", "L1", "L2", "L3"), narrow_pedicle_level="T11")
    return ph, Segmentation.from_label_map(ph.body_labels, ph.ct, method="truth")


def _angles(d):
    ml = np.degrees(np.arctan2(abs(d[0]), abs(d[1])))
    return ml, np.degrees(np.arctan2(-d[2], np.hypot(d[0], d[1])))


@pytest.mark.parametrize("level", ["T12", "L1", "L2"])
def test_phantom_isthmus_width_and_path_angles(phantom, level):
    ph, seg = phantom
    paths = plan_level_needle_paths(ph.ct, seg, level)
    assert [p.side for p in paths] == ["left", "right"]
    for p in paths:
        truth = ph.truth["levels"][level]["pedicles"][p.side]
        assert abs(p.pedicle.width_mm - truth["width_mm"]) <= 0.5
        # like with like: the planned path's angles vs the line from the TRUE isthmus centre to the planned target
        ml, cc = _angles(np.subtract(p.target_lps_mm, truth["isthmus_center_lps_mm"]))
        assert abs(abs(p.mediolateral_angle_deg) - ml) <= 2.0
        assert abs(p.craniocaudal_angle_deg - cc) <= 2.0
        assert p.safe
        json.dumps(p.to_dict())  # plan.json contract


def test_phantom_narrow_thoracic_pedicle_warns(phantom):
    ph, seg = phantom
    for p in plan_level_needle_paths(ph.ct, seg, "T11"):
        assert abs(p.pedicle.width_mm - ph.truth["levels"]["T11"]["pedicles"][p.side]["width_mm"]) <= 0.5
        codes = {n.code for n in p.notices}
        assert "pedicle_too_narrow_for_gauge" in codes
        assert any("13G" in n.message or "parapedicular" in n.message for n in p.notices)


def test_layer_data_and_projection(phantom):
    ph, seg = phantom
    paths = plan_level_needle_paths(ph.ct, seg, "L2")
    data = needle_layer_data(paths)
    assert len(data["lines"]) == 2 and data["lines"][0].shape == (2, 3)
    np.testing.assert_allclose(data["lines"][0][1], paths[0].target_lps_mm[::-1])
    assert data["colors"].shape == (2, 4) and data["points"].shape[1] == 3
    ax = project_path_on_axial(paths[0], ph.ct)
    np.testing.assert_allclose(ax[1], ph.ct.lps_to_index(paths[0].target_lps_mm)[[1, 2]])


def test_bad_options_raise(phantom):
    ph, seg = phantom
    with pytest.raises(PlanError):
        plan_level_needle_paths(ph.ct, seg, "L1", gauge="8G")
    with pytest.raises(PlanError):
        plan_level_needle_paths(ph.ct, seg, "L1", target="posterior")
    with pytest.raises(PlanError):
        plan_level_needle_paths(ph.ct, seg, "C3")


def _labels(path):
    from pvp_plan.io.load import volume_from_image

    return volume_from_image(sitk.ReadImage(str(path)), source_path=str(path), source_format="nifti").hu


def _abdomen():
    from pvp_plan.io.load import load_ct

    root = shared_path("abdomen_3mm")
    ct = load_ct(root / "ct.nii.gz")
    seg = Segmentation.from_label_map(_labels(root / "reference/totalseg_vertebral_bodies_per_level.nii.gz"), ct,
                                      method="external: TotalSegmentator")
    return ct, seg, _labels(root / "reference/totalseg_total_vertebrae.nii.gz")


def test_abdomen_paths_stay_in_bone_and_out_of_canal():
    from scipy import ndimage

    from pvp_plan.levels import TOTALSEGMENTATOR_TOTAL_LABELS, Level

    ct, seg, vert = _abdomen()
    for level in ("L1", "L3"):
        vmask = ndimage.binary_dilation((vert == TOTALSEGMENTATOR_TOTAL_LABELS[Level(level)]) | seg.mask(level))
        for p in plan_level_needle_paths(ct, seg, level):
            a, b = np.array(p.bone_entry_lps_mm), np.array(p.target_lps_mm)
            idx = np.round(ct.lps_to_index(a + np.linspace(0, 1, 50)[:, None] * (b - a))).astype(int)
            assert vmask[idx[:, 0], idx[:, 1], idx[:, 2]].mean() >= 0.9  # 3 mm voxels: one-voxel rim allowed
            assert p.min_distance_to_medial_wall_mm is not None and p.min_distance_to_medial_wall_mm > 0


@pytest.mark.xfail(reason="3 mm real CT: pedicle sections at 200 HU are cortex fragments; widths read 1-12 mm (known gap)")
def test_abdomen_widths_in_published_range():
    ct, seg, _ = _abdomen()
    for level in ("L1", "L3"):
        for p in plan_level_needle_paths(ct, seg, level):
            assert PEDICLE_WIDTH_LUMBAR_MM.low - 1.5 <= p.pedicle.width_mm <= PEDICLE_WIDTH_LUMBAR_MM.high
