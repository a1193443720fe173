"""Body split on the sample phantom, whose whole-vertebra and body masks are exact (uneven 3 x 0.7 x 0.7 mm)."""

from __future__ import annotations

import numpy as np
import pytest

from pvp_plan.levels import Level
from pvp_plan.segment.external import split_vertebral_bodies

sample_data = pytest.importorskip("pvp_plan.sample_data")


def test_split_matches_the_phantom_bodies():
    phantom = sample_data.generate_phantom(levels=("L1", "L2", "L3"), spacing_mm=(3.0, 0.7, 0.7), pathology={})
    split = split_vertebral_bodies(phantom.masks["vertebra_labels"], spacing_mm=phantom.ct.spacing_mm)
    for level in ("L1", "L2", "L3"):
        ours, truth = split == Level(level).label, phantom.body_mask(level)
        dice = 2 * np.count_nonzero(ours & truth) / (np.count_nonzero(ours) + np.count_nonzero(truth))
        ratio = np.count_nonzero(ours) / np.count_nonzero(truth)
        assert dice >= 0.93, f"{level}: Dice {dice:.3f}"
        assert 0.88 <= ratio <= 1.05, f"{level}: volume ratio {ratio:.3f}"
