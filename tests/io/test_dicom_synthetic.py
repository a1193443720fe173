"""Synthetic DICOM series written with pydicom: each validation branch and each geometry case."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.fileset import FileSet

from pvp_plan.errors import GeometryError, InputError, PixelDataError, SeriesError
from pvp_plan.io import load_ct
from tests.io.conftest import axial_positions, ramp_volume, write_ct_series


def _linear_hu(points_lps: np.ndarray) -> np.ndarray:
    """A linear function of LPS position (HU): linear interpolation reproduces it exactly."""
    return 2.0 * points_lps[..., 0] - 3.0 * points_lps[..., 1] + 5.0 * points_lps[..., 2]


def _stack_of_linear(positions, orientation, spacing, rows, cols):
    o = np.asarray(orientation, float)
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    planes = []
    for p in positions:
        pts = p + j[..., None] * spacing[1] * o[:3] + i[..., None] * spacing[0] * o[3:]
        planes.append(np.rint(_linear_hu(pts)).astype(np.int16))
    return np.array(planes)


def _assert_linear(ct, *, tol: float = 1.5) -> None:
    """Every voxel inside the scanned field holds the linear function of its own LPS position."""
    from scipy import ndimage

    inside = ndimage.binary_erosion(ct.hu != -1024, structure=np.ones((3, 3, 3)))  # away from the field edge
    idx = np.argwhere(inside)
    assert len(idx) > 100
    expected = _linear_hu(ct.index_to_lps(idx))  # series written with intercept 0: HU = f
    got = ct.hu[tuple(idx.T)].astype(float)
    inner = np.abs(got - expected) <= tol
    assert inner.mean() > 0.995, f"only {inner.mean():.3f} of voxels match their LPS position"


def test_sorted_regardless_of_file_order_and_flipped_slices(tmp_path):
    vol = ramp_volume(6, 8, 10)
    pos = axial_positions(6)
    names = [f"IM{n}.dcm" for n in (5, 3, 0, 4, 1, 2)]  # names unrelated to position
    write_ct_series(tmp_path / "a", vol, positions_lps_mm=pos, names=names)
    # same data, slices listed top to bottom
    write_ct_series(tmp_path / "b", vol[::-1], positions_lps_mm=pos[::-1])
    a, b = load_ct(tmp_path / "a"), load_ct(tmp_path / "b")
    np.testing.assert_array_equal(a.hu, vol.astype(np.int32) - 1024)
    np.testing.assert_array_equal(a.hu, b.hu)
    assert a.spacing_mm == pytest.approx((2.0, 0.8, 0.7))
    assert a.origin_lps_mm == pytest.approx((-10.0, -20.0, 30.0))
    assert not a.warnings and not a.source_geometry.resampled
    # files listed in internal z order (inferior to superior)
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in a.series.dicom_files]
    assert z == sorted(z) and len(z) == 6


def test_flipped_row_and_column_directions_exact(tmp_path):
    """Rows toward Right and columns toward Anterior, slices toward Inferior: exact flips, no resampling."""
    vol = ramp_volume(5, 6, 7)
    pos = np.array([[50.0, 40.0, 100.0 - 3 * k] for k in range(5)])
    write_ct_series(tmp_path, vol, positions_lps_mm=pos, orientation=(-1, 0, 0, 0, -1, 0), pixel_spacing_mm=(0.5, 0.6))
    ct = load_ct(tmp_path)
    assert not ct.source_geometry.resampled
    # raw pixel (k, i, j) at LPS pos[k] - j*0.6 x - i*0.5 y must be found there
    for k, i, j in [(0, 0, 0), (4, 5, 6), (2, 3, 1)]:
        lps = pos[k] + np.array([-j * 0.6, -i * 0.5, 0.0])
        zyx = np.rint(ct.lps_to_index(lps)).astype(int)
        assert ct.hu[tuple(zyx)] == vol[k, i, j] - 1024
    # labels go back onto the source slices exactly; the DICOM source grid runs along the slice normal
    # (+z here), i.e. the written slices (z = 100 - 3k) in reverse
    back = sitk.GetArrayFromImage(ct.to_source_grid((ct.hu > 0).astype(np.uint8)))
    np.testing.assert_array_equal(back, (vol[::-1] > 1024).astype(np.uint8))


def test_missing_slice_resampled_with_warning(tmp_path):
    pos = axial_positions(8, spacing_mm=2.0)
    keep = [0, 1, 2, 4, 5, 6, 7]  # slice 3 missing
    vol = _stack_of_linear(pos[keep], (1, 0, 0, 0, 1, 0), (1.0, 1.0), 6, 6)
    write_ct_series(tmp_path, vol, positions_lps_mm=pos[keep], pixel_spacing_mm=(1.0, 1.0), intercept=0)
    ct = load_ct(tmp_path)
    assert ct.shape[0] == 8 and ct.spacing_mm[0] == pytest.approx(2.0)
    assert any("irregular slice spacing" in w for w in ct.warnings)
    assert ct.source_geometry.resampled
    z3 = ct.hu[3]  # the interpolated missing slice
    yx = np.argwhere(np.ones_like(z3))
    expected = _linear_hu(ct.index_to_lps(np.column_stack([np.full(len(yx), 3), yx])))
    np.testing.assert_allclose(z3.ravel(), expected, atol=1.0)


def test_huge_gap_refused(tmp_path):
    pos = np.concatenate([axial_positions(4), axial_positions(4, origin=(-10.0, -20.0, 130.0))])
    write_ct_series(tmp_path, ramp_volume(8, 4, 4), positions_lps_mm=pos)
    with pytest.raises(GeometryError, match="too large to interpolate"):
        load_ct(tmp_path)


def test_gantry_tilt_corrected_geometry(tmp_path):
    """Sheared stack (positions along z, planes tilted 20 deg): every voxel holds f(its own LPS position)."""
    t = np.radians(20.0)
    orient = (1, 0, 0, 0, np.cos(t), -np.sin(t))
    pos = np.array([[-5.0, -6.0, 2.5 * k] for k in range(12)])  # table moves along z only
    vol = _stack_of_linear(pos, orient, (1.0, 1.0), 16, 12)
    write_ct_series(tmp_path, vol, positions_lps_mm=pos, orientation=orient, pixel_spacing_mm=(1.0, 1.0), intercept=0)
    ct = load_ct(tmp_path)
    assert any("gantry tilt" in w and "20.0 deg" in w for w in ct.warnings)
    assert ct.source_geometry.resampled
    _assert_linear(ct)


def test_oblique_planes_resampled(tmp_path):
    a = np.radians(25.0)
    row = (np.cos(a), np.sin(a), 0.0)
    col = (-np.sin(a), np.cos(a), 0.0)
    normal = np.cross(row, col)
    pos = np.array([[1.0, 2.0, 3.0] + 2.0 * k * normal for k in range(6)])
    orient = (*row, *col)
    vol = _stack_of_linear(pos, orient, (1.0, 1.0), 10, 10)
    write_ct_series(tmp_path, vol, positions_lps_mm=pos, orientation=orient, pixel_spacing_mm=(1.0, 1.0), intercept=0)
    ct = load_ct(tmp_path)
    assert any("oblique" in w for w in ct.warnings)
    _assert_linear(ct)


def test_inconsistent_rows_raise(tmp_path):
    write_ct_series(tmp_path, ramp_volume(3, 8, 8), positions_lps_mm=axial_positions(3), series_uid="1.2.3.4")
    write_ct_series(tmp_path, ramp_volume(1, 6, 8), positions_lps_mm=axial_positions(1, origin=(0, 0, 90)),
                    series_uid="1.2.3.4", names=["odd.dcm"])
    with pytest.raises(GeometryError, match="inconsistent rows/columns"):
        load_ct(tmp_path)


def test_mr_only_is_refused(tmp_path):
    write_ct_series(tmp_path, ramp_volume(3, 4, 4), positions_lps_mm=axial_positions(3), modality="MR")
    with pytest.raises(SeriesError, match="this is MR, pvp-plan needs CT"):
        load_ct(tmp_path)


def test_corrupt_pixel_data(tmp_path):
    paths = write_ct_series(tmp_path, ramp_volume(8, 8, 8), positions_lps_mm=axial_positions(8))  # thread pool
    ds = pydicom.dcmread(paths[5])
    ds.PixelData = ds.PixelData[:50]  # truncated
    ds.save_as(paths[5])
    with pytest.raises(PixelDataError, match=paths[5].name):
        load_ct(tmp_path)


def test_float_rescale_slope(tmp_path):
    vol = ramp_volume(3, 4, 4)
    write_ct_series(tmp_path, vol, positions_lps_mm=axial_positions(3), slope=0.5, intercept=-1000)
    ct = load_ct(tmp_path)
    assert ct.hu.dtype == np.float32
    np.testing.assert_allclose(ct.hu, vol * 0.5 - 1000)


def test_pixel_padding_becomes_minus_1024(tmp_path):
    vol = ramp_volume(3, 4, 4)
    vol[:, 0, 0] = -2000
    write_ct_series(tmp_path, vol, positions_lps_mm=axial_positions(3), intercept=0,
                    extra={"PixelPaddingValue": -2000})
    assert np.all(load_ct(tmp_path).hu[:, 0, 0] == -1024)


def test_single_slice_and_duplicate_positions(tmp_path):
    paths = write_ct_series(tmp_path / "one", ramp_volume(1, 4, 4), positions_lps_mm=axial_positions(1))
    with pytest.raises(GeometryError, match="at least 2 slices"):
        load_ct(tmp_path / "one")
    with pytest.raises(GeometryError, match="single slice"):
        load_ct(paths[0])
    write_ct_series(tmp_path / "dup", ramp_volume(3, 4, 4), positions_lps_mm=axial_positions(3) * [1, 1, 0])
    with pytest.raises(GeometryError, match="share a position"):
        load_ct(tmp_path / "dup")


def test_bad_inputs_name_the_path(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_ct(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        load_ct(tmp_path / "empty")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "notes.txt").write_text("hello")
    with pytest.raises(SeriesError, match="no DICOM files"):
        load_ct(tmp_path / "txt")
    (tmp_path / "txt" / "ct.nii.gz").write_bytes(b"")
    with pytest.raises(SeriesError, match="found ct.nii.gz: pass that file itself"):
        load_ct(tmp_path / "txt")
    rnd = tmp_path / "random.bin"
    rnd.write_bytes(b"PK\x03\x04" + os.urandom(4000))  # a zip-like file, not DICOM
    with pytest.raises(InputError, match="neither DICOM"):
        load_ct(rnd)
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(InputError, match="broken.nii.gz"):
        load_ct(broken)


def test_unreadable_file(tmp_path):
    paths = write_ct_series(tmp_path, ramp_volume(3, 4, 4), positions_lps_mm=axial_positions(3))
    ds = pydicom.dcmread(paths[0])
    raw = paths[0].read_bytes()
    paths[0].write_bytes(raw[:200])  # preamble kept, dataset truncated
    del ds
    with pytest.raises(InputError, match=paths[0].name):
        load_ct(paths[0])


def test_series_choice_and_explicit_series(tmp_path):
    write_ct_series(tmp_path / "thick", ramp_volume(4, 4, 4), positions_lps_mm=axial_positions(4, spacing_mm=5.0),
                    series_uid="1.2.826.0.1.5", description="thick")
    write_ct_series(tmp_path / "thin", ramp_volume(6, 4, 4), positions_lps_mm=axial_positions(6, spacing_mm=1.0),
                    series_uid="1.2.826.0.1.1", description="thin")
    ct = load_ct(tmp_path)
    assert ct.series.series_uid == "1.2.826.0.1.1"
    assert "thinnest slice spacing" in ct.series.choice_reason
    assert [c.series_uid for c in ct.series.other_series] == ["1.2.826.0.1.5"]
    ct2 = load_ct(tmp_path, series="1.2.826.0.1.5")
    assert ct2.series.series_description == "thick" and ct2.shape[0] == 4
    with pytest.raises(SeriesError, match="1.2.826.0.1.1"):
        load_ct(tmp_path, series="9.9.9")


def test_no_patient_identifiers_anywhere(tmp_path):
    write_ct_series(tmp_path, ramp_volume(3, 4, 4), positions_lps_mm=axial_positions(3))
    ct = load_ct(tmp_path)
    text = repr(ct.series) + repr(ct.provenance()) + repr(ct.warnings)
    for secret in ("SECRET", "ID-0000", "19010101", "20200101"):
        assert secret not in text


def test_dicomdir_followed(tmp_path):
    src = write_ct_series(tmp_path / "src", ramp_volume(4, 6, 6), positions_lps_mm=axial_positions(4))
    fs = FileSet()
    for p in src:
        fs.add(p)
    fs.write(tmp_path / "media")
    ct = load_ct(tmp_path / "media" / "DICOMDIR")
    assert ct.shape == (4, 6, 6)
    assert ct.series.n_files == 4


def _write_enhanced(path, vol, z_positions, *, orientations=None, with_positions=True):
    """An Enhanced CT file: shared orientation/pixel measures, per-frame position and rescale."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.ImageType = "CT", generate_uid(), ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = vol.shape[1], vol.shape[2], vol.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared, pm = Dataset(), Dataset()
    pm.PixelSpacing, pm.SliceThickness = [0.5, 0.6], 1.5
    shared.PixelMeasuresSequence = Sequence([pm])
    if orientations is None:
        po = Dataset()
        po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        shared.PlaneOrientationSequence = Sequence([po])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for f, z in enumerate(z_positions):
        item, pp, pv = Dataset(), Dataset(), Dataset()
        pp.ImagePositionPatient = [0, 0, z]
        pv.RescaleSlope, pv.RescaleIntercept = 1, -1024 + f
        if with_positions:
            item.PlanePositionSequence = Sequence([pp])
        item.PixelValueTransformationSequence = Sequence([pv])
        if orientations is not None:
            po = Dataset()
            po.ImageOrientationPatient = orientations[f]
            item.PlaneOrientationSequence = Sequence([po])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = vol.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_enhanced_ct_multiframe_synthetic(tmp_path):
    """Per-frame functional groups: positions, shared orientation, per-frame rescale; frames out of order."""
    vol = ramp_volume(4, 5, 6)
    path = _write_enhanced(tmp_path / "enhanced.dcm", vol, [4.5, 0.0, 3.0, 1.5])
    ct = load_ct(path)
    assert ct.series.source_format == "dicom-multiframe"
    assert ct.shape == (4, 5, 6) and ct.spacing_mm == pytest.approx((1.5, 0.5, 0.6))
    assert ct.series.slice_thickness_mm == pytest.approx(1.5)
    order = [1, 3, 2, 0]  # frames sorted by z
    expected = np.array([vol[f].astype(int) - 1024 + f for f in order])
    np.testing.assert_array_equal(ct.hu, expected)


