"""NIfTI / NRRD / MHA through SimpleITK: orientation handling and the way back to the source grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from pvp_plan.errors import GeometryError, InputError
from pvp_plan.io import load_ct
from tests.conftest import shared_path


def _image(array_zyx, *, spacing, origin, direction):
    img = sitk.GetImageFromArray(array_zyx)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    return img


def _volume(shape=(5, 6, 7), seed=1):
    return np.random.default_rng(seed).integers(-1000, 2000, size=shape).astype(np.int16)


def test_ras_and_lps_storage_give_the_same_internal_array(tmp_path):
    """The same CT stored LPS and stored RAS-flipped (x and y reversed on disk) loads identically."""
    vol = _volume()
    lps = _image(vol, spacing=(0.7, 0.8, 2.0), origin=(-10.0, -20.0, 30.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    # RAS storage: first voxel is the right-anterior corner, axes point to Right and Anterior
    ras_origin = (-10.0 + 6 * 0.7, -20.0 + 5 * 0.8, 30.0)
    ras = _image(vol[:, ::-1, ::-1].copy(), spacing=(0.7, 0.8, 2.0), origin=ras_origin,
                 direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    sitk.WriteImage(lps, str(tmp_path / "lps.nii.gz"))
    sitk.WriteImage(ras, str(tmp_path / "ras.nii.gz"))
    a, b = load_ct(tmp_path / "lps.nii.gz"), load_ct(tmp_path / "ras.nii.gz")
    np.testing.assert_array_equal(a.hu, vol)
    np.testing.assert_array_equal(a.hu, b.hu)
    assert a.origin_lps_mm == pytest.approx(b.origin_lps_mm)
    assert a.spacing_mm == pytest.approx((2.0, 0.8, 0.7)) == b.spacing_mm
    # the same voxel has the same LPS position
    np.testing.assert_allclose(a.index_to_lps([2, 3, 4]), b.index_to_lps([2, 3, 4]))
    assert not b.source_geometry.resampled


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_to_source_grid_round_trip_permuted_and_flipped(tmp_path, suffix):
    """Axes permuted (sagittal-stored) and flipped: labels go back onto the file's grid voxel for voxel."""
    vol = _volume((4, 5, 6))
    # source x -> patient -z, source y -> +x, source z -> -y
    direction = (0, 1, 0, 0, 0, -1, -1, 0, 0)
    img = _image(vol, spacing=(1.0, 1.5, 2.0), origin=(5.0, 6.0, 7.0), direction=direction)
    path = tmp_path / f"perm{suffix}"
    sitk.WriteImage(img, str(path))
    ct = load_ct(path)
    assert not ct.source_geometry.resampled and not ct.warnings
    labels = (ct.hu > 500).astype(np.uint8) + (ct.hu > 1500).astype(np.uint8)
    back = ct.to_source_grid(labels)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), (vol > 500).astype(np.uint8) + (vol > 1500))
    assert back.GetDirection() == pytest.approx(direction)
    # a source voxel keeps its LPS position
    src_index = (3, 2, 1)  # (x, y, z) in the file
    lps = img.TransformIndexToPhysicalPoint(src_index)
    zyx = np.rint(ct.lps_to_index(lps)).astype(int)
    assert ct.hu[tuple(zyx)] == vol[src_index[2], src_index[1], src_index[0]]


def test_oblique_nifti_is_resampled_with_warning(tmp_path):
    a = np.radians(30)
    direction = (np.cos(a), -np.sin(a), 0, np.sin(a), np.cos(a), 0, 0, 0, 1)
    img = _image(np.full((4, 10, 10), 40, np.int16), spacing=(1.0, 1.0, 2.0), origin=(0, 0, 0), direction=direction)
    sitk.WriteImage(img, str(tmp_path / "obl.nii.gz"))
    ct = load_ct(tmp_path / "obl.nii.gz")
    assert any("oblique" in w for w in ct.warnings)
    assert ct.source_geometry.resampled
    assert set(np.unique(ct.hu)) <= {-1024, 40}
    assert (ct.hu == 40).sum() > 0.4 * 4 * 100


def test_float_nifti_with_integral_values_is_int16(tmp_path):
    img = _image(_volume().astype(np.float32), spacing=(1, 1, 1), origin=(0, 0, 0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    sitk.WriteImage(img, str(tmp_path / "f.nii.gz"))
    assert load_ct(tmp_path / "f.nii.gz").hu.dtype == np.int16


def test_image_file_errors(tmp_path):
    img2d = sitk.GetImageFromArray(np.zeros((5, 5), np.int16))
    sitk.WriteImage(img2d, str(tmp_path / "flat.nii.gz"))
    with pytest.raises(InputError, match="3-D"):
        load_ct(tmp_path / "flat.nii.gz")
    one = sitk.GetImageFromArray(np.zeros((1, 5, 5), np.int16))
    sitk.WriteImage(one, str(tmp_path / "one.nii.gz"))
    with pytest.raises(GeometryError, match="single slice"):
        load_ct(tmp_path / "one.nii.gz")


def test_shared_nifti_abdomen():
    ct = load_ct(shared_path("abdomen_3mm", "ct.nii.gz"))
    assert ct.shape == (112, 101, 122) and ct.spacing_mm == pytest.approx((3.0, 3.0, 3.0))
    assert ct.hu.dtype == np.int16
    ref = sitk.ReadImage(str(shared_path("abdomen_3mm", "ct.nii.gz")))
    # the file is stored RAS: its voxel (0, 0, 0) is the internal (z=0, y=last, x=last) voxel
    lps = ref.TransformIndexToPhysicalPoint((0, 0, 0))
    zyx = np.rint(ct.lps_to_index(lps)).astype(int)
    assert tuple(zyx) == (0, 100, 121)
    assert ct.hu[tuple(zyx)] == sitk.GetArrayViewFromImage(ref)[0, 0, 0]
