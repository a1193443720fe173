"""Tests of pvp_plan.segment (issue 3) on the ground-truth phantom and the shared real CT.

Floors asserted here are what the spine-column method achieves today (regressions fail); the
issue's own targets that it does not meet yet are ``xfail(strict=True)``, so meeting one turns
the suite red until the marker is removed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from pvp_plan.errors import SegmentationError
from pvp_plan.io import ct_from_array, load_ct
from pvp_plan.levels import TOTALSEGMENTATOR_TOTAL_LABELS, Level
from pvp_plan.segment import Segmentation, naming, parse_anchor, relabel, segment_vertebral_bodies
from tests.conftest import dice, shared_path
from tests.needle.real_cases import labels, reference_level, resampled


def reference_map(*parts: str) -> np.ndarray:
    """A label map of the shared data on the internal (LPS, z y x) grid (``real_cases.labels``)."""
    return labels(shared_path(*parts))


# ---------------------------------------------------------------- bad input

def test_soft_tissue_only_raises_no_canal():
    ct = ct_from_array(np.full((60, 80, 80), 40, np.int16), spacing_mm=(2.0, 2.0, 2.0))
    with pytest.raises(SegmentationError, match="spinal canal"):
        segment_vertebral_bodies(ct)


def test_head_like_bone_ring_raises():
    zz, yy, xx = np.mgrid[:60, :100, :100]
    r = np.hypot((yy - 50) / 45.0, (xx - 50) / 38.0)
    hu = np.where(r < 0.9, 35, -1000).astype(np.int16)
    hu[(r >= 0.82) & (r < 0.9)] = 1200
    with pytest.raises(SegmentationError):
        segment_vertebral_bodies(ct_from_array(hu, spacing_mm=(2.0, 2.0, 2.0)))


def test_thin_slab_raises_with_the_fix():
    ct = ct_from_array(np.full((3, 100, 100), 40, np.int16), spacing_mm=(1.0, 1.0, 1.0))
    with pytest.raises(SegmentationError, match="full series"):
        segment_vertebral_bodies(ct)


def test_real_head_ct_raises(shared_data):
    ct = load_ct(shared_path("dicom_edge_cases", "philips_head_mixed_series_one_folder"))
    with pytest.raises(SegmentationError):
        segment_vertebral_bodies(ct)


# ---------------------------------------------------------------- naming override

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
    assert all(b.level_confidence == 1.0 for b in new.bodies)


def test_relabel_by_z():
    seg, ct = _three_boxes()
    new = relabel(seg, ct, anchor="T12:z=74")  # top body centre z = 74.5
    assert [b.level.value for b in new.bodies] == ["T12", "L1", "L2"]


# ---------------------------------------------------------------- phantom (ground truth)

PHANTOM_CASES = [(0, (2.0, 0.8, 0.8)), (1, (3.0, 1.0, 1.0))]


@pytest.fixture(scope="module", params=PHANTOM_CASES, ids=lambda p: f"seed{p[0]}-{p[1][0]}mm")
def phantom_segmented(request):
    from pvp_plan.sample_data import generate_phantom

    seed, spacing = request.param
    ph = generate_phantom(seed=seed, spacing_mm=spacing)
    return ph, segment_vertebral_bodies(ph.ct)


def test_phantom_every_level_found_and_named_from_the_sacrum_and_the_lowest_rib(phantom_segmented):
    ph, seg = phantom_segmented
    assert [b.level.value for b in seg.bodies] == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert all(b.level_confidence == naming.CONFIDENCE_SACRUM_AND_RIBS for b in seg.bodies)
    assert not seg.warnings


@pytest.fixture(scope="module", params=[(2.0, 0.8, 0.8), (3.0, 1.0, 1.0)], ids=lambda p: f"{p[0]}mm")
def osteoporotic_segmented(request):
    """The phantom (its pathologies planted) with osteoporotic bone: trabecular bone at 80 HU, as dense as the
    discs, inside a cortex thinned to 700 HU (``OSTEOPOROTIC_BONE_HU``); PVP is mostly done on such spines."""
    from pvp_plan.sample_data import OSTEOPOROTIC_BONE_HU, generate_phantom

    ph = generate_phantom(seed=0, spacing_mm=request.param, materials_hu=OSTEOPOROTIC_BONE_HU)
    return ph, segment_vertebral_bodies(ph.ct)


def test_osteoporotic_phantom_every_level_found_and_named(osteoporotic_segmented):
    """With no contrast between bone and disc the discs show only by their endplates, which the lordosis tilts
    across several slices: before session 12, L4, L5 and the sacrum were one body at 2 mm (T10 and T11 one body
    at 3 mm). Every body but the sclerotic T11 overlaps its truth at Dice >= 0.90 (2 mm: 0.934-0.973; 3 mm:
    0.912-0.961)."""
    ph, seg = osteoporotic_segmented
    assert [b.level.value for b in seg.bodies] == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert all(b.level_confidence == naming.CONFIDENCE_SACRUM_AND_RIBS for b in seg.bodies)
    scores = {b.level.value: dice(seg.labels == b.label, ph.body_labels == b.label) for b in seg.bodies}
    assert all(d >= 0.90 for lv, d in scores.items() if lv != "T11"), scores


@pytest.mark.xfail(strict=True, reason="session 12: a sclerotic lesion (900 HU, 86 % of the body) inside "
                                       "osteoporotic bone (80 HU) under a 700 HU cortex: T11 reads -15 % at 2 mm and "
                                       "-28 % at 3 mm (Dice 0.89 / 0.79); the same lesion in normal bone reads within "
                                       "3 %")
def test_osteoporotic_phantom_sclerotic_body_volume(osteoporotic_segmented):
    ph, seg = osteoporotic_segmented
    t11 = next(b for b in seg.bodies if b.level.value == "T11")
    assert abs(t11.voxel_count * ph.ct.voxel_volume_ml / ph.truth["levels"]["T11"]["volume_ml"] - 1) <= 0.10


def test_phantom_bodies_overlap_the_truth(phantom_segmented):
    ph, seg = phantom_segmented
    scores = {b.level.value: dice(seg.labels == b.label, ph.body_labels == b.label) for b in seg.bodies}
    assert min(scores.values()) >= 0.78, scores
    assert min(scores[lv] for lv in ("L1", "L4", "L5")) >= 0.86, scores


def test_phantom_no_aorta_voxel_is_labelled(phantom_segmented):
    ph, seg = phantom_segmented
    assert not (seg.labels > 0)[ph.masks["aorta"] > 0].any()


def test_phantom_lytic_cavity_is_inside_the_body(phantom_segmented):
    """L3's lytic lesion breaks the cortex, so it is open to the outside and hole filling alone leaves it out
    (0.3 % of it was labelled); the convex-section defect fill adds it."""
    ph, seg = phantom_segmented
    truth_l3 = ph.body_labels == Level.L3.label
    lytic = truth_l3 & (ph.ct.hu < 80)  # the planted soft-tissue lesion inside L3
    assert lytic.sum() > 50
    assert (seg.labels[lytic] == Level.L3.label).mean() >= 0.8


def test_phantom_bone_laid_bare_by_the_lytic_lesion_is_kept(phantom_segmented):
    """Trabecular bone within 3 mm of L3's cortex-breaking lytic lesion is exposed to soft tissue without a cortex:
    it is body, not a partial-volume halo to peel (the edge rule's floor is the body threshold; with a global
    floor half-way to the bodies' 90th-percentile HU, only 29-32 % of it was kept)."""
    from scipy import ndimage

    ph, seg = phantom_segmented
    truth_l3 = ph.body_labels == Level.L3.label
    lesion = truth_l3 & (ph.ct.hu < 80)
    rim = truth_l3 & ~lesion & (ph.ct.hu > 150) & (ndimage.distance_transform_edt(~lesion, sampling=ph.ct.spacing_mm)
                                                    <= 3.0)
    assert rim.sum() > 100
    assert (seg.labels[rim] == Level.L3.label).mean() >= 0.5


def _column_ends(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0), np.argmax(mask, axis=0)


def test_phantom_end_slices_follow_the_endplates(phantom_segmented):
    """Column by column (3 voxels inside the reference's outline), a body's top and bottom slice are the reference's
    (voxel centre inside). The edge rule relative to the cortical ridge kept a slice too many at 41 % of the ends
    at 2 mm (94 % at L2's flat endplates) and 33 % at 3 mm, in step with the endplates' tilt: the ridge along z
    is a slice diluted by the thin endplate. Fitted to a partial-volume model of the slice, 18 % and 21 %."""
    from scipy import ndimage

    ph, seg = phantom_segmented
    over, under = [], []
    for b in seg.bodies:
        if b.cut_by_fov:
            continue
        body, ref = seg.labels == b.label, ph.body_labels == b.label
        inner = ndimage.binary_erosion(ref.any(axis=0), iterations=3) & body.any(axis=0)
        (ts, bs), (tr, br) = _column_ends(body), _column_ends(ref)
        over.append(np.r_[(ts > tr)[inner], (bs < br)[inner]].mean())
        under.append(np.r_[(ts < tr)[inner], (bs > br)[inner]].mean())
    assert np.mean(over) <= 0.25 and np.mean(under) <= 0.10, (np.round(over, 2), np.round(under, 2))


@pytest.mark.xfail(strict=True, reason="issue 3 target not met yet: per-body Dice >= 0.95 on the phantom "
                                       "(2026-11-22, session 10: at 2 x 0.8 x 0.8 mm only T10, read as cut by the "
                                       "field of view, 0.947, the rest 0.954-0.973; 0.907-0.967 at 3 x 1 x 1 mm; "
                                       "met at 1 x 0.6 x 0.6 mm, test_phantom_target_dice_on_thin_slices)")
def test_phantom_target_dice(phantom_segmented):
    ph, seg = phantom_segmented
    assert all(dice(seg.labels == b.label, ph.body_labels == b.label) >= 0.95 for b in seg.bodies)


@pytest.fixture(scope="module")
def fine_segmented(fine_phantom):
    return segment_vertebral_bodies(fine_phantom.ct)


def test_phantom_target_dice_on_thin_slices(fine_phantom, fine_segmented):
    """Issue 3's Dice target (>= 0.95 per body) holds at 1 x 0.6 x 0.6 mm (session 8: 0.960-0.982, after the
    corners of the median posterior section were cut at the wall line: the pedicle roots fill most thin sections,
    and T10-T12 had read 0.948-0.970)."""
    seg = fine_segmented
    assert [b.level.value for b in seg.bodies] == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    scores = {b.level.value: dice(seg.labels == b.label, fine_phantom.body_labels == b.label) for b in seg.bodies}
    assert min(scores.values()) >= 0.95, scores


@pytest.mark.xfail(strict=True, reason="issue 3 target not met yet at 1 x 0.6 x 0.6 mm (2026-11-22, session 11: -0.1 "
                                       "to +3.3 % on this phantom, seed 2; seeds 0-3 up to +3.6 %, "
                                       "benchmarks/study_segmentation_accuracy.py)")
def test_phantom_target_volume_on_thin_slices(fine_phantom, fine_segmented):
    """Issue 3's volume target (within 3 % of the analytic body) at 1 x 0.6 x 0.6 mm, whole bodies."""
    for b in fine_segmented.bodies:
        if not b.cut_by_fov:
            truth = fine_phantom.truth["levels"][b.level.value]["volume_ml"]
            assert abs(b.voxel_count * fine_phantom.ct.voxel_volume_ml / truth - 1) <= 0.03, b.level


def test_phantom_volumes_within_10_percent(phantom_segmented):
    """The boundary sits 0.6 of the way to the cortical ridge in-plane and at the fitted endplate along z: no voxel
    layer of blurred cortex outside the body. Bodies the segmentation reports as cut by the field of view have no
    measured volume (the phantom's T10, open above: at 3 mm it reads -10 % since its end slices follow the
    endplate, its posterolateral corners cut at the pedicle slices no longer made up by a slice too many)."""
    ph, seg = phantom_segmented
    for b in seg.bodies:
        if b.cut_by_fov:
            continue
        truth = ph.truth["levels"][b.level.value]["volume_ml"]
        assert abs(b.voxel_count * ph.ct.voxel_volume_ml / truth - 1) <= 0.10, b.level


def test_phantom_target_volume(phantom_segmented, request):
    """Issue 3's volume target, within 3 % of the analytic body for every level. Met at 2 x 0.8 x 0.8 mm since
    session 8 (-2.8 to +2.3 %: the ring given back around the pedicle-root cut now holds at least a voxel; session
    10: -2.6 to +2.9 %, the end slices' interior kept for the end-slice fit)."""
    ph, seg = phantom_segmented
    if ph.ct.spacing_mm[0] >= 3.0:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="issue 3 target not met yet at 3 x 1 x 1 mm (2026-11-22, session 10: -3.4 to +2.7 %, "
                                "T10, read as cut, -2.7 %): whole 3 mm end slices are kept or dropped where a concave "
                                "endplate crosses them"))
    for b in seg.bodies:
        truth = ph.truth["levels"][b.level.value]["volume_ml"]
        assert abs(b.voxel_count * ph.ct.voxel_volume_ml / truth - 1) <= 0.03


