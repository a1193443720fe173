"""External label maps on synthetic data: convention detection, body split, geometry checks, anchors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from pvp_plan.errors import LabelMapError
from pvp_plan.io import ct_from_array, load_ct
from pvp_plan.segment.external import detect_convention, load_external_segmentation, split_vertebral_bodies
from tests.conftest import dice
from tests.external._vertebrae import SHAPE, SPACING_MM, synthetic_vertebrae

ORIGIN = (-30.0, -40.0, 200.0)


@pytest.fixture(scope="module")
def maps():
    return synthetic_vertebrae()


@pytest.fixture
def ct(tmp_path):
    return ct_from_array(np.zeros(SHAPE, dtype=np.int16), spacing_mm=SPACING_MM, origin_lps_mm=ORIGIN,
                         name="ct.nii.gz")


def _write(array: np.ndarray, path, *, spacing=SPACING_MM, origin=ORIGIN, flip_ras=False):
    """Write a (z, y, x) LPS array as an image file; ``flip_ras`` stores it RAS like most NIfTI tools."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing[::-1])
    image.SetOrigin(origin)
    if flip_ras:
        image = sitk.DICOMOrient(image, "RAS")
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.parametrize(("values", "expected"), [
    ({27, 28, 29}, "totalsegmentator"),
    ({26, 27, 28}, "totalsegmentator"),  # S1/L5/L4 in TotalSegmentator; sacrum/coccyx/T13 never come alone
    ({1, 2}, "totalsegmentator-bodies"),
    ({1}, "totalsegmentator-bodies"),
    ({5, 31, 90}, "totalsegmentator"),  # a whole TotalSegmentator 'total' map (organs too)
])
def test_detect_convention_from_values(values, expected):
    labels = np.zeros((len(values), 4, 4), dtype=np.uint8)
    for i, v in enumerate(sorted(values)):
        labels[i, 1:3, 1:3] = v
    assert detect_convention(labels, spacing_mm=(1, 1, 1)) == expected


def test_detect_verse_whole_versus_bodies_by_the_canal(maps):
    whole, bodies = maps
    assert detect_convention(whole, spacing_mm=SPACING_MM) == "verse"
    assert detect_convention(bodies, spacing_mm=SPACING_MM) == "verse-bodies"


def test_detect_refuses_unknown_and_empty():
    labels = np.zeros((3, 4, 4), dtype=np.uint8)
    with pytest.raises(LabelMapError, match="empty"):
        detect_convention(labels, spacing_mm=(1, 1, 1))
    labels[1, 1, 1] = 120
    with pytest.raises(LabelMapError, match="cannot tell the label convention"):
        detect_convention(labels, spacing_mm=(1, 1, 1))


def test_split_recovers_the_body(maps):
    whole, bodies = maps
    split = split_vertebral_bodies(whole, spacing_mm=SPACING_MM)
    for lab in (20, 21, 22):
        assert dice(split == lab, bodies == lab) >= 0.9
        assert not (split == lab)[:, 45:, :].any(), "no arch or spinous process left in the body"


def test_split_leaves_out_a_vertebra_without_canal(maps):
    whole, _ = maps
    cut = whole.copy()
    cut[cut == 20] = 0
    cut[-6:, 10:30, 20:34] = 20  # a sliver of body at the edge, no arch
    warnings: list[str] = []
    split = split_vertebral_bodies(cut, spacing_mm=SPACING_MM, warnings=warnings)
    assert 20 not in np.unique(split)
    assert warnings and "L1: spinal canal not found" in warnings[0]


@pytest.mark.parametrize("convention", [None, "verse"])
def test_load_verse_whole_map_stored_ras(tmp_path, ct, maps, convention):
    whole, bodies = maps
    path = _write(whole, tmp_path / "verse.nii.gz", flip_ras=True)
    seg = load_external_segmentation(path, ct, convention=convention)
    assert [lv.value for lv in seg.levels] == ["L1", "L2", "L3"]
    assert seg.method.startswith("external: VerSe whole vertebrae")
    assert all(dice(seg.labels == lab, bodies == lab) >= 0.9 for lab in (20, 21, 22))


