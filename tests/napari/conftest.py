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
def phantom():
    """(ct, body_labels) of the pvp-plan phantom at coarse spacing."""
    from pvp_plan.sample_data import generate_phantom

    p = generate_phantom(seed=0, spacing_mm=COARSE_SPACING_MM)
    return p.ct, np.asarray(p.body_labels, dtype=np.uint8)


@pytest.fixture(scope="session")
def phantom_nifti(phantom, tmp_path_factory) -> Path:
    """The phantom CT written as NIfTI (LPS grid; the reader must put it back in place)."""
    import SimpleITK as sitk

    ct, _ = phantom
    path = tmp_path_factory.mktemp("phantom") / "phantom_ct.nii.gz"
    sitk.WriteImage(ct.to_sitk(), str(path))
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
