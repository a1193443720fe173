"""napari plugin for pvp-plan: review, correct and re-plan interactively (issue 6).

A thin layer over :mod:`pvp_plan`: no clinical logic lives here.
"""

__all__: list[str] = []
