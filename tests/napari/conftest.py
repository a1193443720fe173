"""Fixtures of the napari plugin tests: a small phantom at coarse spacing, written to disk for the reader.

Widget tests need a display: pytest-xvfb starts a virtual X server; without napari they skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "_artifacts"
#: Coarse (z, y, x) spacing in mm: small and fast, uneven on purpose.
COARSE_SPACING_MM = (3.0, 1.5, 1.5)


@pytest.fixture(scope="session")
def phantom_object():
    """The pvp-plan phantom (``Phantom``) at coarse spacing."""
    from pvp_plan.sample_data import generate_phantom

    return generate_phantom(seed=0, spacing_mm=COARSE_SPACING_MM)


@pytest.fixture(scope="session")
def phantom(phantom_object):
    """(ct, body_labels) of the coarse phantom."""
    return phantom_object.ct, np.asarray(phantom_object.body_labels, dtype=np.uint8)


@pytest.fixture(scope="session")
def phantom_files(phantom_object, tmp_path_factory) -> dict[str, Path]:
    """The coarse phantom written by the sample-data writer: ``dicom_dir``, ``ct_nifti``, ``body_labels``..."""
    from pvp_plan.sample_data import write_phantom

    return write_phantom(phantom_object, tmp_path_factory.mktemp("phantom"), compress_dicom=False)


@pytest.fixture(scope="session")
def phantom_nifti(phantom_files) -> Path:
    return phantom_files["ct_nifti"]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