# ---------------------------------------------------------------- real abdominal CT vs TotalSegmentator

@pytest.fixture(scope="module")
def abdomen():
    ct = load_ct(shared_path("abdomen_3mm", "ct.nii.gz"))
    return ct, segment_vertebral_bodies(ct)


@pytest.fixture(scope="module")
def abdomen_bodies_ref():
    """TotalSegmentator's per-level body labels (VerSe numbering) on the abdomen."""
    return reference_map("abdomen_3mm", "reference", "totalseg_vertebral_bodies_per_level.nii.gz")


@pytest.fixture(scope="module")
def abdomen_whole_ref():
    """TotalSegmentator's whole-vertebra labels (its ``total`` numbering) on the abdomen."""
    return reference_map("abdomen_3mm", "reference", "totalseg_total_vertebrae.nii.gz")


@pytest.fixture(scope="module")
def abdomen_report():
    return json.loads(shared_path("abdomen_3mm", "reference", "totalseg_spine_report.json").read_text())["results"]


def volume_error(ct, seg, report, level: str) -> float:
    """Relative body-volume error of ``level`` against TotalSegmentator's spine report."""
    return seg.body(level).voxel_count * ct.voxel_volume_ml / report[f"vertebrae_{level}_volume_ml"] - 1


def test_abdomen_levels_named_as_totalsegmentator(abdomen, abdomen_bodies_ref):
    _, seg = abdomen
    assert [b.level.value for b in seg.bodies] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    for b in seg.bodies:  # the same label sits on the same body
        assert dice(seg.labels == b.label, abdomen_bodies_ref == b.label) >= 0.65, b.level


