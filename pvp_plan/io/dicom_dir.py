"""DICOMDIR (Media Storage Directory) files: follow the directory records to the image files.

Referenced File IDs are relative to the folder holding the DICOMDIR. Some exporters write
directory files whose records do not match the files on disk (for example Philips ``DIRFILE``);
when none of the referenced files exists, the DICOMDIR's folder is scanned instead and a
warning says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydicom.dataset import Dataset

from pvp_plan.errors import InputError

logger = logging.getLogger(__name__)


def is_dicomdir(ds: Dataset) -> bool:
    """True for a Media Storage Directory dataset."""
    meta = getattr(ds, "file_meta", None)
    sop = str(getattr(meta, "MediaStorageSOPClassUID", "") or "") if meta is not None else ""
    return sop == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds


def referenced_files(ds: Dataset, dicomdir_path: Path) -> tuple[list[Path], list[str]]:
    """Image files referenced by a DICOMDIR, and warnings.

    Parameters
    ----------
    ds : Dataset
        The DICOMDIR dataset.
    dicomdir_path : Path
        Where it was read from.

    Returns
    -------
    files, warnings
        Existing referenced files (record order, duplicates removed). When none exists, every
        file under the DICOMDIR's folder (except the DICOMDIR itself) with a warning.

    Raises
    ------
    InputError
        The DICOMDIR lists no files and its folder holds nothing else.
    """
    base = dicomdir_path.parent
    listed: list[Path] = []
    for record in ds.get("DirectoryRecordSequence") or []:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else [str(p) for p in file_id]
        listed.append(base.joinpath(*parts))
    seen: set[Path] = set()
    existing = []
    for p in listed:
        if p not in seen and p.is_file():
            seen.add(p)
            existing.append(p)
    if existing:
        missing = len({*listed}) - len(existing)
        warnings = [f"DICOMDIR lists {missing} file(s) that are missing on disk"] if missing else []
        return existing, warnings
    from pvp_plan.io.dicom_scan import find_files

    fallback = [p for p in find_files(base) if p.resolve() != dicomdir_path.resolve()]
    if not fallback:
        raise InputError(f"{dicomdir_path}: the DICOMDIR references no file present on disk and its folder holds no "
                         "other file; copy the whole exported media, not only the DICOMDIR")
    warning = (f"DICOMDIR records ({len(listed)}) point to no existing file; scanned the DICOMDIR's folder instead"
               if listed else "DICOMDIR lists no image; scanned its folder instead")
    logger.info("%s: %s", dicomdir_path.name, warning)
    return fallback, [warning]
