"""Transpedicular needle path planning (issue 5)."""

from pvp_plan.needle.draw import needle_layer_data, project_path_on_axial, project_path_on_sagittal
from pvp_plan.needle.planner import plan_level_needle_paths
from pvp_plan.needle.types import NeedlePath, PedicleMeasurement

__all__ = ["NeedlePath", "PedicleMeasurement", "needle_layer_data", "plan_level_needle_paths",
           "project_path_on_axial", "project_path_on_sagittal"]