def test_abdomen_t12_is_cut_by_the_field_of_view(abdomen):
    _, seg = abdomen
    assert seg.body("T12").cut_by_fov and not seg.body("L1").cut_by_fov


def test_abdomen_dice_l1_to_l4(abdomen, abdomen_bodies_ref):
    """Issue 3 target: per-level Dice >= 0.85 against TotalSegmentator (T12 is cut by the field of view; L5 below)."""
    _, seg = abdomen
    for level in ("L1", "L2", "L3", "L4"):
        label = Level(level).label
        assert dice(seg.labels == label, abdomen_bodies_ref == label) >= 0.85, level


def test_abdomen_bodies_lie_inside_the_whole_vertebra(abdomen, abdomen_whole_ref):
    _, seg = abdomen
    for level in ("T12", "L1", "L2", "L3", "L4", "L5"):
        body = seg.labels == Level(level).label
        inside = (abdomen_whole_ref[body] == TOTALSEGMENTATOR_TOTAL_LABELS[Level(level)]).mean()
        assert inside >= 0.90, (level, inside)


def test_abdomen_volumes_l1_to_l5_within_12_percent(abdomen, abdomen_report):
    """The partial-volume boundary (half-way to the body's own cortical ridge) keeps 3 mm bodies from
    growing by a voxel layer (~15% of a lumbar body)."""
    ct, seg = abdomen
    for level in ("L1", "L2", "L3", "L4", "L5"):
        assert abs(volume_error(ct, seg, abdomen_report, level)) <= 0.12, level


