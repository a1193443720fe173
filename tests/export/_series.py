"""A small synthetic CT DICOM series written with pydicom, in normal or flipped layout, and its CTVolume.

The CTVolume is built from the known array (not through the loader), so the expected frame of every
source instance is known independently of pvp-plan's geometry code:

* ``"normal"``: rows along +y (posterior), columns along +x (left), instances written feet to head;
* ``"flipped"``: Image Orientation (-1, 0, 0, 0, -1, 0), so each stored frame is the LPS slice reversed
  in both axes, and instances written head to feet (instance 1 is the most superior slice).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from pvp_plan.io.ct_volume import CTVolume, SeriesInfo, SourceGeometry
from pvp_plan.segment.types import Segmentation

SPACING_MM = (3.0, 0.7, 0.8)  # (z, y, x), deliberately uneven
ORIGIN_LPS_MM = (-12.0, -20.0, 100.0)


def phantom_labels(shape=(14, 40, 36)) -> np.ndarray:
    """Three box-shaped 'bodies' L1-L3 (VerSe 20-22), stacked along z with gaps, none touching the edges."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[1:4, 8:30, 6:28] = 22  # L3, caudal
    labels[5:9, 10:28, 8:26] = 21
    labels[10:13, 12:27, 9:25] = 20  # L1, cranial
    labels[6, 12:15, 10:13] = 0  # an asymmetric notch: a flip would move it
    labels[11, 20, 22] = 0
    return labels


def phantom_hu(labels: np.ndarray) -> np.ndarray:
    hu = np.full(labels.shape, -50, dtype=np.int16)
    hu[labels > 0] = 180
    hu += (np.arange(labels.shape[2], dtype=np.int16) % 7)[None, None, :]  # asymmetric texture
    return hu


def stored_frame(volume: np.ndarray, z: int, layout: str) -> np.ndarray:
    """The frame as stored in the instance of LPS slice ``z`` (independent ground truth)."""
    return volume[z] if layout == "normal" else volume[z, ::-1, ::-1]


def write_series(out_dir: Path, hu: np.ndarray, layout: str, *, spacing_mm=SPACING_MM,
                 origin_lps_mm=ORIGIN_LPS_MM) -> list[Path]:
    """Write one file per slice; return the paths in internal z order (inferior to superior)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    nz, ny, nx = hu.shape
    sz, sy, sx = spacing_mm
    ox, oy, oz = origin_lps_mm
    study, series, frame_of_ref = generate_uid(), generate_uid(), generate_uid()
    order = range(nz) if layout == "normal" else range(nz - 1, -1, -1)
    paths = {}
    for instance, z in enumerate(order, start=1):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Test", "PHANTOM1", "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_ref
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.ReferringPhysicianName = ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, instance
        ds.Manufacturer = "pvp-plan test"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        if layout == "normal":
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            first = (ox, oy, oz + z * sz)
        else:
            ds.ImageOrientationPatient = [-1, 0, 0, 0, -1, 0]
            first = (ox + (nx - 1) * sx, oy + (ny - 1) * sy, oz + z * sz)
        ds.ImagePositionPatient = [float(v) for v in first]
        ds.PixelSpacing = [sy, sx]  # between rows (y), between columns (x)
        ds.SliceThickness = sz
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(stored_frame(hu, z, layout)).astype(np.int16).tobytes()
        path = out_dir / f"IM{instance:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths[z] = path
    return [paths[z] for z in range(nz)]


def ct_for_series(hu: np.ndarray, files: list[Path], layout: str, *, spacing_mm=SPACING_MM,
                  origin_lps_mm=ORIGIN_LPS_MM) -> CTVolume:
    """The CTVolume a correct loader gives for :func:`write_series` (built from the known array)."""
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    series = SeriesInfo(source_path=str(files[0].parent), source_format="dicom", series_uid=ds.SeriesInstanceUID,
                        n_files=len(files), dicom_files=tuple(str(f) for f in files))
    nz, ny, nx = hu.shape
    (sz, sy, sx), (ox, oy, oz) = spacing_mm, origin_lps_mm
    if layout == "normal":
        geometry = SourceGeometry((nx, ny, nz), (sx, sy, sz), (ox, oy, oz), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    else:
        origin = (ox + (nx - 1) * sx, oy + (ny - 1) * sy, oz + (nz - 1) * sz)
        geometry = SourceGeometry((nx, ny, nz), (sx, sy, sz), origin, (-1, 0, 0, 0, -1, 0, 0, 0, -1))
    return CTVolume(hu=hu, spacing_mm=spacing_mm, origin_lps_mm=origin_lps_mm, series=series,
                    source_geometry=geometry)


def phantom_case(tmp_path: Path, layout: str) -> tuple[CTVolume, Segmentation]:
    labels = phantom_labels()
    hu = phantom_hu(labels)
    files = write_series(tmp_path / f"ct_{layout}", hu, layout)
    ct = ct_for_series(hu, files, layout)
    return ct, Segmentation.from_label_map(labels, ct, method="test phantom")
