"""Benchmark :func:`pvp_plan.io.load_ct` on a 512 x 512 x 400 CT (0.8 x 0.8 x 1 mm): DICOM and NIfTI.

The series is built in a temporary folder (deleted afterwards, never committed): the shared
abdomen CT (``../shared/data/abdomen_3mm/ct.nii.gz``) resampled onto the target grid, or noise
plus shapes when it is absent. It is written with pydicom as 400 uncompressed single-frame
files, and also as one NIfTI file. Each load runs in a fresh subprocess so peak RSS is that
load's own (``VmHWM`` from ``/proc/self/status``; ``ru_maxrss`` would include the parent's RSS at fork).

Usage: ``.venv/bin/python benchmarks/bench_load.py [--slices 400] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

REPO = Path(__file__).resolve().parents[1]
SHARED_CT = REPO.parent / "shared" / "data" / "abdomen_3mm" / "ct.nii.gz"
SPACING_XYZ = (0.8, 0.8, 1.0)


def make_volume(n_slices: int) -> np.ndarray:
    """(z, y, x) int16 HU on the target grid."""
    size = (512, 512, n_slices)
    if SHARED_CT.exists():
        src = sitk.DICOMOrient(sitk.ReadImage(str(SHARED_CT)), "LPS")
        ref = sitk.Image(size, sitk.sitkInt16)
        ref.SetSpacing(SPACING_XYZ)
        centre = np.array(src.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in src.GetSize()]))
        ref.SetOrigin(tuple(centre - np.array(SPACING_XYZ) * (np.array(size) - 1) / 2))
        out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkLinear, -1024, sitk.sitkInt16)
        return sitk.GetArrayFromImage(out)
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[:n_slices, :512, :512]
    vol = np.full((n_slices, 512, 512), -1024, np.int16)
    vol[(y - 256) ** 2 + (x - 256) ** 2 < 200**2] = 40
    vol[(y - 330) ** 2 + (x - 256) ** 2 < 30**2] = 700
    return vol + rng.integers(-20, 20, vol.shape).astype(np.int16)


def write_dicom(vol: np.ndarray, folder: Path) -> None:
    """One uncompressed file per slice (stored = HU + 1024, intercept -1024)."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.Modality, ds.ImageType = CTImageStorage, "CT", ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.SeriesDescription, ds.Manufacturer = "bench 0.8 mm", "Synthetic"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [SPACING_XYZ[1], SPACING_XYZ[0]]
    ds.SliceThickness = SPACING_XYZ[2]
    ds.Rows, ds.Columns = vol.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    order = np.random.default_rng(1).permutation(vol.shape[0])  # file names unrelated to position
    for n, k in enumerate(order):
        uid = generate_uid()
        meta.MediaStorageSOPInstanceUID = uid
        ds.SOPInstanceUID = uid
        ds.InstanceNumber = int(k) + 1
        ds.ImagePositionPatient = [-204.4, -204.4, float(k) * SPACING_XYZ[2]]
        ds.PixelData = (vol[k].astype(np.int32) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"IM{n:05d}", enforce_file_format=True)


def write_nifti(vol: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing(SPACING_XYZ)
    img.SetOrigin((-204.4, -204.4, 0.0))
    sitk.WriteImage(img, str(path), useCompression=True)


_CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")


def peak_rss_mb():
    # VmHWM is this process's own peak (ru_maxrss would include the parent's RSS at fork time)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024



t0 = time.perf_counter()
from pvp_plan.io import load_ct
t1 = time.perf_counter()
rss_after_import = peak_rss_mb()
ct = load_ct(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "shape": ct.shape, "dtype": str(ct.hu.dtype),
                  "maxrss_mb": peak_rss_mb(), "import_rss_mb": rss_after_import,
                  "volume_mb": ct.hu.nbytes / 2**20, "warnings": list(ct.warnings)}))
"""


def time_load(path: Path, repeats: int) -> list[dict]:
    results = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, cwd=REPO,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pvp-bench-load-") as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        vol = make_volume(args.slices)
        write_dicom(vol, root / "dicom")
        write_nifti(vol, root / "ct.nii.gz")
        print(f"built {vol.shape[::-1]} (x, y, z) at {SPACING_XYZ} mm in {time.perf_counter() - t0:.1f} s "
              f"({'shared abdomen CT resampled' if SHARED_CT.exists() else 'synthetic shapes'})")
        del vol
        for label, path in (("DICOM, 400 uncompressed files", root / "dicom"), ("NIfTI .nii.gz", root / "ct.nii.gz")):
            runs = time_load(path, args.repeats)
            best = min(runs, key=lambda r: r["load_s"])
            all_s = ", ".join(f"{r['load_s']:.2f}" for r in runs)
            print(f"{label:32s} load_ct {best['load_s']:.2f} s (best of {len(runs)}: {all_s}), peak RSS {best['maxrss_mb']:.0f} MB "
                  f"(after import {best['import_rss_mb']:.0f} MB), "
                  f"volume {best['volume_mb']:.0f} MB {best['dtype']}, shape {tuple(best['shape'])}, "
                  f"warnings {len(best['warnings'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