def test_abdomen_l5_follows_the_lumbosacral_disc(abdomen, abdomen_bodies_ref, abdomen_whole_ref):
    """The L5/S1 disc is tilted ~40 degrees: the matched disc plane keeps S1 out of L5."""
    _, seg = abdomen
    body = seg.labels == Level.L5.label
    assert dice(body, abdomen_bodies_ref == Level.L5.label) >= 0.82
    assert (abdomen_whole_ref[body] == TOTALSEGMENTATOR_TOTAL_LABELS[Level.L5]).mean() >= 0.90


def _perturbed_abdomen(ct, ref_bodies, spacing_xyz, noise_hu: float):
    """The abdomen and its reference bodies resampled to ``spacing_xyz`` (mm, x y z), with white noise (HU, seed 3)
    added to the CT, and its segmentation."""
    hu = resampled(ct.to_sitk(), spacing_xyz, sitk.sitkLinear, -1024, sitk.sitkInt16).astype(np.float64)
    hu = np.round(hu + np.random.default_rng(3).normal(0.0, noise_hu, hu.shape)) if noise_hu else hu
    ref_img = sitk.GetImageFromArray(ref_bodies.astype(np.uint8))
    ref_img.CopyInformation(ct.to_sitk())
    ref = resampled(ref_img, spacing_xyz, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    moved = ct_from_array(hu.astype(np.int16), spacing_mm=spacing_xyz[::-1], origin_lps_mm=ct.origin_lps_mm)
    return moved, ref, segment_vertebral_bodies(moved)


@pytest.mark.parametrize("spacing_xyz", [(2.0, 2.0, 2.0), (1.5, 1.5, 2.0)])
def test_abdomen_on_2mm_slices_keeps_its_names_and_outlines(abdomen, abdomen_bodies_ref, spacing_xyz):
    """Resampled to 2 mm slices, the abdomen is named T12-L5 as at 3 mm, every body plannable where whole and
    overlapping its reference level at Dice >= 0.8. Both grids fail on session 14's code:

    * 2 mm isotropic: a fake disc inside L5 (its core read on the posterior wall) outweighed the real L4/L5 disc
      6 mm above it, and the too-short gap between them was mended by striking off the weaker, the real one: L4
      and L5 became one body, S1 counted as L5 and every level was named one too high. The chain is now drawn
      again without each of the two, and the better one kept.
    * 1.5 x 1.5 x 2 mm: the same fake disc, and then the L5/S1 plane tilted 31 degrees coronally (its search
      started from the canal's direction, lost among the foramina): L5 took a wedge of S1 (47 mm tall, Dice
      0.75) and was flagged. A plane tilted coronally far more than its neighbours is now matched again from
      their tilt."""
    from pvp_plan.plan.session import not_plannable_reason

    ct, _ = abdomen
    moved, ref, seg = _perturbed_abdomen(ct, abdomen_bodies_ref, spacing_xyz, 0.0)
    assert [b.level.value for b in seg.bodies] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    for b in seg.bodies:
        truth, score = reference_level(seg, b.label, ref)
        assert truth is b.level and score >= 0.8, (b.level, truth, score)
        assert b.cut_by_fov or not_plannable_reason(b, voxel_volume_ml=moved.voxel_volume_ml) is None, b.level


@pytest.mark.parametrize(("spacing_xyz", "noise_hu"), [((1.5, 1.5, 2.0), 20.0), ((2.0, 2.0, 2.0), 20.0)])
def test_abdomen_on_other_grids_is_right_or_not_planned(abdomen, abdomen_bodies_ref, spacing_xyz, noise_hu):
    """The abdomen resampled (and noisier): every body that overlaps a reference level carries its name and
    overlaps it at Dice >= 0.7, or is not plannable (:func:`not_plannable_reason`: its name or outline is flagged).

    * 1.5 x 1.5 x 2 mm (session 13, without noise): the L4/L5 disc was found inside L5: an L4 holding L5's upper
      half (50 mm tall, Dice 0.67) over L5's lower half joined to S1 (47 mm, Dice 0.26), each the other's tallest
      neighbour; both passed at confidence 0.95 (and this test asserted 0.95). The tallest of three neighbours is
      now left out of the too-tall yardstick (and the discs are found: the test above). With 20 HU of noise L1
      holds part of T12 (Dice 0.58) and is flagged.
    * 2 mm isotropic with 20 HU of noise: the sacrum is not recognised and the ilium, joined to L5's transverse
      process, passes the rib test; ribs were also found on T12, four rib-free bodies above. Counted from that
      "rib", L5 was named T12 at confidence 0.7 (session 13). Ribs run unbroken, so the lower one is passed over and
      the names are uncertain."""
    from pvp_plan.plan.session import not_plannable_reason

    ct, _ = abdomen
    moved, ref, seg = _perturbed_abdomen(ct, abdomen_bodies_ref, spacing_xyz, noise_hu)
    for b in seg.bodies:
        judged = reference_level(seg, b.label, ref)
        if judged is None:
            continue
        truth, score = judged
        if b.level is not truth or score < 0.7:
            assert not_plannable_reason(b, voxel_volume_ml=moved.voxel_volume_ml), (b.level, truth, score)


@pytest.mark.xfail(strict=True, reason="issue 3 target not met yet: L5 Dice 0.849 (>= 0.85 wanted; 2026-11-21, session "
                                       "8, 0.847 in session 7). Redrawing the whole posterior half (the basivertebral foramen filled) "
                                       "reached 0.851-0.856, but it half-closed a tumour's bay through the posterior "
                                       "wall and the wall check then missed the phantom's L2 breach (tests/plan): "
                                       "only the corners are redrawn. For scale (session 12): TotalSegmentator's own "
                                       "two body maps agree on L5 at Dice 0.877, one voxel apart along the oblique "
                                       "lumbosacral endplate; ours against the second map reads 0.896 "
                                       "(benchmarks/study_segmentation_accuracy.py)")
def test_abdomen_target_l5_dice(abdomen, abdomen_bodies_ref):
    _, seg = abdomen
    assert dice(seg.labels == Level.L5.label, abdomen_bodies_ref == Level.L5.label) >= 0.85


@pytest.fixture(scope="module")
def thorax():
    ct = load_ct(shared_path("thorax_1p5mm", "ct.nii.gz"))
    return ct, segment_vertebral_bodies(ct)


def test_thorax_t12_named_from_the_lowest_rib_and_inside_the_reference(thorax):
    """T12 is named from its rib, but the chest CT's 180 mm field of view cuts off the ribs' course beside L1 below
    it (a rib there could be out of view): the names are uncertain until confirmed (session 13; before,
    ``CONFIDENCE_RIBS``)."""
    _, seg = thorax
    t12 = reference_map("thorax_1p5mm", "reference", "totalseg_vertebra_T12.nii.gz") > 0
    body = seg.mask("T12")
    assert body.sum() > 0 and t12[body].mean() >= 0.9
    assert seg.body("T12").level_confidence == naming.CONFIDENCE_TRANSITIONAL
    assert any("field of view cuts off the ribs" in w for w in seg.warnings)


def test_thorax_without_sacrum_names_carry_the_rib_warning(thorax):
    _, seg = thorax
    assert all(b.level_confidence < naming.CONFIDENCE_SACRUM for b in seg.bodies)
    assert any("lowest rib-bearing" in w and "--anchor" in w for w in seg.warnings)
    assert "L2" not in [b.level.value for b in seg.bodies]  # the scan ends at the top of L1


def test_thorax_no_label_lies_in_front_of_the_vertebral_column(thorax):
    """The aorta runs in front of the bodies: in the slices of T12 and below, no labelled voxel lies more than 10 mm
    in front of the reference T12's anterior surface (the L1 below it is no more than a few mm deeper; higher up the
    kyphotic column moves forward, so those slices are not tested). At the scan's lower edge the aorta touches L1;
    its contrast mixes unevenly (local SD 50-70 HU), and with a fixed 35 HU homogeneity limit ~2800 aorta voxels
    were labelled L1."""
    ct, seg = thorax
    t12 = reference_map("thorax_1p5mm", "reference", "totalseg_vertebra_T12.nii.gz") > 0
    anterior_y = int(np.flatnonzero(t12.any(axis=(0, 2)))[0])  # +y is posterior (LPS)
    margin = int(round(10.0 / ct.spacing_mm[1]))
    top = int(np.flatnonzero(t12.any(axis=(1, 2)))[-1])  # +z is superior
    assert not (seg.labels[: top + 1, : anterior_y - margin] > 0).any()


@pytest.fixture(scope="module")
def noisy_thorax(thorax):
    """The chest CT with 20 HU of white noise added (a lower-dose scan: ~30 HU in soft tissue in all)."""
    ct, _ = thorax
    hu = ct.hu + np.random.default_rng(1).normal(0.0, 20.0, ct.hu.shape)
    noisy = ct_from_array(np.round(hu).astype(np.int16), spacing_mm=ct.spacing_mm, origin_lps_mm=ct.origin_lps_mm)
    return noisy, segment_vertebral_bodies(noisy)


def test_noisy_thorax_t12_stays_out_of_the_aorta(noisy_thorax):
    """With noise, the body/vessel watershed over raw HU let T12 and L1 take in the aorta in front of them (T12
    17.3 -> 21.2 mL, 75 % inside the reference vertebra; L1 9.0 -> 19.5 mL). It floods the gradient magnitude now."""
    ct, seg = noisy_thorax
    t12 = reference_map("thorax_1p5mm", "reference", "totalseg_vertebra_T12.nii.gz") > 0
    assert t12[seg.mask("T12")].mean() >= 0.9
    anterior_y = int(np.flatnonzero(t12.any(axis=(0, 2)))[0])
    top = int(np.flatnonzero(t12.any(axis=(1, 2)))[-1])
    assert not (seg.labels[: top + 1, : anterior_y - int(round(10.0 / ct.spacing_mm[1]))] > 0).any()


def test_thorax_cut_through_t12_is_not_named_wrong_with_confidence(thorax):
    """With the scan's lowest 24 mm cut away (L1 and the lower half of T12 gone), the body on the reference T12
    is named T12, or no name is trusted (confidence under the planning minimum). The rib search needs bone from
    beside the canal to 64 mm out: on this chest CT the 180 mm field of view cuts the ribs of T8-T11 off, so with
    T12's rib cut away too, T7 passed for the lowest rib-bearing vertebra and the true T12 was named L5 at
    confidence 0.7 (session 13). Where the field of view cuts the rib search beside the bodies below the lowest rib
    found, rib-counted names are now uncertain."""
    ct, _ = thorax
    lo = 16
    origin = (ct.origin_lps_mm[0], ct.origin_lps_mm[1], ct.origin_lps_mm[2] + lo * ct.spacing_mm[0])
    seg = segment_vertebral_bodies(ct_from_array(ct.hu[lo:], spacing_mm=ct.spacing_mm, origin_lps_mm=origin))
    t12 = reference_map("thorax_1p5mm", "reference", "totalseg_vertebra_T12.nii.gz")[lo:] > 0
    on_t12 = max(seg.bodies, key=lambda b: int(t12[seg.labels == b.label].sum()))
    assert on_t12.level.value == "T12" or on_t12.level_confidence < 0.5, (on_t12.level.value, on_t12.level_confidence)


def test_thorax_body_volumes_change_smoothly_down_the_column(thorax):
    """Vertebral body volume grows steadily from T1 to L5 (neighbours differ by about a tenth), so a whole body
    reading more than 25 % off the mean of its two whole neighbours has taken or lost a slab across a disc. The
    disc planes were once matched on a window reaching past the thin thoracic bodies into the aorta: T6 read
    1346 voxels between T5's 2925 and T7's 3786."""
    _, seg = thorax
    whole = [b for b in seg.bodies if not b.cut_by_fov]
    assert [b.level.value for b in whole] == [f"T{i}" for i in range(4, 13)]
    count = [b.voxel_count for b in whole]
    off = {whole[i].level.value: round(count[i] / (0.5 * (count[i - 1] + count[i + 1])) - 1, 2)
           for i in range(1, len(whole) - 1)}
    assert all(abs(v) <= 0.25 for v in off.values()), off


def test_thorax_bodies_have_no_empty_slice_between_full_ones(thorax):
    """A slice of a body lying between two of its full slices (each at least half the body's largest) holds
    at least half of the smaller of them. The chest CT's trabecular bone reads near the body threshold: slices
    of it open to the outside through the basivertebral foramen were lost whole (T9: 56 voxels between 221
    and 252) until the holes were also filled in the sagittal and coronal planes."""
    _, seg = thorax
    for b in seg.bodies:
        area = (seg.labels == b.label).sum(axis=(1, 2))
        full = area >= 0.5 * area.max()
        for z in np.flatnonzero(area)[1:-1]:
            below, above = np.flatnonzero(full[:z]), np.flatnonzero(full[z + 1:])
            if below.size and above.size:
                assert area[z] >= 0.5 * min(area[below[-1]], area[z + 1 + above[0]]), (b.level.value, z, area[z])


# ---------------------------------------------------------------- naming from two anchors

def test_sacrum_and_rib_agree():
    named = naming.name_from_anchors(sacrum_below=True, lowest_rib_index=5)
    assert named.lowest is Level.L5 and named.confidence == naming.CONFIDENCE_SACRUM_AND_RIBS
    assert not named.warnings


@pytest.mark.parametrize("rib_index", [4, 6])
def test_sacrum_and_rib_disagree_is_reported_as_transitional(rib_index):
    named = naming.name_from_anchors(sacrum_below=True, lowest_rib_index=rib_index)
    assert named.confidence == naming.CONFIDENCE_TRANSITIONAL
    assert "transitional" in named.warnings[0] and f"{rib_index} rib-free" in named.warnings[0]


def test_rib_alone_names_t12():
    named = naming.name_from_anchors(sacrum_below=False, lowest_rib_index=2)
    assert named.lowest is Level.L2 and named.confidence == naming.CONFIDENCE_RIBS


def test_too_many_rib_free_bodies_without_a_sacrum_is_not_trusted():
    """Six rib-free bodies and no sacrum recognised: the lowest may be an unrecognised sacrum or an L6."""
    named = naming.name_from_anchors(sacrum_below=False, lowest_rib_index=6)
    assert named.confidence == naming.CONFIDENCE_UNANCHORED
    assert "6 rib-free bodies" in named.warnings[0] and "--anchor" in named.warnings[0]


def test_rib_on_the_lowest_body_is_not_trusted():
    """A rib-bearing lowest body may be T11 with T12 out of view."""
    named = naming.name_from_anchors(sacrum_below=False, lowest_rib_index=0)
    assert named.confidence == naming.CONFIDENCE_UNANCHORED


def test_rib_counted_names_are_uncertain_where_ribs_may_be_out_of_view():
    """Without the sacrum, the lowest rib found names T12 only if no rib below it could be out of view."""
    named = naming.name_from_anchors(sacrum_below=False, lowest_rib_index=2, ribs_may_be_unseen=True)
    assert named.lowest is Level.L2 and named.confidence == naming.CONFIDENCE_TRANSITIONAL
    assert "field of view" in named.warnings[0] and "--anchor" in named.warnings[0]
    # with the sacrum below, sacrum and rib still cross-check each other
    both = naming.name_from_anchors(sacrum_below=True, lowest_rib_index=5, ribs_may_be_unseen=True)
    assert both.confidence == naming.CONFIDENCE_SACRUM_AND_RIBS


def test_a_rib_below_rib_free_bodies_is_passed_over():
    """Ribs run unbroken from T1 down: a rib-bearing body with two or more rib-free bodies (rib search in view)
    between it and the next rib above is not counted as T12, and the names become uncertain."""
    bodies = list(range(10, 17))  # segment labels, lowest first
    assert naming.lowest_rib_index(bodies, {11, 16}, set()) == (6, 1)
    assert naming.lowest_rib_index(bodies, {11, 15, 16}, set()) == (5, 1)
    assert naming.lowest_rib_index(bodies, {13, 15, 16}, set()) == (3, None)  # one rib missed between: let pass
    assert naming.lowest_rib_index(bodies, {11, 16}, {12, 13, 14}) == (1, None)  # rib search cut off between
    assert naming.lowest_rib_index(bodies, {15}, set()) == (5, None)
    assert naming.lowest_rib_index(bodies, set(), set()) == (None, None)
    named = naming.name_from_anchors(sacrum_below=True, lowest_rib_index=5, passed_over_rib_index=1)
    assert named.lowest is Level.L5 and named.confidence == naming.CONFIDENCE_TRANSITIONAL
    assert "body 2 from the bottom" in named.warnings[-1] and "--anchor" in named.warnings[-1]
    alone = naming.name_from_anchors(sacrum_below=False, lowest_rib_index=8, passed_over_rib_index=1)
    assert alone.confidence == naming.CONFIDENCE_UNANCHORED and len(alone.warnings) == 2


def test_rib_view_is_cut_where_the_image_ends_near_the_spine():
    """A 180 mm wide image centred on the canal reaches 90 mm to each side: wide enough for the 64 mm rib search
    sideways, but it ends 20 mm behind the posterior wall (60 mm needed); a 300 mm image does not cut it."""
    from pvp_plan.segment.canal import CanalTrack

    sp = (2.0, 1.5, 1.5)
    slices = {0: np.arange(0, 10), 1: np.arange(10, 20)}

    def track(ny, nx, wall_y):
        n = 20
        return CanalTrack(center_yx=np.tile([wall_y + 8.0, nx / 2.0], (n, 1)), wall_y=np.full(n, wall_y),
                          seen=np.ones(n, bool), z_range=(0, n))

    assert naming.rib_view_cut((20, 120, 120), sp, slices, track(120, 120, 107.0)) == {0, 1}
    assert naming.rib_view_cut((20, 200, 200), sp, slices, track(200, 200, 100.0)) == set()
    assert naming.rib_view_cut((20, 200, 80), sp, slices, track(200, 80, 100.0)) == {0, 1}  # 60 mm each side
