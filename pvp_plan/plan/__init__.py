"""Clinical planning of one level: apply the rules in :mod:`pvp_plan.rules` to the measurements.

See :func:`pvp_plan.pipeline.plan_case` for the whole case.
"""

from pvp_plan.plan.level import assess_level
from pvp_plan.plan.types import CollapseAssessment, DensityAssessment, FillGuidance, LevelPlan, WallBreach

__all__ = ["CollapseAssessment", "DensityAssessment", "FillGuidance", "LevelPlan", "WallBreach", "assess_level"]
