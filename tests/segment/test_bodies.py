"""Tests of pvp_plan.segment (issue 3). Accuracy targets are xfail until the method meets them."""

from __future__ import annotations

import numpy as np
import pytest

from pvp_plan.errors import SegmentationError
from pvp_plan.io import ct_from_array
from pvp_plan.levels import Level
from pvp_plan.segment import Segmentation, parse_anchor, relabel, segment_vertebral_bodies
from tests.conftest import shared_path


def test_soft_tissue_only_raises():
    ct = ct_from_array(np.full((60, 80, 80), 40, np.int16), spacing_mm=(2.0, 2.0, 2.0))
    with pytest.raises(SegmentationError, match="no vertebral"):
        segment_vertebral_bodies(ct)


def test_head_like_bone_ring_raises():
    zz, yy, xx = np.mgrid[:60, :100, :100]
    r = np.hypot((yy - 50) / 45.0, (xx - 50) / 38.0)
    hu = np.where(r < 0.9, 35, -1000).astype(np.int16)
    hu[(r >= 0.82) & (r < 0.9)] = 1200
    with pytest.raises(SegmentationError):
        segment_vertebral_bodies(ct_from_array(hu, spacing_mm=(2.0, 2.0, 2.0)))


def test_thin_slab_raises():
    ct = ct_from_array(np.full((3, 100, 100), 40, np.int16), spacing_mm=(1.0, 1.0, 1.0))
    with pytest.raises(SegmentationError, match="slab"):
        segment_vertebral_bodies(ct)


@pytest.mark.parametrize("text,expected", [
    ("L3", (Level.L3, "index", 1.0)), ("l3:2", (Level.L3, "index", 2.0)),
    ("T12:z=-123.5", (Level.T12, "z", -123.5)),
])
def test_parse_anchor(text, expected):
    assert parse_anchor(text) == expected


@pytest.mark.parametrize("text", ["", "X9", "L3:0", "L3:z=abc"])
def test_parse_anchor_rejects(text):
    with pytest.raises(SegmentationError):
        parse_anchor(text)


def _three_boxes():
    labels = np.zeros((90, 20, 20), np.uint8)
    for i, z in enumerate((5, 35, 65)):
        labels[z:z + 20, 5:15, 5:15] = 24 - i  # L5 bottom, L3 top
    ct = ct_from_array(np.zeros(labels.shape, np.int16), spacing_mm=(1.0, 1.0, 1.0))
    return Segmentation.from_label_map(labels, ct, method="test"), ct


def test_relabel_by_index_renumbers_all():
    seg, ct = _three_boxes()
    new = relabel(seg, ct, anchor="L3:2")  # 2nd from the bottom is L3
    assert [b.level.value for b in new.bodies] == ["L2", "L3", "L4"]
    assert any("anchor" in w for w in new.warnings)


def test_relabel_by_z():
    seg, ct = _three_boxes()
    new = relabel(seg, ct, anchor="T12:z=74")  # top body centre z = 74.5
    assert [b.level.value for b in new.bodies] == ["T12", "L1", "L2"]


def test_abdomen_runs_end_to_end():
    from pvp_plan.io import load_ct

    ct = load_ct(shared_path("abdomen_3mm", "ct.nii.gz"))
    seg = segment_vertebral_bodies(ct)
    assert seg.labels.shape == ct.shape and seg.bodies


@pytest.mark.xfail(reason="first version: posterior elements not yet separated; targets not met", strict=False)
def test_abdomen_levels_match_totalsegmentator():
    import SimpleITK as sitk

    from pvp_plan.io import load_ct
    from pvp_plan.io.load import volume_from_image

    ct = load_ct(shared_path("abdomen_3mm", "ct.nii.gz"))
    p = shared_path("abdomen_3mm", "reference", "totalseg_vertebral_bodies_per_level.nii.gz")
    ref = volume_from_image(sitk.ReadImage(str(p)), source_path=str(p), source_format="nifti").hu
    seg = segment_vertebral_bodies(ct)
    for lab in (20, 21, 22, 23, 24):
        m, g = seg.labels == lab, ref == lab
        assert 2 * (m & g).sum() / (m.sum() + g.sum()) >= 0.85
