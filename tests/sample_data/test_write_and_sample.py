"""Writing the phantom (DICOM, NIfTI, truth) and the committed sample."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from pvp_plan.sample_data import (
    generate_phantom,
    load_sample,
    sample_dicom_dir,
    sample_nifti_path,
    write_phantom,
)
from pvp_plan.sample_data import sample as sample_mod
from pvp_plan.sample_data.write import read_dicom_series

SMALL = {"spacing_mm": (3.0, 1.2, 1.2), "fov_mm": (130.0, 150.0), "levels": ("L4", "L5"), "pathology": {}}


@pytest.fixture(scope="module")
def small():
    return generate_phantom(seed=5, **SMALL)


def test_dicom_series_reads_back_with_exact_geometry(small, tmp_path):
    paths = write_phantom(small, tmp_path / "out")
    files = sorted(paths["dicom_dir"].glob("*.dcm"))
    assert len(files) == small.ct.shape[0]
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage
    assert ds.Modality == "CT" and str(ds.PatientName) == "PHANTOM^SYNTHETIC" and ds.PatientID == "PHANTOM-0001"
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in ds.PixelSpacing] == [1.2, 1.2]
    assert float(ds.SliceThickness) == 3.0
    assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == -1024.0
    hu, geom = read_dicom_series(paths["dicom_dir"])
    assert np.array_equal(hu, small.ct.hu)
    assert geom["spacing_mm"] == pytest.approx((3.0, 1.2, 1.2))
    assert geom["origin_lps_mm"] == pytest.approx(small.ct.origin_lps_mm, abs=1e-5)
    uids = {pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID for f in files}
    assert len(uids) == 1
    sops = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    assert len(sops) == len(files)


def test_uids_are_deterministic_and_seed_dependent(small, tmp_path):
    a = write_phantom(small, tmp_path / "a", nifti=False)["dicom_dir"]
    b = write_phantom(small, tmp_path / "b", nifti=False)["dicom_dir"]
    c = write_phantom(generate_phantom(seed=6, **SMALL), tmp_path / "c", nifti=False)["dicom_dir"]
    uid = [pydicom.dcmread(sorted(p.glob("*.dcm"))[0], stop_before_pixels=True).SOPInstanceUID for p in (a, b, c)]
    assert uid[0] == uid[1] != uid[2]


def test_uids_differ_between_phantoms_of_one_seed_and_grid(small, tmp_path):
    """Another pathology on the same seed and grid is another image: none of its UIDs is the first one's."""
    other = generate_phantom(seed=5, **{**SMALL, "pathology": {"L4": "lytic"}})
    assert not np.array_equal(other.ct.hu, small.ct.hu)
    uids = []
    for name, phantom in (("a", small), ("b", other)):
        folder = write_phantom(phantom, tmp_path / name, nifti=False)["dicom_dir"]
        ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(folder.glob("*.dcm"))]
        uids.append({d.StudyInstanceUID for d in ds} | {d.SeriesInstanceUID for d in ds}
                    | {d.FrameOfReferenceUID for d in ds} | {d.SOPInstanceUID for d in ds})
    assert not uids[0] & uids[1]


def test_nifti_and_truth_files(small, tmp_path):
    paths = write_phantom(small, tmp_path, dicom=False)
    img = sitk.ReadImage(str(paths["ct_nifti"]))
    assert np.array_equal(sitk.GetArrayFromImage(img), small.ct.hu)
    assert img.GetSpacing() == pytest.approx(small.ct.spacing_xyz_mm)
    assert img.GetOrigin() == pytest.approx(small.ct.origin_lps_mm, abs=1e-4)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["body_labels"])))
    assert np.array_equal(labels, small.body_labels)
    assert json.loads(paths["truth"].read_text()) == small.truth
    assert not list(tmp_path.glob(".*part*"))  # no temporary leftovers


def test_rewriting_replaces_the_dicom_folder(small, tmp_path):
    write_phantom(small, tmp_path, nifti=False)
    write_phantom(small, tmp_path, nifti=False)
    assert len(list((tmp_path / "ct_dicom").glob("*.dcm"))) == small.ct.shape[0]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_committed_sample_loads_with_its_truth():
    if not sample_mod._complete(sample_mod._REPO_SAMPLE):
        pytest.skip("committed sample not present")
    assert sample_dicom_dir().is_dir() and sample_nifti_path().is_file()
    ph = load_sample()
    gen = ph.truth["generator"]
    assert tuple(gen["spacing_mm"]) == sample_mod.SAMPLE_KWARGS["spacing_mm"]
    assert ph.ct.spacing_mm == tuple(gen["spacing_mm"])
    assert ph.ct.shape == tuple(ph.truth["grid"]["shape_zyx"])
    assert len(list(sample_dicom_dir().glob("*.dcm"))) == ph.ct.shape[0]
    for name, lv in ph.truth["levels"].items():
        assert int((ph.body_labels == lv["label"]).sum()) == lv["voxel_count"], name
    assert ph.masks["aorta"].any() and ph.masks["ribs"].any() and ph.masks["sacrum"].any()
    size = sum(p.stat().st_size for p in sample_mod._REPO_SAMPLE.rglob("*") if p.is_file())
    assert size < 7_000_000


def test_missing_sample_is_regenerated_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(sample_mod, "_REPO_SAMPLE", tmp_path / "absent")
    monkeypatch.setattr(sample_mod, "SAMPLE_KWARGS", {**SMALL, "seed": 0})
    monkeypatch.setenv("PVP_PLAN_CACHE", str(tmp_path / "cache"))
    ph = load_sample()
    assert sample_nifti_path() == tmp_path / "cache" / "sample" / "ct.nii.gz"
    assert ph.truth["level_order"] == ["L4", "L5"]
    stamp = tmp_path / "cache" / "sample" / "generator_fingerprint.txt"
    mtime = stamp.stat().st_mtime_ns
    load_sample()  # cached: not regenerated
    assert stamp.stat().st_mtime_ns == mtime


def test_command_line_generator(tmp_path, capsys):
    from pvp_plan.sample_data.__main__ import main

    rc = main(["--out", str(tmp_path), "--spacing", "3,1.2,1.2", "--fov", "130,150", "--levels", "L5",
               "--no-dicom", "--no-pathology"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["shape_zyx"][1] == 125
    assert (tmp_path / "ct.nii.gz").exists() and (tmp_path / "truth.json").exists()
    assert main(["--out", str(tmp_path), "--levels", "Q1"]) == 2


@pytest.mark.parametrize("flip", ["x", "y", "xy"])
def test_flipped_dicom_series_describes_the_same_patient_geometry(small, tmp_path, flip):
    folder = write_phantom(small, tmp_path, nifti=False, dicom_flip=flip)["dicom_dir"]
    ds = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0], stop_before_pixels=True)
    iop = [float(v) for v in ds.ImageOrientationPatient]
    assert (iop[0] < 0) == ("x" in flip) and (iop[4] < 0) == ("y" in flip)
    hu, geom = read_dicom_series(folder)
    assert np.array_equal(hu, small.ct.hu)
    assert geom["origin_lps_mm"] == pytest.approx(small.ct.origin_lps_mm, abs=1e-4)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = sitk.DICOMOrient(reader.Execute(), "LPS")
    assert np.array_equal(sitk.GetArrayFromImage(image), small.ct.hu)
    assert image.GetOrigin() == pytest.approx(small.ct.origin_lps_mm, abs=1e-4)


def test_invalid_flip_is_rejected(small, tmp_path):
    with pytest.raises(ValueError, match="flip"):
        write_phantom(small, tmp_path, dicom_flip="z")