def test_enhanced_ct_geometry_errors(tmp_path):
    vol = ramp_volume(3, 4, 4)
    no_pos = _write_enhanced(tmp_path / "nopos.dcm", vol, [0, 1, 2], with_positions=False)
    with pytest.raises(GeometryError, match="without per-frame position"):
        load_ct(no_pos)
    mixed = _write_enhanced(tmp_path / "mixed.dcm", vol, [0, 1, 2],
                            orientations=[[1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, -1]])
    with pytest.raises(GeometryError, match="2 different orientations"):
        load_ct(mixed)


def test_implausible_decoded_values_refused(tmp_path):
    rng = np.random.default_rng(5)
    noise = rng.integers(-32768, 32767, size=(3, 16, 16)).astype(np.int16)  # what a broken decoder produces
    write_ct_series(tmp_path, noise, positions_lps_mm=axial_positions(3), intercept=0)
    with pytest.raises(PixelDataError, match="not plausible CT numbers"):
        load_ct(tmp_path)


def test_two_acquisitions_in_one_series_are_split(tmp_path):
    pos = axial_positions(4, spacing_mm=2.0)
    write_ct_series(tmp_path, ramp_volume(4, 4, 4), positions_lps_mm=pos, series_uid="1.2.3.9",
                    extra={"AcquisitionNumber": 1}, names=[f"a{k}.dcm" for k in range(4)])
    write_ct_series(tmp_path, ramp_volume(4, 4, 4, seed=3), positions_lps_mm=pos, series_uid="1.2.3.9",
                    extra={"AcquisitionNumber": 2}, names=[f"b{k}.dcm" for k in range(4)])
    ct = load_ct(tmp_path)
    assert ct.shape == (4, 4, 4)
    assert len(ct.series.other_series) == 1
    assert all(os.path.basename(f).startswith("a") for f in ct.series.dicom_files)


