"""Vertebral-body segmentation and level naming: :func:`segment_vertebral_bodies`, :func:`relabel`.

External label maps (TotalSegmentator, VerSe, DICOM SEG) come in through
:func:`pvp_plan.segment.external.load_external_segmentation`.
"""

from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.naming import parse_anchor, relabel
from pvp_plan.segment.types import BodyInfo, Segmentation
from pvp_plan.segment.vertebral_bodies import segment_vertebral_bodies

__all__ = ["BodyInfo", "ColumnOptions", "Segmentation", "parse_anchor", "relabel", "segment_vertebral_bodies"]
