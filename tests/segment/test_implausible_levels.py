"""Levels merged or lost where a disc was missed (pvp_plan.segment.implausible_levels)."""

from __future__ import annotations

import numpy as np
import pytest

from pvp_plan.io import ct_from_array
from pvp_plan.levels import Level
from pvp_plan.plan.session import not_plannable_reason
from pvp_plan.segment import Segmentation, segment_vertebral_bodies
from pvp_plan.segment.implausible_levels import (
    CONFIDENCE_MERGED,
    SPLIT_RATIO,
    TALL_RATIO,
    body_heights_mm,
    gaps,
    too_close,
    too_tall,
)


def _stack(heights_mm: list[float], spacing_mm=(2.0, 1.0, 1.0), gaps_mm: list[float] | None = None) -> Segmentation:
    """Boxes 30 x 30 mm in-plane, ``heights_mm`` tall, 6 mm apart (or ``gaps_mm`` above each), named upward from
    L5."""
    sz = spacing_mm[0]
    gaps_mm = gaps_mm or [6.0] * len(heights_mm)
    nz = int(sum(h + g for h, g in zip(heights_mm, gaps_mm)) / sz) + 6
    labels = np.zeros((nz, 40, 40), np.uint8)
    z = 3
    for k, (h, g) in enumerate(zip(heights_mm, gaps_mm)):  # caudal to cranial: L5 (24), L4 (23), ...
        n = int(round(h / sz))
        labels[z:z + n, 5:35, 5:35] = 24 - k
        z += n + int(g / sz)
    ct = ct_from_array(np.zeros(labels.shape, np.int16), spacing_mm=spacing_mm)
    return Segmentation.from_label_map(labels, ct, method="boxes")


def test_heights_are_read_along_the_spine_in_mm():
    seg = _stack([28.0, 26.0, 24.0])
    heights = body_heights_mm(seg.labels, seg.spacing_mm, seg.bodies)
    assert [round(heights[b.label]) for b in seg.bodies] == [24, 26, 28]  # cranial to caudal: L3, L4, L5


def test_a_body_twice_its_neighbours_height_is_flagged_and_only_it():
    seg = _stack([28.0, 56.0, 26.0, 25.0])  # L4 holds two levels
    flagged = too_tall(seg.labels, seg.spacing_mm, seg.bodies)
    assert list(flagged) == [23]
    height, neighbour, neighbour_height = flagged[23]
    assert neighbour == "L3" and height > TALL_RATIO * neighbour_height  # of L5, L3, L2: the tallest left out


def test_a_normal_body_beside_a_vertebra_plana_is_not_flagged():
    """Compared with its taller neighbour, a body next to a collapsed one (8 mm) is not taken for two levels."""
    seg = _stack([28.0, 27.0, 8.0, 26.0])
    assert too_tall(seg.labels, seg.spacing_mm, seg.bodies) == {}


def test_bodies_too_far_apart_are_reported_as_a_gap():
    seg = _stack([28.0, 27.0, 26.0, 25.0])
    assert gaps(seg.bodies) == []
    labels = seg.labels.copy()
    labels[labels == 22] = 0  # L3 lost
    ct = ct_from_array(np.zeros(labels.shape, np.int16), spacing_mm=seg.spacing_mm)
    lost = Segmentation.from_label_map(labels, ct, method="boxes")
    ((upper, lower, distance, median),) = gaps(lost.bodies)
    assert (upper, lower) == ("L2", "L4") and distance > 1.6 * median


@pytest.fixture(scope="module")
def disc_missed():
    """The 3 mm phantom segmented with its L3/L4 disc dropped from the disc search (as when neither endplates nor
    an HU valley show it)."""
    from pvp_plan.sample_data import generate_phantom
    from pvp_plan.segment import vertebral_bodies as vb

    ph = generate_phantom(seed=1, spacing_mm=(3.0, 1.0, 1.0))
    disc = next(d for d in ph.truth["discs"] if d["between"] == ["L3", "L4"])
    disc_ct_z = float(ph.ct.lps_to_index(np.array(disc["center_lps_mm"]))[0])
    found = vb.find_disc_slices

    def without_l3_l4(hu, sp, core, track, options):
        discs, profile = found(hu, sp, core, track, options)
        at_mm = np.array(discs) * sp[0] - disc_ct_z * ph.ct.spacing_mm[0]
        assert np.abs(at_mm).min() < 6.0  # the disc was found: drop it
        return [z for z, d in zip(discs, at_mm) if abs(d) >= 6.0], profile

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vb, "find_disc_slices", without_l3_l4)
        return ph, segment_vertebral_bodies(ph.ct)