def test_missing_codec_names_syntax_and_fix(tmp_path, monkeypatch):
    import pvp_plan.io.dicom_pixels as dp

    write_ct_series(tmp_path, ramp_volume(3, 4, 4), positions_lps_mm=axial_positions(3))

    class _NoPlugin:
        is_available = False

    monkeypatch.setattr(dp, "get_decoder", lambda uid: _NoPlugin())
    with pytest.raises(PixelDataError, match=r'Explicit VR Little Endian.*pip install "pvp-plan\[dicom-codecs\]"'):
        load_ct(tmp_path)


def test_only_localizers_and_secondary_captures(tmp_path):
    write_ct_series(tmp_path, ramp_volume(1, 4, 4), positions_lps_mm=axial_positions(1),
                    extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, names=["scout.dcm"])
    write_ct_series(tmp_path, ramp_volume(1, 4, 4), positions_lps_mm=axial_positions(1), names=["sc.dcm"],
                    extra={"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"})
    with pytest.raises(SeriesError, match="no axial CT image stack") as info:
        load_ct(tmp_path)
    assert "localizer" in str(info.value) and "secondary capture" in str(info.value)


def test_sagittal_only_loads_with_warning(tmp_path):
    """A sagittal stack (rows toward Posterior, columns toward Inferior) when nothing axial exists."""
    vol = ramp_volume(3, 5, 4)
    pos = np.array([[2.0 * k, 0.0, 0.0] for k in range(3)])
    write_ct_series(tmp_path, vol, positions_lps_mm=pos, orientation=(0, 1, 0, 0, 0, -1), pixel_spacing_mm=(1, 1))
    ct = load_ct(tmp_path)
    assert ct.shape == (5, 4, 3) and not ct.source_geometry.resampled
    assert any("no axial CT stack" in w for w in ct.warnings)
    # raw (k, i, j) sits at x = 2k, y = j, z = -i
    for k, i, j in [(0, 0, 0), (2, 4, 3), (1, 2, 1)]:
        zyx = np.rint(ct.lps_to_index([2.0 * k, j, -i])).astype(int)
        assert ct.hu[tuple(zyx)] == vol[k, i, j] - 1024


