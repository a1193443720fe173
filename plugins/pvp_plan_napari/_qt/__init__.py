"""Qt views of the planner (the only part of the plugin that imports Qt)."""

from pvp_plan_napari._qt.planner_widget import PlannerWidget

__all__ = ["PlannerWidget"]
