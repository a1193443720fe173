"""Writing a phantom to disk: a real CT DICOM series, NIfTI volumes and ``truth.json`` (all atomic)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

from pvp_plan.io.atomic import atomic_write_bytes, atomic_write_text, write_image_atomic
from pvp_plan.sample_data.phantom import EXTRA_MASK_LABELS, Phantom

logger = logging.getLogger(__name__)

#: Fixed, fake identity of the phantom (no real person).
PATIENT_NAME = "PHANTOM^SYNTHETIC"
PATIENT_ID = "PHANTOM-0001"
_STUDY_DATE = "20260101"


def write_phantom(phantom: Phantom, out_dir: str | Path, *, dicom: bool = True, nifti: bool = True,
                  compress_dicom: bool = True, dicom_flip: str = "") -> dict[str, Path]:
    """Write ``ct_dicom/``, ``ct.nii.gz``, ``vertebral_bodies_truth.nii.gz``, ``extra_masks.nii.gz``, ``truth.json``.

    Parameters
    ----------
    phantom : Phantom
        From :func:`pvp_plan.sample_data.generate_phantom`.
    out_dir : path
        Folder to write into (created if needed); existing outputs are replaced atomically.
    dicom, nifti : bool
        Which CT formats to write (the truth files are always written).
    compress_dicom : bool
        RLE Lossless (pydicom's native encoder) when True, explicit VR little endian otherwise.
    dicom_flip : str
        ``""`` (rows along +x, columns along +y: ImageOrientationPatient 1\\0\\0\\0\\1\\0), or ``"x"``,
        ``"y"``, ``"xy"`` to store the pixels flipped with the matching orientation (a loader must undo it).

    Returns
    -------
    dict of str to Path
        ``"dicom_dir"``, ``"ct_nifti"``, ``"body_labels"``, ``"extra_masks"``, ``"truth"`` (those written).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if dicom:
        written["dicom_dir"] = write_dicom_series(phantom, out / "ct_dicom", compress=compress_dicom,
                                                  flip=dicom_flip)
    if nifti:
        written["ct_nifti"] = write_image_atomic(phantom.ct.to_sitk(), out / "ct.nii.gz")
    written["body_labels"] = write_image_atomic(phantom.ct.to_sitk(phantom.body_labels),
                                                out / "vertebral_bodies_truth.nii.gz")
    written["extra_masks"] = write_image_atomic(phantom.ct.to_sitk(combined_masks(phantom)),
                                                out / "extra_masks.nii.gz")
    written["truth"] = atomic_write_text(out / "truth.json", json.dumps(phantom.truth, indent=1) + "\n")
    logger.info("phantom written to %s", out)
    return written


def combined_masks(phantom: Phantom) -> np.ndarray:
    """One uint8 map: whole vertebrae by VerSe label, then canal 40, aorta 41, ribs 42, sacrum 43."""
    out = phantom.masks["vertebra_labels"].astype(np.uint8).copy()
    for name, value in EXTRA_MASK_LABELS.items():
        out[phantom.masks[name] & (out == 0)] = value
    return out


def split_masks(combined: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of :func:`combined_masks`."""
    masks = {"vertebra_labels": np.where(combined < 40, combined, 0).astype(np.uint8)}
    for name, value in EXTRA_MASK_LABELS.items():
        masks[name] = combined == value
    return masks


def _uid(seed: int, *parts) -> str:
    return generate_uid(entropy_srcs=["pvp-plan synthetic phantom", str(seed), *map(str, parts)])


def write_dicom_series(phantom: Phantom, folder: str | Path, *, compress: bool = True, flip: str = "") -> Path:
    """Write the CT as one axial CT Image Storage file per slice (atomically replaces ``folder``).

    ``flip`` (``""``, ``"x"``, ``"y"``, ``"xy"``) stores the in-plane pixels mirrored along those axes,
    with the ImageOrientationPatient and ImagePositionPatient that describe it (same patient geometry).
    """
    if set(flip) - {"x", "y"}:
        raise ValueError(f"flip must combine 'x' and 'y' (e.g. '', 'x', 'xy'), got {flip!r}")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        ct = phantom.ct
        seed = phantom.truth["generator"]["seed"]
        stored = (ct.hu.astype(np.int32) + 1024).clip(0, 4095).astype(np.uint16)
        # the pixels' digest in the key: phantoms of one seed and grid but another pathology, materials or
        # curvature are other images and never share a UID (a PACS would take one for the other)
        key = (seed, ct.shape, ct.spacing_mm, phantom.truth["generator"].get("generator_version"),
               hashlib.sha256(stored.tobytes()).hexdigest()[:32], *(["flip", "".join(sorted(flip))] if flip else []))
        study, series, frame = _uid(*key, "study"), _uid(*key, "series"), _uid(*key, "frame")
        nz = ct.shape[0]
        order = phantom.truth["level_order"]
        description = f"Synthetic spine phantom {order[0]}-{order[-1]}"
        fy, fx = "y" in flip, "x" in flip
        stored = stored[:, ::-1 if fy else 1, ::-1 if fx else 1]
        iop = [-1 if fx else 1, 0, 0, 0, -1 if fy else 1, 0]
        first = (ct.shape[1] - 1 if fy else 0, ct.shape[2] - 1 if fx else 0)
        for k in range(nz):
            index = nz - 1 - k  # instance 1 is the most superior slice
            pos = ct.index_to_lps(np.array([index, *first], dtype=float))
            ds = _slice_dataset(ct, pos, iop, k + 1, stored[index], (study, series, frame, _uid(*key, "slice", index)),
                                compress, description)
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            atomic_write_bytes(tmp / f"IM{k + 1:04d}.dcm", buf.getvalue())
        os.chmod(tmp, 0o755)  # mkdtemp creates the folder 0700
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _slice_dataset(ct, pos: np.ndarray, iop: list[int], instance: int, pixels: np.ndarray, uids: tuple[str, ...],
                   compress: bool, series_description: str) -> Dataset:
    sz, sy, sx = ct.spacing_mm
    study, series, frame, sop = uids
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "pvp-plan synthetic phantom"
    ds.InstitutionName = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic thoracolumbar spine phantom"
    ds.SeriesDescription = series_description
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "SPINE"
    ds.SliceThickness = f"{sz:.6g}"
    ds.SpacingBetweenSlices = f"{sz:.6g}"
    ds.KVP = "120"
    ds.ConvolutionKernel = "SYNTHETIC"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
    ds.ImageOrientationPatient = iop
    ds.FrameOfReferenceUID = frame
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{pos[2]:.6f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.PixelSpacing = [f"{sy:.6g}", f"{sx:.6g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "400"
    ds.WindowWidth = "1800"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    if compress:
        ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return ds


def read_dicom_series(folder: str | Path) -> tuple[np.ndarray, dict]:
    """Read a series written by :func:`write_dicom_series` back with pydicom: HU (z, y, x) on the LPS grid.

    Undoes an in-plane flip (axis-aligned orientations only); returns the HU and the geometry
    (``origin_lps_mm`` of voxel (0, 0, 0), ``spacing_mm`` (z, y, x), ``orientation``, ``series_uid``).
    """
    dss = [pydicom.dcmread(f) for f in sorted(Path(folder).glob("*.dcm"))]
    dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    hu = np.stack([d.pixel_array.astype(np.int16) * float(d.RescaleSlope) + float(d.RescaleIntercept)
                   for d in dss]).astype(np.int16)
    iop = [float(v) for v in dss[0].ImageOrientationPatient]
    sy, sx = (float(v) for v in dss[0].PixelSpacing)
    origin = np.array([float(v) for v in dss[0].ImagePositionPatient])
    if iop[0] < 0:  # columns run toward the patient's right: flip x
        hu = hu[:, :, ::-1]
        origin[0] -= (hu.shape[2] - 1) * sx
    if iop[4] < 0:  # rows run anteriorly: flip y
        hu = hu[:, ::-1, :]
        origin[1] -= (hu.shape[1] - 1) * sy
    z = [float(d.ImagePositionPatient[2]) for d in dss]
    geometry = {
        "origin_lps_mm": tuple(float(v) for v in origin),
        "spacing_mm": (float(np.median(np.diff(z))) if len(z) > 1 else float(dss[0].SliceThickness), sy, sx),
        "orientation": tuple(iop),
        "series_uid": dss[0].SeriesInstanceUID,
    }
    return np.ascontiguousarray(hu), geometry