def test_a_level_lost_where_a_disc_was_missed_is_reported(disc_missed):
    """Without its L3/L4 disc the phantom's L3 and L4 fall in one segment, of which the larger part is kept: L3 is
    lost and the names above are one level off. The naming cross-check calls it transitional anatomy; the spacing
    check says where a level is missing."""
    ph, seg = disc_missed
    assert len(seg.bodies) == 7  # one body fewer than the phantom's eight
    (gap,) = [w for w in seg.warnings if "may not have been found" in w]
    truth_of = {b.level.value: int(np.bincount(ph.body_labels[seg.labels == b.label]).argmax()) for b in seg.bodies}
    upper, lower = gap.split("centroids of ")[1].split(" lie")[0].split(" and ")
    assert (truth_of[upper], truth_of[lower]) == (21, 23)  # the phantom's L2 and L4, with its L3 lost between
    # names one level off on one side: no body is planned until a level is confirmed
    assert all("level name uncertain" in not_plannable_reason(b) for b in seg.bodies if not b.cut_by_fov)


def test_a_body_holding_two_levels_is_not_planned():
    """Through the segmenter's last step (``_named``): the tall body gets a segmentation confidence under the
    planning minimum, with a warning naming it; the names on one side of it are one level off, so every name is
    uncertain until a level is confirmed (session 13: before, the neighbours stayed plannable)."""
    from pvp_plan.segment.naming import Naming
    from pvp_plan.segment.vertebral_bodies import _named

    stack = _stack([28.0, 56.0, 26.0, 25.0])  # L5, then two levels as one, then two more
    segments = np.where(stack.labels > 0, 24 - stack.labels.astype(int), -1)  # segment 0 = the lowest body
    ct = ct_from_array(np.zeros(stack.labels.shape, np.int16), spacing_mm=stack.spacing_mm)
    box = tuple(slice(0, n) for n in ct.shape)
    seg = _named(segments, box, ct, [0, 1, 2, 3], set(), Naming(lowest=Level.L5, confidence=0.95))
    reasons = {b.level.value: not_plannable_reason(b, voxel_volume_ml=ct.voxel_volume_ml) for b in seg.bodies}
    assert seg.body("L4").segmentation_confidence == CONFIDENCE_MERGED
    assert [b.level.value for b in seg.bodies if b.segmentation_confidence < 0.5] == ["L4"]
    assert all("level name uncertain" in r for r in reasons.values())
    assert any(w.startswith("pvp-plan segmentation check: L4 is ") for w in seg.warnings)


def test_a_body_half_again_as_tall_as_its_neighbours_is_flagged():
    """Half a level joined to a body (its disc found inside the next body) reads about 1.5 times as tall; correct
    segmentations of the phantoms and the shared CT read at most 1.2."""
    seg = _stack([28.0, 42.0, 27.0, 26.0])
    assert list(too_tall(seg.labels, seg.spacing_mm, seg.bodies)) == [23]
    assert too_tall(*_args(_stack([28.0, 33.0, 27.0, 26.0]))) == {}  # a fifth taller: within the spread


