"""Disc candidates from the endplate profile (pvp_plan.segment.discs._endplate_pairs) on profiles built by hand.

The profile is, per slice, the share of the body core denser than an endplate (and the core's median HU). A disc
shows as two endplate peaks with a sparse slice between; in the lordosis an endplate is tilted and spreads over
several slices, and a dense (sclerotic) body can show two peaks with no sparse slice between. The candidates are then
chained (pvp_plan.segment.discs._chain) at the spine's pitch.
"""

from __future__ import annotations

import numpy as np

from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.discs import DiscProfile, _chain, _endplate_pairs

SLICE_MM = 2.0


def _pairs(share: list[float], median_hu: list[float] | None = None) -> list[tuple[int, float]]:
    """(disc slice, width mm) of the pairs found in a profile of endplate shares (median HU: 80 where sparse)."""
    frac = np.asarray(share, float)
    med = np.asarray(median_hu, float) if median_hu is not None else np.where(frac > 0.2, 300.0, 80.0)
    profile = DiscProfile(median_hu=med, endplate_fraction=frac, trabecular_hu=80.0, endplate_hu=180.0)
    return [(z, w) for z, w, _, _ in _endplate_pairs(profile, (0, len(frac)), SLICE_MM, ColumnOptions())]


def test_a_flat_disc_between_two_sharp_endplates():
    share = [0.0] * 10 + [0.9, 0.0, 0.0, 0.0, 0.9] + [0.0] * 10
    assert _pairs(share) == [(11, 8.0)]


def test_a_tilted_endplate_spread_over_slices_still_encloses_its_disc():
    """The osteoporotic phantom's L4/L5 at 2 mm: the L5 endplate's share peaks at its far (caudal) side and stays
    near the peak for three slices; peak to peak 16 mm (over the 15 mm limit), facing edges 8 mm apart. Missed
    before (session 12): L4, L5 and the sacrum were one body."""
    share = [0.0] * 8 + [0.31, 0.29, 0.29, 0.16, 0.0, 0.0, 0.0, 0.35, 0.61, 0.17] + [0.0] * 8
    pairs = _pairs(share)
    assert len(pairs) == 1
    z, width = pairs[0]
    assert 11 <= z <= 14 and width == 8.0  # between the facing edges (slices 10 and 14)


def test_a_dip_inside_dense_bone_is_not_a_disc():
    """A sclerotic body: the share dips from 0.89 to 0.78 for one slice, most of the core still endplate-dense.
    Taken for a disc before (session 12), it displaced the real disc next to it."""
    share = [0.0] * 6 + [0.89, 0.89, 0.89, 0.78, 0.89] + [0.0, 0.0, 0.9] + [0.0] * 6
    pairs = _pairs(share)
    assert all(not 6 <= z <= 10 for z, _ in pairs), pairs
    assert [z for z, _ in pairs] == [11]  # the real disc after the dense body


def test_a_thin_disc_between_broad_endplates_keeps_its_pair():
    """At 1.5 mm the chest's thin thoracic discs show as a shallow dip in one bright complex (0.76, 0.39, 0.45,
    0.49): the facing edges must not cross the dip."""
    share = [0.12] * 6 + [0.21, 0.76, 0.39, 0.45, 0.49, 0.13] + [0.12] * 6
    med = [120.0] * 6 + [146.0, 254.0, 162.0, 180.0, 196.0, 132.0] + [120.0] * 6
    assert [z for z, _ in _pairs(share, med)] == [8]


def test_a_body_cut_in_two_keeps_the_boundary_that_leaves_the_regular_chain():
    """The candidates of the 3 mm abdomen resampled to 2 mm (slice, width mm, weight): the real discs every 34-40
    mm, a fake one inside L5 (73) outweighing the real L4/L5 disc (84), and another low in the sacrum (59) that the
    fake one chains with. Striking off the weaker of the too-close pair (the real disc) merged L4 and L5; drawn
    again without each, the chain without the fake one is the more regular, and the real L5/S1 disc (64) comes
    back in place of the sacral one."""
    real = [(64, 4.0, 141.0), (84, 10.0, 130.0), (102, 12.0, 168.0), (120, 12.0, 142.0), (137, 10.0, 128.0),
            (154, 6.0, 114.0)]
    fake = [(59, 4.0, 141.0), (73, 6.0, 139.0)]
    assert _chain(real + fake, SLICE_MM, ColumnOptions()) == [z for z, _, _ in real]


def test_chaining_regular_candidates_keeps_them_all():
    cands = [(z, 8.0, 130.0) for z in (10, 27, 44, 62, 80)]
    assert _chain(cands, SLICE_MM, ColumnOptions()) == [10, 27, 44, 62, 80]


def test_a_fake_disc_chained_with_a_sacral_one_is_still_a_split():
    """The candidates of the 3 mm abdomen resampled to 1 mm isotropic (working grid 2 mm): a fake disc inside L5
    (73) chains with a remnant disc in the sacrum (59), gaps 28 and 22 mm, against a 31 mm median that the fake gaps
    pull down: 22 mm passed as a body. Judged by the gaps beyond its neighbours (36 mm), it is a split, and the
    chain without the fake disc takes the real L5/S1 disc (66) back."""
    cands = [(59, 4.0, 141.0), (66, 4.0, 150.0), (73, 6.0, 128.0), (76, 6.0, 128.0), (84, 8.0, 130.0),
             (93, 16.0, 84.0), (101, 12.0, 151.0), (111, 18.0, 72.0), (119, 12.0, 130.0), (130, 18.0, 62.0),
             (137, 10.0, 126.0), (144, 14.0, 126.0), (150, 4.0, 126.0)]
    assert _chain(cands, SLICE_MM, ColumnOptions()) == [66, 84, 101, 119, 137, 150]
