"""Compute steps injected into batch tests (importable by path string in spawned workers)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pvp_plan.batch.task import plan_study

#: Environment variable naming a file that :func:`counting_plan_with_truth` appends one line per computed study to.
COUNTER_ENV = "PVP_PLAN_TEST_BATCH_COUNTER"


def fake_compute(path: str, *, series, anchor, options, study_dir: Path, keep_identifiers: bool,
                 segmentation: str | None = None) -> dict:
    """A fast stand-in for the pipeline: deterministic rows from the input's bytes, one output file."""
    if "crash" in Path(path).name:
        os._exit(9)  # a worker dying mid-study (like the kernel's OOM killer)
    if "raise" in Path(path).name:
        raise ValueError(f"cannot read {path}")
    target = Path(path)
    data = b"".join(p.read_bytes() for p in sorted(target.iterdir())) if target.is_dir() else target.read_bytes()
    digest = hashlib.sha256(data + (series or "").encode()).hexdigest()
    (Path(study_dir) / "plan.json").write_text(f'{{"source": "{path}", "series": "{series}"}}')
    rows = [{"level": lv, "body_volume_ml": round(int(digest[i:i + 4], 16) / 1000, 3), "plannable": i % 2 == 0,
             "genant_grade": None} for i, lv in enumerate(("L1", "L2"))]
    return {"levels": rows, "provenance": {"source_format": "test", "series_ref": "sha256:" + digest[:16],
                                           "series_description": target.name, "voxel_size_mm_zyx": [3.0, 1.5, 1.5],
                                           "shape_zyx": [1, 2, 3]},
            "files": ["plan.json"]}


#: Identifying header values written into test series; none may appear in any batch output.
IDENTIFIERS = {
    "PatientName": "Doe^Janeqx",
    "PatientID": "PID998877",
    "PatientBirthDate": "19230417",
    "StudyDate": "20190311",
    "AccessionNumber": "ACC55443322",
}


def new_dataset(path: Path, sop_class: str, modality: str) -> FileDataset:
    """An empty DICOM file dataset (explicit VR little endian) of ``sop_class`` with a fresh instance UID."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    return ds


def write_dicom_series(folder: Path, *, modality: str = "MR", n_slices: int = 4, size: int = 16,
                       series_uid: str | None = None, image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
                       spacing_mm: float = 3.0) -> str:
    """A small uncompressed DICOM series (one file per slice) with identifying header values; returns its UID."""
    import numpy as np
    from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    for i in range(n_slices):
        ds = new_dataset(folder / f"IM{i:04d}.dcm", sop_class, modality)
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = study_uid
        ds.ImageType = list(image_type)
        for tag, value in IDENTIFIERS.items():
            setattr(ds, tag, value)
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [0.0, 0.0, i * spacing_mm]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [1.5, 1.5]
        ds.SliceThickness = spacing_mm
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = (np.full((size, size), 40 + i, dtype=np.int16)).tobytes()
        ds.save_as(folder / f"IM{i:04d}.dcm", enforce_file_format=True)
    return series_uid


def truncate(path: Path, keep_bytes: int) -> None:
    """Cut a file to its first ``keep_bytes`` bytes (a corrupt transfer)."""
    data = Path(path).read_bytes()[:keep_bytes]
    Path(path).write_bytes(data)


def write_ct_dicom(folder: Path, ct, *, series_uid: str | None = None) -> str:
    """Write a CTVolume (LPS-aligned) as an uncompressed CT series with identifying headers; returns its UID."""
    import numpy as np
    from pydicom.uid import CTImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    hu = np.asarray(ct.hu).astype(np.int16)
    sz, sy, sx = ct.spacing_mm
    ox, oy, oz = ct.origin_lps_mm
    for k in range(hu.shape[0]):
        ds = new_dataset(folder / f"CT{k:04d}.dcm", CTImageStorage, "CT")
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = study_uid
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SeriesDescription = "phantom"
        for tag, value in IDENTIFIERS.items():
            setattr(ds, tag, value)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [ox, oy, oz + k * sz]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [sy, sx]
        ds.SliceThickness = sz
        ds.Rows, ds.Columns = int(hu.shape[1]), int(hu.shape[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(hu[k]).tobytes()
        ds.save_as(folder / f"CT{k:04d}.dcm", enforce_file_format=True)
    return series_uid


def hungry_compute(path: str, **kwargs) -> dict:
    """Allocates 4 GB for inputs named '*hungry*' (over a --max-memory-gb limit), else :func:`fake_compute`."""
    if "hungry" in Path(path).name:
        import numpy as np

        block = np.ones(4 * 1024**3, dtype=np.uint8)
        return {"levels": [], "size": int(block.size)}
    return fake_compute(path, **kwargs)




#: Environment variable naming a folder of ground-truth label maps, one per input (see :func:`truth_key`).
TRUTH_ENV = "PVP_PLAN_TEST_BATCH_TRUTH"


def truth_key(path: str | Path) -> str:
    """File name of the ground-truth label map of an input path under ``$PVP_PLAN_TEST_BATCH_TRUTH``."""
    return hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:16] + ".nii.gz"


def plan_with_truth(path: str, **kwargs) -> dict:
    """The real pipeline step, given the phantom's ground-truth label map as an external segmentation.

    The batch-layer tests use it so that their tables do not depend on the automatic segmentation's accuracy
    (tested in tests/segment); everything else (loading, measuring, planning, writing) is the real pipeline.
    """
    truth = Path(os.environ.get(TRUTH_ENV, "")) / truth_key(path)
    if truth.is_file() and not kwargs.get("segmentation"):
        kwargs["segmentation"] = str(truth)
    return plan_study(path, **kwargs)


def counting_plan_with_truth(path: str, **kwargs) -> dict:
    """:func:`plan_with_truth`, counting each call in the file named by ``$PVP_PLAN_TEST_BATCH_COUNTER``."""
    counter = os.environ.get(COUNTER_ENV)
    if counter:
        with open(counter, "a") as fh:
            fh.write(Path(kwargs["study_dir"]).name + "\n")
    return plan_with_truth(path, **kwargs)


plan_with_truth.preload = counting_plan_with_truth.preload = plan_study.preload