def test_a_body_cut_by_the_field_of_view_is_judged_but_not_a_yardstick():
    """A body cut by the field of view can only be shorter than whole: over the ratio, it holds two levels (the
    3 mm abdomen resampled to 0.8 x 0.8 x 1 mm with noise: T12 and L1 as one body, cut at the top, 2 x L1's
    height). It is never the yardstick for its neighbours."""
    from dataclasses import replace

    seg = _stack([28.0, 27.0, 26.0, 56.0])
    cut = tuple(replace(b, cut_by_fov=b.level == Level.L2) for b in seg.bodies)
    assert list(too_tall(seg.labels, seg.spacing_mm, cut)) == [Level.L2.label]
    seg = _stack([28.0, 27.0, 26.0, 56.0, 25.0])  # the tall L2 cut, L1 above: L1 is compared with L3 and L4 only
    cut = tuple(replace(b, cut_by_fov=b.level == Level.L2) for b in seg.bodies)
    assert list(too_tall(seg.labels, seg.spacing_mm, cut)) == [Level.L2.label]


def _args(seg: Segmentation):
    return seg.labels, seg.spacing_mm, seg.bodies


def test_names_across_a_lost_level_are_not_planned():
    """Through ``_named``: the sacrum and ribs agreed (confidence 0.95), yet a level is missing between two bodies;
    every name is then as uncertain as transitional anatomy, so nothing is planned before ``--anchor``."""
    from pvp_plan.segment.naming import CONFIDENCE_TRANSITIONAL, Naming
    from pvp_plan.segment.vertebral_bodies import _named

    stack = _stack([28.0, 27.0, 26.0, 25.0, 24.0])
    labels = stack.labels.copy()
    labels[labels == 22] = 0  # the third body lost
    kept = (24, 23, 21, 20)  # caudal to cranial
    segments = np.full(labels.shape, -1)
    for k, lab in enumerate(kept):
        segments[labels == lab] = k
    ct = ct_from_array(np.zeros(labels.shape, np.int16), spacing_mm=stack.spacing_mm)
    box = tuple(slice(0, n) for n in ct.shape)
    seg = _named(segments, box, ct, [0, 1, 2, 3], set(), Naming(lowest=Level.L5, confidence=0.95))
    assert [b.level.value for b in seg.bodies] == ["L2", "L3", "L4", "L5"]  # counted up from L5 across the gap
    assert all(b.level_confidence <= CONFIDENCE_TRANSITIONAL for b in seg.bodies)
    assert all("level name uncertain" in not_plannable_reason(b) for b in seg.bodies)
    assert any("the centroids of L3 and L4" in w for w in seg.warnings)


def test_one_level_cut_in_two_is_flagged():
    """A disc found inside a body cuts it into two halves whose centroids lie about half the usual spacing apart: both
    halves are not planned and no name is trusted; a vertebra plana brings its neighbours only ~0.75 times closer."""
    from pvp_plan.segment.implausible_levels import checked

    seg = _stack([28.0, 13.0, 13.0, 26.0, 25.0], gaps_mm=[6.0, 0.0, 6.0, 6.0, 6.0])  # L4 and L3 are one level
    ((upper, lower, distance, median),) = too_close(seg.bodies)
    assert (upper, lower) == ("L3", "L4") and distance < SPLIT_RATIO * median
    bodies, warnings = checked(seg.labels, seg.spacing_mm, seg.bodies)
    assert {b.level.value for b in bodies if b.segmentation_confidence == CONFIDENCE_MERGED} == {"L3", "L4"}
    assert all(b.level_confidence <= 0.4 for b in bodies) and "cut in two" in warnings[0]
    assert too_close(_stack([28.0, 27.0, 8.0, 26.0, 25.0]).bodies) == []
    assert too_close(_stack([28.0, 27.0, 26.0, 25.0]).bodies) == []


def test_two_tall_bodies_side_by_side_do_not_vouch_for_each_other():
    """An L4 holding the upper half of L5 above an L5 holding its lower half and S1 (both ~1.6 times their
    neighbours): compared with the tallest neighbour, each would have the other; with the tallest of three or more
    neighbours left out, L4 is flagged (which caps every name)."""
    seg = _stack([47.0, 50.0, 29.0, 30.0, 28.0])
    assert 23 in too_tall(seg.labels, seg.spacing_mm, seg.bodies)
    assert too_tall(*(lambda s: (s.labels, s.spacing_mm, s.bodies))(_stack([28.0, 29.0, 30.0, 29.0, 28.0]))) == {}


