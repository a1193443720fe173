"""Real CT planned end to end with the automatic segmentation (../shared/data): no false findings.

Both scans are believed free of pathology at the planned levels (abdomen L1-L5; chest T4-T12, T3 and L1 cut by
the field of view). The automatic body outline differs from TotalSegmentator's: its posterior wall follows the
concave wall and the basivertebral foramen, which a wall check must not read as a bulge into the canal.
"""

from __future__ import annotations

import functools

import pytest

from pvp_plan.pipeline import PlanOptions, plan_case
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data


@functools.lru_cache(maxsize=2)
def _plan(case: str):
    from pvp_plan.io import load_ct

    return plan_case(load_ct(shared_path(case, "ct.nii.gz")), options=PlanOptions(plan_needles=False))


@pytest.mark.parametrize("case", ["abdomen_3mm", "thorax_1p5mm"])
def test_no_posterior_wall_breach_on_normal_levels(case):
    """With the wall line read per column at the 75th percentile alone, the concave posterior wall of the
    abdomen's L1 (middle 8 mm in front of its ends) read as a 'protrusion into the canal' over 14 % of the
    wall, and L5's over 9 %."""
    plan = _plan(case)
    assessed = [lp for lp in plan.levels if lp.wall is not None and lp.wall.missing_fraction is not None]
    assert len(assessed) >= 5
    assert [lp.level for lp in assessed if lp.wall.flag] == []


@pytest.mark.parametrize("case", ["abdomen_3mm", "thorax_1p5mm"])
def test_no_lytic_or_sclerotic_density_on_normal_levels(case):
    """The lytic search measures its cortex margin from the body's closed outline (front bays closed), so soft
    tissue in a bay of the automatic outline, or partial volume at an end slice, comes closer to the search: on
    these normal levels the largest soft-tissue cluster stays far under the 1.5 % rule (session 9: abdomen at most
    0.54 %, chest 0.26 %)."""
    plan = _plan(case)
    assessed = [lp for lp in plan.levels if lp.density is not None]
    assert len(assessed) >= 5
    assert [lp.level for lp in assessed if lp.density.density_class in ("lytic", "sclerotic", "mixed")] == []
    assert max(lp.density.lytic_cluster_fraction for lp in assessed) < 0.01
