"""Synthetic thoracolumbar CT phantom with exact ground truth (issue 2, "Sample data with ground truth").

>>> from pvp_plan.sample_data import generate_phantom
>>> ph = generate_phantom()            # doctest: +SKIP
>>> ph.truth["levels"]["L1"]["pathology"]["type"]   # doctest: +SKIP
'wedge'
"""

from pvp_plan.sample_data.anatomy import DEFAULT_LEVELS, Curvature
from pvp_plan.sample_data.phantom import (
    DEFAULT_PATHOLOGY,
    MATERIALS_HU,
    PATHOLOGY_DEFAULTS,
    PATHOLOGY_TYPES,
    Phantom,
    generate_phantom,
)

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_PATHOLOGY",
    "MATERIALS_HU",
    "PATHOLOGY_DEFAULTS",
    "PATHOLOGY_TYPES",
    "Curvature",
    "Phantom",
    "generate_phantom",
]
