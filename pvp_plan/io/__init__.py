"""Loading CT into an LPS-aligned :class:`CTVolume` (see :mod:`pvp_plan.io.ct_volume` for the frames)."""

from pvp_plan.io.ct_volume import CTVolume, IgnoredInput, SeriesCandidate, SeriesInfo, SourceGeometry, ct_from_array
from pvp_plan.io.load import load_ct

__all__ = [
    "CTVolume",
    "IgnoredInput",
    "SeriesCandidate",
    "SeriesInfo",
    "SourceGeometry",
    "ct_from_array",
    "load_ct",
]
