"""Image files read through SimpleITK: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd).

SimpleITK reports every format in LPS (it converts NIfTI's RAS), so a NIfTI stored RAS and the
same data stored LPS give the same internal array. Axis-aligned images are transposed/flipped
exactly; oblique images are resampled (see :mod:`pvp_plan.io.orientation`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pvp_plan.errors import InputError
from pvp_plan.io.ct_volume import CTVolume, SeriesInfo, SourceGeometry
from pvp_plan.io.orientation import stack_to_lps
from pvp_plan.io.slice_stack import apply_order, make_stack

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "metaimage",
                  ".mhd": "metaimage"}


def image_format(path: Path) -> str | None:
    """The format name ("nifti", "nrrd", "metaimage") from the file suffix, or None."""
    name = path.name.lower()
    for suffix, fmt in IMAGE_SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def _read_image(path: Path) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line for line in first if "ERROR" in line or "rror" in line), first[0] if first else "")
        raise InputError(f"{path}: cannot be read as an image ({detail.strip()[:160]}); "
                         "check that the file is complete and not corrupt") from exc


def _as_hu_array(image: sitk.Image, path: Path) -> np.ndarray:
    """The (z, y, x) pixel array as int16 (integral values within range) or float32."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: {image.GetNumberOfComponentsPerPixel()} components per voxel; "
                         "a CT holds one HU value per voxel")
    arr = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == np.int16:
            return np.array(arr)
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= -32768 and hi <= 32767:
            return arr.astype(np.int16)
        logger.warning("%s: values %d..%d exceed int16; clipped", path.name, lo, hi)
        return np.clip(arr, -32768, 32767).astype(np.int16)
    arr32 = arr.astype(np.float32)
    if np.all(np.isfinite(arr32)) and np.array_equal(arr32, np.rint(arr32)) and arr32.min() >= -32768 \
            and arr32.max() <= 32767:
        return arr32.astype(np.int16)
    return arr32


def load_image_file(path: Path, *, source_format: str) -> CTVolume:
    """Load a 3-D image file into an LPS-aligned :class:`CTVolume`.

    Raises
    ------
    InputError
        Unreadable file, not 3-D, vector pixels.
    GeometryError
        A single slice.
    """
    return volume_from_image(_read_image(path), source_path=str(path), source_format=source_format)


def volume_from_image(image: sitk.Image, *, source_path: str, source_format: str) -> CTVolume:
    """Put a 3-D SimpleITK image (LPS physical space) on the internal LPS grid.

    Exact (transposition and flips) when axis-aligned; resampled with a warning when oblique.
    """
    path = Path(source_path)
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise InputError(f"{path}: expected a 3-D image, got {image.GetDimension()}-D "
                         f"(size {image.GetSize()}); pvp-plan needs one 3-D CT volume")
    array_kij = _as_hu_array(image, path)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = image.GetSpacing()
    origin = np.array(image.GetOrigin())
    n_k = image.GetSize()[2]
    positions = origin[None, :] + np.arange(n_k)[:, None] * spacing[2] * direction[:, 2][None, :]
    stack, order = make_stack(positions, direction[:, 0], direction[:, 1],
                              pixel_spacing_mm=(spacing[1], spacing[0]), shape_ij=array_kij.shape[1:])
    grid = stack_to_lps(apply_order(array_kij, order), stack, what=source_path)
    series = SeriesInfo(source_path=source_path, source_format=source_format, series_description=path.name,
                        n_files=1)
    source = SourceGeometry.of_image(image, resampled=grid.source.resampled)
    return CTVolume(hu=grid.hu, spacing_mm=grid.spacing_mm, origin_lps_mm=grid.origin_lps_mm, series=series,
                    source_geometry=source, warnings=grid.warnings)