def test_a_body_far_above_the_column_trend_is_flagged():
    """Heights grow steadily down the column: a top body of 36 mm over bodies of 21-30 mm passes the neighbour
    yardstick (its only whole neighbours, 30 and 21 mm) but not the column's trend (about 20 mm at its level); as on
    the shared chest CT, whose T4 reads 36 mm among 21-26 mm thoracic bodies."""
    from pvp_plan.segment.implausible_levels import TREND

    seg = _stack([26.0, 25.0, 24.0, 23.0, 22.0, 21.0, 30.0, 36.0])  # L5 ... T11, T10
    flagged = too_tall(seg.labels, seg.spacing_mm, seg.bodies)
    assert list(flagged) == [17]
    height, yardstick, expected = flagged[17]
    assert yardstick == TREND and height > TALL_RATIO * expected
    assert too_tall(*(lambda s: (s.labels, s.spacing_mm, s.bodies))(_stack([26.0, 25.0, 24.0, 23.0, 22.0, 21.0,
                                                                             22.0, 20.0]))) == {}


def test_a_named_level_vouches_only_for_the_names_on_its_side_of_a_merged_body():
    """After ``--anchor`` the checks are read again under the new names. Naming the lowest body L5 (below a body
    holding two levels) leaves every name above the merged body uncertain: counted across it, they are one level off
    (session 14: every name became certain, and the warning still named the levels as they were before)."""
    from pvp_plan.segment.implausible_levels import ANCHORED_TAIL
    from pvp_plan.segment.naming import CONFIDENCE_TRANSITIONAL, Naming
    from pvp_plan.segment.vertebral_bodies import _named, _relabelled

    stack = _stack([28.0, 56.0, 26.0, 25.0, 24.0])  # L5, two levels as one, three more
    segments = np.where(stack.labels > 0, 24 - stack.labels.astype(int), -1)
    ct = ct_from_array(np.zeros(stack.labels.shape, np.int16), spacing_mm=stack.spacing_mm)
    seg = _named(segments, tuple(slice(0, n) for n in ct.shape), ct, [0, 1, 2, 3, 4], set(),
                 Naming(lowest=Level.L5, confidence=0.95))

    def confidences(anchor: str):
        named = _relabelled(seg, ct, anchor)
        return {b.level.value: b.level_confidence for b in named.bodies}, named.warnings

    below, warnings = confidences("L5:1")
    assert below["L5"] == 1.0
    assert all(below[name] <= CONFIDENCE_TRANSITIONAL for name in ("L4", "L3", "L2", "L1"))
    assert any(w.startswith("pvp-plan segmentation check: L4 is ") and w.endswith(ANCHORED_TAIL) for w in warnings)
    above, warnings = confidences("L1:4")  # the 4th body from the bottom is L1: the merged body becomes L3
    assert [above[name] for name in ("L2", "L1", "T12")] == [1.0, 1.0, 1.0]
    assert above["L3"] <= CONFIDENCE_TRANSITIONAL and above["L4"] <= CONFIDENCE_TRANSITIONAL
    checks = [w for w in warnings if w.startswith("pvp-plan segmentation check")]
    assert len(checks) == 1 and checks[0].startswith("pvp-plan segmentation check: L3 is ")


@pytest.mark.parametrize(("anchored", "span", "beyond"), [
    (1, (3, 3, True), {3, 4, 5}),  # a merged body above the named one: it and the bodies past it
    (5, (3, 3, True), {1, 2, 3}),
    (3, (3, 3, True), {1, 2, 4, 5}),  # the named body is the merged one: all others
    (2, (2, 3, False), {3, 4, 5}),  # a level lost between 2 and 3, named from 2
    (3, (2, 3, False), {1, 2}),
    (1, (3, 4, True), {3, 4, 5}),  # one level cut in two (3 and 4)
])
def test_the_names_counted_across_a_finding_from_the_named_body(anchored, span, beyond):
    from pvp_plan.segment.implausible_levels import beyond_finding

    assert beyond_finding([1, 2, 3, 4, 5], anchored, span) == beyond
