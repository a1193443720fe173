"""The loader on real DICOM from ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from pvp_plan.errors import GeometryError, PixelDataError, PvpPlanError
from pvp_plan.io import load_ct
from pvp_plan.io.dicom_pixels import read_slice_hu
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data

CODEC_FILES = [
    "pydicom-data/693_J2KR.dcm", "pydicom-data/693_UNCI.dcm", "pydicom-data/693_UNCR.dcm",
    "pydicom-data/bad_sequence.dcm", "pydicom-data/explicit_VR-UN.dcm", "pylibjpeg-data/JPEG2000/693_J2KI.dcm",
    "pylibjpeg-data/JPEG2000/ELSCINT1_JP2vsJ2K.dcm", "pylibjpeg-data/JPEG2000/MAROTECH_CT_JP2Lossy.dcm",
    "pylibjpeg-data/JPEG2000Lossless/J2K_pixelrep_mismatch.dcm",
    "pylibjpeg-data/JPEG2000Lossless/TOSHIBA_J2K_OpenJPEGv2Regression.dcm",
    "pylibjpeg-data/JPEG2000Lossless/TOSHIBA_J2K_SIZ0_PixRep1.dcm",
    "pylibjpeg-data/JPEG2000Lossless/TOSHIBA_J2K_SIZ1_PixRep0.dcm", "pylibjpeg-data/JPEGLS/CT1_JLSN.dcm",
    "pylibjpeg-data/LittleEndianExplicit/CT_small.dcm",
]
CORRUPT_FILE = "pylibjpeg-data/JPEGLossless/JPEGLossless_1s_1f_i_16_16_bad.dcm"


def _slice_lps_points(ds, step: int = 4):
    """LPS positions (mm) of every ``step``-th pixel of a DICOM slice, and their (row, col) indices."""
    o = np.array(ds.ImageOrientationPatient, float)
    p = np.array(ds.ImagePositionPatient, float)
    dy, dx = (float(v) for v in ds.PixelSpacing)
    i, j = np.meshgrid(np.arange(0, ds.Rows, step), np.arange(0, ds.Columns, step), indexing="ij")
    pts = p + j[..., None] * dx * o[:3] + i[..., None] * dy * o[3:]
    return pts.reshape(-1, 3), i.ravel(), j.ravel()


def _sample(ct, pts_lps):
    """Trilinear sample of the internal volume at LPS points."""
    return ndimage.map_coordinates(ct.hu.astype(np.float32), ct.lps_to_index(pts_lps).T, order=1, cval=-1024)


def _assert_slices_land_where_dicom_says(ct, files):
    """Raw pixels of several slices vs the volume sampled at their exact LPS positions (and a no-tilt control)."""
    for f in files:
        ds = pydicom.dcmread(f)
        raw = read_slice_hu(f)
        pts, i, j = _slice_lps_points(ds)
        vals = raw[i, j].astype(float)
        body = vals > -500
        got = _sample(ct, pts)[body]
        corr = np.corrcoef(got, vals[body])[0, 1]
        assert corr > 0.9, f"{Path(f).name}: correlation {corr:.3f} between raw and resampled HU"
        # control: the same pixels placed as if the slice were untilted land elsewhere
        p = np.array(ds.ImagePositionPatient, float)
        dy, dx = (float(v) for v in ds.PixelSpacing)
        naive = p + np.column_stack([j * dx, i * dy, np.zeros_like(i)])
        naive_err = np.median(np.abs(_sample(ct, naive)[body] - vals[body]))
        true_err = np.median(np.abs(got - vals[body]))
        assert true_err < naive_err / 3


# --- abdomen JPEG 2000 series -------------------------------------------------------------------------

def test_abdomen_j2k_series():
    folder = shared_path("abdomen_dicom_j2k")
    ct = load_ct(folder)
    assert ct.shape == (20, 512, 512)
    assert ct.spacing_mm == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert ct.hu.dtype == np.int16 and not ct.warnings
    files = sorted(folder.iterdir())
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    z = sorted(float(h.ImagePositionPatient[2]) for h in headers)
    x0, y0 = (float(v) for v in headers[0].ImagePositionPatient[:2])
    assert ct.origin_lps_mm == pytest.approx((x0, y0, z[0]))
    assert ct.series.source_format == "dicom" and len(ct.series.dicom_files) == 20
    assert ct.series.manufacturer == "SIEMENS" and ct.series.slice_thickness_mm == pytest.approx(3.0)
    # air outside the body about -1000 HU, soft tissue in the middle, bone present
    corner = ct.hu[:, :20, :20]
    assert -1030 <= float(np.median(corner)) <= -950
    assert ct.hu.max() > 700
    # first file in dicom_files is the most inferior slice and matches hu[0] pixel for pixel
    first = pydicom.dcmread(ct.series.dicom_files[0])
    assert float(first.ImagePositionPatient[2]) == pytest.approx(z[0])
    np.testing.assert_array_equal(ct.hu[0], read_slice_hu(ct.series.dicom_files[0]))


# --- codecs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CODEC_FILES)
def test_codec_file_decodes_and_single_slice_refused(name):
    path = shared_path("dicom_codecs", *name.split("/"))
    hu = read_slice_hu(path)
    assert hu.ndim == 2 and hu.size > 0
    assert np.percentile(hu, 99) > -1100  # not blank
    with pytest.raises(PvpPlanError) as info:
        load_ct(path)
    # a single 2-D file is refused as a single slice (a localizer is refused as not an axial stack)
    assert "single slice" in str(info.value) or "localizer" in str(info.value)
    assert str(path) in str(info.value)


def test_lossless_j2k_equals_uncompressed():
    a = read_slice_hu(shared_path("dicom_codecs", "pydicom-data", "693_J2KR.dcm"))
    b = read_slice_hu(shared_path("dicom_codecs", "pydicom-data", "693_UNCR.dcm"))
    np.testing.assert_array_equal(a, b)
    lossy = read_slice_hu(shared_path("dicom_codecs", "pylibjpeg-data", "JPEG2000", "693_J2KI.dcm"))
    unci = read_slice_hu(shared_path("dicom_codecs", "pydicom-data", "693_UNCI.dcm"))
    np.testing.assert_array_equal(lossy, unci)  # the UNCI file holds the decoded lossy image


def test_jpegls_near_lossless_matches_explicit_little_endian_content():
    hu = read_slice_hu(shared_path("dicom_codecs", "pylibjpeg-data", "JPEGLS", "CT1_JLSN.dcm"))
    assert hu.shape == (512, 512) and hu.dtype == np.int16
    assert -1100 < float(np.median(hu)) < 200


def test_corrupt_jpeg_lossless_raises_pixel_data_error():
    path = shared_path("dicom_codecs", *CORRUPT_FILE.split("/"))
    with pytest.raises(PixelDataError, match="not plausible CT numbers"):
        read_slice_hu(path)


def test_enhanced_ct_multiframe():
    path = shared_path("dicom_codecs", "pydicom-data", "eCT_Supplemental.dcm")
    ct = load_ct(path)
    assert ct.series.source_format == "dicom-multiframe"
    assert ct.shape == (2, 512, 512)
    assert ct.spacing_mm == pytest.approx((10.0, 0.388672, 0.388672))
    # row direction is -x: internal x origin is the last column; frames at z = -159 and -149
    assert ct.origin_lps_mm == pytest.approx((99.5 - 511 * 0.388672, -301.5, -159.0))
    raw = pydicom.dcmread(path).pixel_array.astype(int) - 1024
    np.testing.assert_array_equal(ct.hu[0], raw[0][:, ::-1])  # frame 1 is at z=-159


# --- edge cases -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ge_tilt():
    return load_ct(shared_path("dicom_edge_cases", "ge_head_tilt_variable_spacing"))


def test_ge_tilt_detected_and_spacing_irregularity_reported(ge_tilt):
    w = " ".join(ge_tilt.warnings)
    assert "gantry tilt" in w and "18.5 deg" in w
    assert "irregular slice spacing" in w and "1.08 to 7.00 mm" in w
    assert "slice thickness varies" in w and ge_tilt.series.slice_thickness_mm is None  # 4 and 7 mm mixed
    assert ge_tilt.source_geometry.resampled
    assert ge_tilt.spacing_mm[1:] == pytest.approx((0.4882812, 0.4882812))


def test_ge_tilt_corrected_geometry(ge_tilt):
    folder = shared_path("dicom_edge_cases", "ge_head_tilt_variable_spacing")
    _assert_slices_land_where_dicom_says(ge_tilt, [folder / f"{n:02d}.dcm" for n in (3, 11, 16, 22)])


@pytest.fixture(scope="module")
def philips_tilt():
    return load_ct(shared_path("dicom_edge_cases", "philips_head_tilt_with_localizer"))


def test_philips_localizer_and_dose_ignored(philips_tilt):
    reasons = {i.what: i.reason for i in philips_tilt.series.ignored}
    assert "localizer" in reasons["S1000/I10"]
    assert "secondary capture" in reasons["S4010/I40"] and "DOSE_INFO" in reasons["S4010/I40"]
    assert "directory" in reasons["DIRFILE"]
    assert "rule:" in philips_tilt.series.choice_reason
    assert len(philips_tilt.series.other_series) == 1
    assert any("gantry tilt" in w for w in philips_tilt.warnings)


def test_philips_tilt_labels_back_on_source_slices(philips_tilt):
    """Uniform tilt: the source grid is the sheared DICOM grid, so labels return onto the raw slices."""
    import SimpleITK as sitk

    back = sitk.GetArrayFromImage(philips_tilt.to_source_grid((philips_tilt.hu > 300).astype(np.uint8))) > 0
    files = list(philips_tilt.series.dicom_files)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    if tuple(float(v) for v in first.ImagePositionPatient) != pytest.approx(philips_tilt.source_geometry.origin_lps_mm):
        files = files[::-1]  # source grid runs along the slice normal
    raw = np.array([read_slice_hu(f) > 300 for f in files])
    dice = 2 * (raw & back).sum() / (raw.sum() + back.sum())
    assert dice > 0.85


def test_philips_series_option_picks_the_other(philips_tilt):
    folder = shared_path("dicom_edge_cases", "philips_head_tilt_with_localizer")
    other = philips_tilt.series.other_series[0]
    ct = load_ct(folder, series=other.series_uid)
    assert ct.series.series_uid == other.series_uid != philips_tilt.series.series_uid
    assert len(ct.series.dicom_files) == other.n_slices
    assert "--series" in ct.series.choice_reason
    _assert_slices_land_where_dicom_says(ct, list(ct.series.dicom_files)[5::20])


def test_philips_mixed_series_one_folder():
    ct = load_ct(shared_path("dicom_edge_cases", "philips_head_mixed_series_one_folder"))
    assert ct.shape == (28, 512, 512) and ct.spacing_mm[0] == pytest.approx(5.0)
    assert not ct.warnings and not ct.source_geometry.resampled
    reasons = [i.reason for i in ct.series.ignored]
    assert sum("localizer" in r for r in reasons) == 1
    assert sum("secondary capture" in r for r in reasons) == 6
    assert all(Path(f).name.startswith("S2010_I") for f in ct.series.dicom_files)


def test_philips_dirfile_falls_back_to_folder():
    ct = load_ct(shared_path("dicom_edge_cases", "philips_head_tilt_with_localizer", "S2010", "DIRFILE"))
    assert any("DICOMDIR" in w for w in ct.warnings)
    assert len(ct.series.dicom_files) == 54


def test_single_slice_error_names_the_fix():
    with pytest.raises(GeometryError, match="Pass the folder"):
        load_ct(shared_path("dicom_edge_cases", "ge_head_tilt_variable_spacing", "01.dcm"))
