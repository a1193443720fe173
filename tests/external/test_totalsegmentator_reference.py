"""TotalSegmentator's own masks on the real abdominal CT (../shared/data/abdomen_3mm; skipped when absent).

Measured (pvp-plan 0.1.0): per-level body map -> volumes identical to the spine report (0.0%);
bodies split from the whole-vertebra map -> Dice T12 0.93, L1 0.93, L2 0.94, L3 0.94, L4 0.95, L5 0.88,
volumes -1.9% (T12), -2.1%, +4.5%, +0.8%, +5.7%, +16.3% (L5) against the per-level body map.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pvp_plan.errors import LabelMapError
from pvp_plan.io import load_ct
from pvp_plan.pipeline import PlanOptions, plan_case
from pvp_plan.segment.external import load_external_segmentation
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data
LUMBAR = ("L1", "L2", "L3", "L4", "L5")


@pytest.fixture(scope="module")
def case():
    root = shared_path("abdomen_3mm")
    ct = load_ct(root / "ct.nii.gz")
    report = json.loads((root / "reference" / "totalseg_spine_report.json").read_text())["results"]
    reference = load_external_segmentation(root / "reference" / "totalseg_vertebral_bodies_per_level.nii.gz", ct)
    return root / "reference", ct, report, reference


def test_planning_on_totalsegmentator_bodies_reproduces_its_volumes(case):
    _, ct, report, reference = case
    assert reference.method.startswith("external: VerSe body map")  # auto-detected: VerSe-numbered bodies
    plan = plan_case(ct, options=PlanOptions(plan_needles=False), segmentation=reference)
    volumes = {lp.level: lp.body_volume_ml for lp in plan.levels if lp.plannable}
    assert set(volumes) == set(LUMBAR)  # T12 touches the field of view: not plannable, volume None
    assert plan.level("T12").body_volume_ml is None
    for level in LUMBAR:
        assert volumes[level] == pytest.approx(report[f"vertebrae_{level}_volume_ml"], rel=0.01)


def test_bodies_split_from_whole_vertebrae_match_the_body_map(case):
    ref_dir, ct, _, reference = case
    split = load_external_segmentation(ref_dir / "totalseg_total_vertebrae.nii.gz", ct)
    assert split.method.startswith("external: TotalSegmentator total")
    assert any("T11" in w for w in split.warnings)  # only a sliver of T11: left out, said so
    for level in ("T12", *LUMBAR):
        ours, theirs = split.mask(level), reference.mask(level)
        dice = 2 * np.count_nonzero(ours & theirs) / (np.count_nonzero(ours) + np.count_nonzero(theirs))
        ratio = np.count_nonzero(ours) / np.count_nonzero(theirs)
        assert dice >= 0.85, f"{level}: Dice {dice:.3f}"
        # L5 (lumbosacral tilt, large transverse processes) measures +16%; the others within 12%
        assert abs(ratio - 1) <= (0.20 if level == "L5" else 0.12), f"{level}: volume ratio {ratio:.3f}"


@pytest.mark.parametrize("how", ["whole-vertebra map", "anchor S1"])
def test_vertebrae_body_output_is_named_by_whole_map_or_anchor(case, how):
    ref_dir, ct, _, reference = case
    path = ref_dir / "totalseg_vertebrae_body.nii.gz"
    kwargs = ({"vertebrae_path": ref_dir / "totalseg_total_vertebrae.nii.gz"} if how == "whole-vertebra map"
              else {"anchor": "S1"})
    seg = load_external_segmentation(path, ct, **kwargs)
    assert set(LUMBAR) <= {lv.value for lv in seg.levels}
    for level in LUMBAR:
        ours, theirs = seg.mask(level), reference.mask(level)
        assert 2 * np.count_nonzero(ours & theirs) / (np.count_nonzero(ours) + np.count_nonzero(theirs)) >= 0.85


def test_vertebrae_body_output_alone_is_refused(case):
    ref_dir, ct, _, _ = case
    with pytest.raises(LabelMapError, match="--anchor"):
        load_external_segmentation(ref_dir / "totalseg_vertebrae_body.nii.gz", ct)
