"""Shared test fixtures: where the real CT lives (skipping cleanly when absent).

Area-specific fixtures live in each sub-folder's own conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PVP_PLAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def dice(a, b) -> float:
    """Dice overlap of two boolean masks of one shape (0 when both are empty)."""
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder (see its README); skips when absent."""
    return shared_path()


# --- synthetic phantom (pvp_plan.sample_data): ground truth for every area's tests -----------------------

#: Field of view of the shared test phantom: default spacing (2.0, 0.8, 0.8) mm, cropped in-plane to stay quick
#: while keeping the posterior skin (needle entries), the aorta and the transverse processes in view.
PHANTOM_TEST_FOV_MM = (150.0, 165.0)


@pytest.fixture(scope="session")
def phantom():
    """The default synthetic phantom (T10-L5 + sacrum, default pathology, seed 0), generated once per session.

    See ``pvp_plan.sample_data.generate_phantom`` and ``phantom.truth`` (``sample_data/README.md``).
    """
    from pvp_plan.sample_data import generate_phantom

    return generate_phantom(seed=0, fov_mm=PHANTOM_TEST_FOV_MM)


#: Seed and (z, y, x) spacing (mm) of the fine phantom: thin slices, where the pedicles fill most body sections.
FINE_PHANTOM = (2, (1.0, 0.6, 0.6))


@pytest.fixture(scope="session")
def fine_phantom():
    """The phantom at 1 x 0.6 x 0.6 mm, seed 2 (``FINE_PHANTOM``), full field of view, generated once per session."""
    from pvp_plan.sample_data import generate_phantom

    seed, spacing = FINE_PHANTOM
    return generate_phantom(seed=seed, spacing_mm=spacing)


@pytest.fixture(scope="session")
def phantom_truth(phantom) -> dict:
    """The ground-truth dict of the ``phantom`` fixture (JSON-serialisable)."""
    return phantom.truth
