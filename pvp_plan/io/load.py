"""The one entry point for reading CT: :func:`load_ct`.

Dispatch
--------
* a folder -> DICOM scan (recursive), see :mod:`pvp_plan.io.dicom_load`;
* ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd`` -> SimpleITK,
  see :mod:`pvp_plan.io.image_files`;
* any other file -> DICOM: a DICOMDIR is followed, a multi-frame / Enhanced CT file is a
  volume, a single-frame file is refused as a single slice (pass its folder).

Every failure is a :class:`pvp_plan.errors.InputError` subclass naming the file and the fix.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pvp_plan.errors import InputError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.io.dicom_load import load_dicom_file, load_dicom_folder
from pvp_plan.io.dicom_scan import looks_like_dicom
from pvp_plan.io.image_files import IMAGE_SUFFIXES, image_format, load_image_file, volume_from_image

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_SUFFIXES", "image_format", "load_ct", "volume_from_image"]


def load_ct(path: str | Path, series: str | None = None) -> CTVolume:
    """Load a CT into an LPS-aligned :class:`CTVolume`.

    Parameters
    ----------
    path : str or Path
        A DICOM folder (searched recursively), a DICOMDIR, a multi-frame / Enhanced CT DICOM
        file, or a NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) or MetaImage (.mha, .mhd) file.
    series : str, optional
        SeriesInstanceUID to load when the input holds several CT series (DICOM only).

    Returns
    -------
    CTVolume
        HU on an LPS-aligned grid; ``warnings`` lists what was corrected (gantry tilt,
        irregular spacing, oblique planes), ``series`` what was chosen and why.

    Raises
    ------
    InputError
        Missing, empty, unreadable or unsupported input.
    SeriesError
        No CT series (e.g. MR), or ``series`` not found.
    GeometryError
        A single slice, inconsistent slice sizes, duplicate positions or huge gaps.
    PixelDataError
        Corrupt pixel data or a missing codec.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        return load_dicom_folder(path, series=series)
    fmt = image_format(path)
    if fmt is not None:
        if series is not None:
            logger.warning("--series is ignored for %s files", fmt)
        return load_image_file(path, source_format=fmt)
    if not looks_like_dicom(path):
        raise InputError(
            f"{path}: neither DICOM (no 'DICM' marker) nor a supported image file "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}); pass a DICOM folder or file, a DICOMDIR, NIfTI, NRRD or MHA/MHD"
        )
    return load_dicom_file(path, series=series)