def test_load_verse_bodies_on_another_grid_is_resampled(tmp_path, ct, maps):
    """A body map at half the resolution lands on the CT grid (nearest neighbour), levels intact."""
    _, bodies = maps
    image = sitk.GetImageFromArray(bodies)
    image.SetSpacing(SPACING_MM[::-1])
    image.SetOrigin(ORIGIN)
    coarse = sitk.Resample(image, [n // 2 for n in image.GetSize()], sitk.Transform(), sitk.sitkNearestNeighbor,
                           ORIGIN, [2 * s for s in image.GetSpacing()], image.GetDirection(), 0)
    sitk.WriteImage(coarse, str(tmp_path / "coarse.nrrd"))
    seg = load_external_segmentation(tmp_path / "coarse.nrrd", ct, convention="verse-bodies")
    assert seg.labels.shape == ct.shape
    assert all(dice(seg.labels == lab, bodies == lab) >= 0.8 for lab in (20, 21, 22))


def test_load_totalsegmentator_numbering(tmp_path, ct, maps):
    whole, bodies = maps
    ts = np.zeros_like(whole)
    for verse, total in ((20, 31), (21, 30), (22, 29)):  # L1 = 31 ... L3 = 29
        ts[whole == verse] = total
    ts[:2, :4, :4] = 5  # an organ label of the 'total' task: ignored
    seg = load_external_segmentation(_write(ts, tmp_path / "total.nii.gz"), ct)
    assert [lv.value for lv in seg.levels] == ["L1", "L2", "L3"]
    assert all(dice(seg.labels == lab, bodies == lab) >= 0.9 for lab in (20, 21, 22))


def test_vertebrae_body_map_needs_an_anchor_or_whole_map(tmp_path, ct, maps):
    whole, bodies = maps
    path = _write((bodies > 0).astype(np.uint8), tmp_path / "vertebrae_body.nii.gz")
    with pytest.raises(LabelMapError, match="--anchor"):
        load_external_segmentation(path, ct)
    anchored = load_external_segmentation(path, ct, anchor="L3")  # the most caudal body is L3
    assert np.array_equal(anchored.labels, bodies)
    assert any("anchor" in w for w in anchored.warnings)
    named = load_external_segmentation(path, ct, vertebrae_path=_write(whole, tmp_path / "whole.nii.gz"))
    assert np.array_equal(named.labels, bodies)
    with pytest.raises(LabelMapError, match="do not fit"):
        load_external_segmentation(path, ct, anchor="C2")
    with pytest.raises(LabelMapError, match="unknown vertebral level"):
        load_external_segmentation(path, ct, anchor="X9")


def test_label_map_elsewhere_in_space_names_both_files(tmp_path, ct, maps):
    _, bodies = maps
    path = _write(bodies, tmp_path / "other_patient.nii.gz", origin=(500.0, 500.0, 500.0))
    with pytest.raises(LabelMapError, match=r"other_patient\.nii\.gz does not overlap ct\.nii\.gz"):
        load_external_segmentation(path, ct)


@pytest.mark.parametrize(("array", "match"), [
    (np.full(SHAPE, 0.5, dtype=np.float32), "not integer labels"),
    (np.full(SHAPE, 300, dtype=np.int16), "outside 0-255"),
    (np.zeros(SHAPE, dtype=np.uint8), "empty"),
])
def test_invalid_label_maps_are_refused(tmp_path, ct, array, match):
    with pytest.raises(LabelMapError, match=match):
        load_external_segmentation(_write(array, tmp_path / "bad.nii.gz"), ct)


def test_unreadable_file_and_unknown_convention(tmp_path, ct, maps):
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(LabelMapError, match="cannot read the label map"):
        load_external_segmentation(tmp_path / "junk.nii.gz", ct)
    with pytest.raises(LabelMapError, match="unknown label convention"):
        load_external_segmentation(tmp_path / "junk.nii.gz", ct, convention="nnunet")


def test_works_with_a_loaded_ct(tmp_path, maps):
    """Through load_ct (NIfTI stored RAS), not just ct_from_array."""
    whole, bodies = maps
    ct_path = _write(np.zeros(SHAPE, dtype=np.int16), tmp_path / "ct.nii.gz", flip_ras=True)
    ct = load_ct(ct_path)
    seg = load_external_segmentation(_write(bodies, tmp_path / "bodies.nii.gz"), ct)
    assert np.array_equal(seg.labels, bodies)


def test_an_imported_map_gets_the_level_checks(tmp_path):
    """A body map holding two levels as one (another tool missed a disc): the imported body is reported too tall and
    not planned, as on pvp-plan's own segmentation; the map names each level itself, so the other names stand."""
    from pvp_plan.plan.session import not_plannable_reason
    from pvp_plan.segment.implausible_levels import CONFIDENCE_MERGED

    spacing = (2.0, 1.0, 1.0)
    labels = np.zeros((100, 40, 40), np.uint8)
    z = 3
    for label, height_mm in ((24, 28.0), (23, 56.0), (22, 26.0), (21, 25.0)):  # L5, "L4" (two levels), L3, L2
        n = int(height_mm / spacing[0])
        labels[z:z + n, 5:35, 5:35] = label
        z += n + 3
    ct = ct_from_array(np.zeros(labels.shape, np.int16), spacing_mm=spacing, origin_lps_mm=ORIGIN, name="ct.nii.gz")
    seg = load_external_segmentation(_write(labels, tmp_path / "bodies.nii.gz", spacing=spacing), ct,
                                     convention="verse-bodies")
    assert seg.body("L4").segmentation_confidence == CONFIDENCE_MERGED
    (warning,) = [w for w in seg.warnings if w.startswith("pvp-plan segmentation check: L4 is ")]
    assert warning.endswith("check the label map") and "--anchor" not in warning
    assert [b.level.value for b in seg.bodies if not_plannable_reason(b)] == ["L4"]
    # the same bodies as a TotalSegmentator vertebrae_body map named upward from an anchor on the lowest body:
    # counted names, uncertain from the merged body up (the anchor vouches for its own side only)
    counted = load_external_segmentation(_write((labels > 0).astype(np.uint8), tmp_path / "vertebrae_body.nii.gz",
                                                spacing=spacing), ct, anchor="L5")
    assert counted.body("L4").segmentation_confidence == CONFIDENCE_MERGED
    assert [b.level.value for b in counted.bodies if b.level_confidence <= 0.4] == ["L2", "L3", "L4"]
    assert not_plannable_reason(counted.body("L5")) is None
    assert any(w.startswith("pvp-plan segmentation check: L4 is ") and "--anchor" in w for w in counted.warnings)