def test_raw_dataset_without_preamble(tmp_path):
    """Old exporters write datasets without the 128-byte preamble and file meta: still read."""
    vol = ramp_volume(3, 4, 4)
    paths = write_ct_series(tmp_path, vol, positions_lps_mm=axial_positions(3))
    for p in paths:
        ds = pydicom.dcmread(p)
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(p, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert paths[0].read_bytes()[:2] == b"\x08\x00"
    np.testing.assert_array_equal(load_ct(tmp_path).hu, vol.astype(np.int32) - 1024)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"],
                         ids=["RLE", "JPEG-LS-lossless", "JPEG2000-lossless"])
def test_compressed_series_equal_uncompressed(tmp_path, syntax):
    vol = ramp_volume(3, 64, 64)  # openjpeg needs >= 64 pixels for its default resolution levels
    paths = write_ct_series(tmp_path, vol, positions_lps_mm=axial_positions(3))
    for p in paths:
        ds = pydicom.dcmread(p)
        try:
            ds.compress(syntax)
        except (RuntimeError, NotImplementedError) as exc:  # encoder plugin absent: decoding is what we test
            pytest.skip(f"no encoder for {syntax}: {exc}")
        ds.save_as(p)
    assert pydicom.dcmread(paths[0], stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(load_ct(tmp_path).hu, vol.astype(np.int32) - 1024)
