"""Synthetic thoracolumbar CT phantom with exact ground truth (issue 2, "Sample data with ground truth").

>>> from pvp_plan.sample_data import generate_phantom, write_phantom
>>> ph = generate_phantom()                        # doctest: +SKIP
>>> ph.truth["levels"]["L1"]["pathology"]["type"]  # doctest: +SKIP
'wedge'

``load_sample()``, ``sample_dicom_dir()`` and ``sample_nifti_path()`` give the committed sample in
``sample_data/phantom/`` (regenerated into a cache folder when it is absent).
"""

from pvp_plan.sample_data.anatomy import DEFAULT_LEVELS, Curvature
from pvp_plan.sample_data.paint import OSTEOPOROTIC_BONE_HU
from pvp_plan.sample_data.phantom import (
    DEFAULT_PATHOLOGY,
    MATERIALS_HU,
    PATHOLOGY_DEFAULTS,
    PATHOLOGY_TYPES,
    Phantom,
    generate_phantom,
)
from pvp_plan.sample_data.sample import (
    SAMPLE_KWARGS,
    load_sample,
    sample_dicom_dir,
    sample_nifti_path,
    sample_truth_path,
)
from pvp_plan.sample_data.write import write_phantom

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_PATHOLOGY",
    "MATERIALS_HU",
    "OSTEOPOROTIC_BONE_HU",
    "PATHOLOGY_DEFAULTS",
    "PATHOLOGY_TYPES",
    "SAMPLE_KWARGS",
    "Curvature",
    "Phantom",
    "generate_phantom",
    "load_sample",
    "sample_dicom_dir",
    "sample_nifti_path",
    "sample_truth_path",
    "write_phantom",
]
