"""Fixtures for the CT input layer tests: small synthetic DICOM series written on the fly."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

warnings.filterwarnings("ignore", module="pydicom")
logging.getLogger("pydicom").setLevel(logging.ERROR)


def write_ct_series(
    folder: Path,
    stored_kij: np.ndarray,
    *,
    positions_lps_mm: np.ndarray,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    pixel_spacing_mm: tuple[float, float] = (0.8, 0.7),
    slope: float = 1.0,
    intercept: float = -1024.0,
    modality: str = "CT",
    series_uid: str | None = None,
    description: str = "synthetic",
    names: list[str] | None = None,
    extra: dict | None = None,
) -> list[Path]:
    """Write one single-frame DICOM file per slice (uncompressed, int16 stored values)."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid, for_uid = generate_uid(), generate_uid()
    sop_class = CTImageStorage if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
    paths = []
    for k, plane in enumerate(stored_kij):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, for_uid
        ds.SeriesDescription = description
        ds.SeriesNumber = 2
        ds.InstanceNumber = k + 1
        ds.PatientName = "SECRET^PATIENT"
        ds.PatientID = "ID-0000-SECRET"
        ds.PatientBirthDate = "19010101"
        ds.StudyDate = "20200101"
        ds.StudyTime, ds.StudyID = "120000", "1"
        ds.Manufacturer = "Synthetic"
        ds.ImagePositionPatient = [f"{v:.6f}" for v in positions_lps_mm[k]]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
        ds.PixelSpacing = [f"{v:.6f}" for v in pixel_spacing_mm]
        ds.SliceThickness = "1.0"
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.PixelData = np.ascontiguousarray(plane, dtype=np.int16).tobytes()
        path = folder / (names[k] if names else f"IM{k:04d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def axial_positions(n: int, *, spacing_mm: float = 2.0, origin=(-10.0, -20.0, 30.0)) -> np.ndarray:
    """Positions of an axial stack going toward Superior."""
    return np.asarray(origin, float)[None, :] + np.arange(n)[:, None] * np.array([0.0, 0.0, spacing_mm])


def ramp_volume(n_k: int, rows: int, cols: int, *, seed: int = 0) -> np.ndarray:
    """Distinct stored values per voxel (so any flip or permutation shows)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2000, size=(n_k, rows, cols)).astype(np.int16)


@pytest.fixture
def ct_writer():
    return write_ct_series
