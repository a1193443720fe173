"""Vertebral-body segmentation and level naming.

``segment_vertebral_bodies(ct) -> Segmentation`` is added by the segmentation work (issue 3).
"""

from pvp_plan.segment.types import BodyInfo, Segmentation

__all__ = ["BodyInfo", "Segmentation"]
