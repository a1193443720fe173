"""Image noise and the low-dose warning (pvp_plan.segment.image_noise)."""

from __future__ import annotations

import numpy as np
import pytest

from pvp_plan.segment.image_noise import CHECKED_NOISE_3MM_HU, NOISE_SOURCE, image_noise, noise_warnings


def _soft_tissue_block(sigma_hu: float, spacing_mm, shape=(30, 80, 80)) -> np.ndarray:
    """40 HU soft tissue with white noise, framed by air."""
    hu = np.full(shape, -1000.0)
    hu[:, 10:-10, 10:-10] = 40.0
    return hu + np.random.default_rng(0).normal(0.0, sigma_hu, shape)


@pytest.mark.parametrize("spacing_mm", [(1.0, 0.8, 0.8), (3.0, 3.0, 3.0)])
def test_white_noise_is_read_per_voxel_and_per_3mm(spacing_mm):
    noise = image_noise(_soft_tissue_block(30.0, spacing_mm), spacing_mm)
    assert noise.per_voxel_hu == pytest.approx(30.0, rel=0.05)
    assert noise.per_3mm_hu == pytest.approx(noise.per_voxel_hu * np.sqrt(np.prod(spacing_mm) / 27.0))


def test_noise_over_the_checked_level_is_warned_with_its_source():
    loud = image_noise(_soft_tissue_block(40.0, (3.0, 3.0, 3.0)), (3.0, 3.0, 3.0))
    quiet = image_noise(_soft_tissue_block(15.0, (3.0, 3.0, 3.0)), (3.0, 3.0, 3.0))
    (warning,) = noise_warnings(loud)
    assert warning.startswith(NOISE_SOURCE) and f"{CHECKED_NOISE_3MM_HU:.0f} HU" in warning
    assert noise_warnings(quiet) == ()


def test_no_soft_tissue_no_reading():
    """Air (or bone) only: no window to read the noise in, and nothing said."""
    assert image_noise(np.full((10, 40, 40), -1000.0), (1.0, 1.0, 1.0)) is None
    assert noise_warnings(None) == ()


def test_phantom_noise_matches_its_generator(phantom):
    """The phantom's white noise is known (its generator's ``noise_sd_hu``); its soft tissue is flat."""
    noise = image_noise(phantom.ct.hu, phantom.ct.spacing_mm)
    assert noise.per_voxel_hu == pytest.approx(phantom.truth["generator"]["noise_sd_hu"], rel=0.1)
    assert noise_warnings(noise) == ()


def test_low_dose_abdomen_is_warned_and_the_scan_itself_is_not():
    """The shared 3 mm abdomen reads about 15 HU; with 45 HU of white noise added (a low-dose scan) about 41 HU, where
    the names failed on every draw tried (flagged): the segmentation says the image is noisier than it was checked
    at. The scan as it is raises no such warning."""
    from pvp_plan.io import ct_from_array, load_ct
    from pvp_plan.segment import segment_vertebral_bodies
    from tests.conftest import shared_path

    ct = load_ct(shared_path("abdomen_3mm", "ct.nii.gz"))
    assert not [w for w in segment_vertebral_bodies(ct).warnings if w.startswith(NOISE_SOURCE)]
    hu = np.round(ct.hu + np.random.default_rng(3).normal(0.0, 45.0, ct.hu.shape)).astype(np.int16)
    noisy = segment_vertebral_bodies(ct_from_array(hu, spacing_mm=ct.spacing_mm, origin_lps_mm=ct.origin_lps_mm))
    (warning,) = [w for w in noisy.warnings if w.startswith(NOISE_SOURCE)]
    assert "noisy" in warning and "check the names and outlines" in warning
