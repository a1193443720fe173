"""npe2 reader: DICOM folder, DICOM file or DICOMDIR, NIfTI, NRRD, MetaImage -> a CT image layer in physical space.

The reader calls :func:`pvp_plan.io.load_ct`, the loader the CLI uses, so the series choice and the
error messages are the CLI's. Errors from pvp-plan appear in napari's notification area (never a
traceback dialog) and the reader then returns napari's "nothing to add" sentinel.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from pvp_plan_napari._layers import LayerData, ct_layer_data

logger = logging.getLogger(__name__)

#: Suffixes of single-file volumes (lower case).
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Suffixes of single DICOM files (lower case). Extension-less DICOM files: open their folder.
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def is_supported(path: str | os.PathLike) -> bool:
    """True for a folder, a DICOMDIR, a DICOM file by suffix, or a NIfTI/NRRD/MetaImage file."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        return True
    return name == "dicomdir" or name.endswith(IMAGE_SUFFIXES) or name.endswith(DICOM_SUFFIXES)


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """npe2 ``get_reader`` hook: the reader function for a supported path, else None.

    A list of paths is accepted only when it holds exactly one path (a stack of volumes is not a CT).
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not is_supported(path):
        return None
    return read_ct


def read_ct(path: str | list[str], series: str | None = None) -> list[LayerData]:
    """Load a CT with :func:`pvp_plan.io.load_ct` and return it as an image layer (bone window, physical space).

    On a pvp-plan error, shows the message as a napari error notification and returns ``[(None,)]``
    (napari's sentinel for "read, nothing to add").
    """
    from napari.utils.notifications import show_error, show_info, show_warning

    from pvp_plan.errors import PvpPlanError
    from pvp_plan.io import load_ct

    if isinstance(path, list):
        path = path[0]
    try:
        ct = load_ct(path, series=series)
    except PvpPlanError as exc:
        logger.info("load failed: %s", exc)
        show_error(f"pvp-plan: {exc}")
        return [(None,)]
    s = ct.series
    if s.other_series and s.choice_reason:
        show_info(f"pvp-plan: series {s.series_ref} chosen: {s.choice_reason} "
                  f"({len(s.other_series)} other series; `pvp-plan view --series UID` to choose)")
    for warning in ct.warnings:
        show_warning(f"pvp-plan: {warning}")
    return [ct_layer_data(ct, name=_layer_name(path, ct))]


def _layer_name(path: str, ct) -> str:
    """A layer name without patient identifiers: the file or folder name (never the full path)."""
    desc = ct.series.series_description
    name = Path(path).name
    return f"CT {desc}" if desc and desc != name else f"CT {name}"
