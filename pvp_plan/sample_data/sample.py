"""The committed sample phantom (top-level ``sample_data/phantom/``) and its regeneration.

When the committed folder is absent (a non-editable install), the sample is regenerated
deterministically into ``$PVP_PLAN_CACHE/sample`` or ``~/.cache/pvp-plan/sample``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pvp_plan.sample_data.phantom import Phantom, generate_phantom

logger = logging.getLogger(__name__)

#: Parameters of the committed sample (keep in step with ``sample_data/README.md``).
SAMPLE_KWARGS: dict = {"seed": 0, "spacing_mm": (2.5, 1.0, 1.0), "fov_mm": (126.0, 152.0), "noise_sd_hu": 12.0}

_REPO_SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "phantom"
_FILES = ("ct_dicom", "ct.nii.gz", "vertebral_bodies_truth.nii.gz", "extra_masks.nii.gz", "truth.json")


def _complete(folder: Path) -> bool:
    return all((folder / name).exists() for name in _FILES)


def generator_fingerprint() -> str:
    """Hash of the generator's source and the sample parameters: a cached sample is rebuilt when it changes."""
    h = hashlib.sha256(repr(sorted(SAMPLE_KWARGS.items())).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where a regenerated sample goes: ``$PVP_PLAN_CACHE/sample`` or ``~/.cache/pvp-plan/sample``."""
    base = os.environ.get("PVP_PLAN_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "pvp-plan") / "sample"


def sample_dir() -> Path:
    """The folder holding the sample (committed copy, else the cache, generated on first use)."""
    if _complete(_REPO_SAMPLE):
        return _REPO_SAMPLE
    folder = cache_dir()
    stamp = folder / "generator_fingerprint.txt"
    fingerprint = generator_fingerprint()
    fresh = _complete(folder) and stamp.exists() and stamp.read_text(encoding="utf-8").strip() == fingerprint
    if not fresh:
        from pvp_plan.io.atomic import atomic_write_text
        from pvp_plan.sample_data.write import write_phantom

        logger.info("committed sample not found; generating it into %s", folder)
        write_phantom(generate_phantom(**SAMPLE_KWARGS), folder)
        atomic_write_text(stamp, fingerprint + "\n")
    return folder


def sample_dicom_dir() -> Path:
    """Folder of the sample CT DICOM series (one file per slice, RLE Lossless)."""
    return sample_dir() / "ct_dicom"


def sample_nifti_path() -> Path:
    """Path of the sample CT as NIfTI (``ct.nii.gz``)."""
    return sample_dir() / "ct.nii.gz"


def sample_truth_path() -> Path:
    """Path of the sample's ``truth.json``."""
    return sample_dir() / "truth.json"


def load_sample() -> Phantom:
    """The sample phantom read from disk: CT (from the NIfTI), body labels, extra masks and truth."""
    from pvp_plan.io import load_ct
    from pvp_plan.sample_data.write import split_masks

    folder = sample_dir()
    ct = load_ct(folder / "ct.nii.gz")
    labels = _read_on_grid(folder / "vertebral_bodies_truth.nii.gz", ct.shape)
    masks = split_masks(_read_on_grid(folder / "extra_masks.nii.gz", ct.shape))
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    return Phantom(ct=ct, body_labels=labels, masks=masks, truth=truth)


def _read_on_grid(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    image = sitk.DICOMOrient(sitk.ReadImage(str(path)), "LPS")
    arr = sitk.GetArrayFromImage(image).astype(np.uint8)
    if arr.shape != tuple(shape):
        raise ValueError(f"{path}: shape {arr.shape} differs from the CT {shape}")
    return arr
