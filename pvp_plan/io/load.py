"""The one entry point for reading CT: :func:`load_ct`.

PROVISIONAL: image files (NIfTI, NRRD, MHA/MHD) only; the DICOM path is being added in
``pvp_plan.io.dicom_*`` by the loader work (issue 2).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pvp_plan.errors import InputError
from pvp_plan.io.ct_volume import CTVolume, SeriesInfo, SourceGeometry

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".nii": "nifti", ".nii.gz": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "metaimage",
                  ".mhd": "metaimage"}


def image_format(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, fmt in IMAGE_SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def load_ct(path: str | Path, series: str | None = None) -> CTVolume:
    """Load a CT from a DICOM folder/file, NIfTI, NRRD or MetaImage into an LPS-aligned :class:`CTVolume`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    fmt = image_format(path)
    if fmt is None:
        raise InputError(f"{path}: DICOM loading is not available yet")
    image = sitk.ReadImage(str(path))
    return volume_from_image(image, source_path=str(path), source_format=fmt)


def volume_from_image(image: sitk.Image, *, source_path: str, source_format: str) -> CTVolume:
    """Reorient a 3-D SimpleITK image to the LPS-aligned internal grid (exact when axis-aligned)."""
    if image.GetDimension() != 3:
        raise InputError(f"{source_path}: expected a 3-D image, got {image.GetDimension()}-D")
    source = SourceGeometry.of_image(image)
    oriented = sitk.DICOMOrient(image, "LPS")
    direction = np.array(oriented.GetDirection()).reshape(3, 3)
    resampled = False
    if not np.allclose(direction, np.eye(3), atol=1e-4):
        raise InputError(f"{source_path}: oblique image orientation is not supported yet")
    hu = sitk.GetArrayFromImage(oriented)
    if not np.issubdtype(hu.dtype, np.integer) or hu.dtype.itemsize > 2:
        hu = hu.astype(np.float32) if not np.issubdtype(hu.dtype, np.integer) else hu.astype(np.int16)
    series = SeriesInfo(source_path=source_path, source_format=source_format,
                        series_description=Path(source_path).name)
    return CTVolume(
        hu=hu,
        spacing_mm=tuple(oriented.GetSpacing()[::-1]),
        origin_lps_mm=tuple(oriented.GetOrigin()),
        series=series,
        source_geometry=SourceGeometry(**{**source.__dict__, "resampled": resampled}),
    )
