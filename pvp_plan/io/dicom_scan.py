"""Scanning DICOM files: read headers only, classify, group into candidate CT image stacks.

Headers are read with ``stop_before_pixels`` and ``specific_tags`` (fast). A file is ignored,
with its reason recorded as an :class:`~pvp_plan.io.ct_volume.IgnoredInput`, when it is not a
DICOM Part 10 file, a DICOMDIR, a non-image object (SR, dose report, presentation state...),
a secondary capture, a non-CT modality, or a localizer/scout. The remaining CT images are
grouped by series (SeriesInstanceUID; when it is missing, by study, series number and frame of
reference) and, within a series, by image orientation and slice size: each group is a stack.

No patient identifiers are read (the tag list holds none).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from pvp_plan.errors import InputError
from pvp_plan.io.ct_volume import IgnoredInput
from pvp_plan.io.slice_stack import describe_orientation

logger = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.2"
CT_SOP_CLASSES = {CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE, LEGACY_ENHANCED_CT_STORAGE}
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: Orientation vectors are grouped after rounding to this many decimals.
ORIENTATION_DECIMALS = 3
NOT_DICOM = "not a DICOM file"
#: Threads for header reads and pixel decoding.
MAX_WORKERS = max(2, min(8, (os.cpu_count() or 1)))

#: Header tags read during the scan; no patient identifiers among them.
SCAN_TAGS = [
    "SOPClassUID", "Modality", "ImageType", "SeriesInstanceUID", "StudyInstanceUID", "SeriesNumber",
    "SeriesDescription", "FrameOfReferenceUID", "Rows", "Columns", "NumberOfFrames", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "Manufacturer", "ConvolutionKernel",
    "InstanceNumber", "AcquisitionNumber", "GantryDetectorTilt", "RescaleSlope", "RescaleIntercept", "SamplesPerPixel",
    "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "GridFrameOffsetVector",
    "PixelPaddingValue",
]

_SOP_CLASS_NAMES = {
    "1.2.840.10008.5.1.4.1.1.7": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.1": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.2": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.3": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.4": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.88.67": "radiation dose SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "SR document",
    "1.2.840.10008.5.1.4.1.1.88.11": "SR document",
    "1.2.840.10008.5.1.4.1.1.88.33": "SR document",
    "1.2.840.10008.5.1.4.1.1.11.1": "presentation state",
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation",
    "1.2.840.10008.5.1.4.1.1.104.1": "encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT structure set",
}


@dataclass(frozen=True, eq=False)
class DicomHeader:
    """The header fields of one DICOM image file that the loader uses (no patient identifiers).

    Positions and orientations are LPS, mm; ``pixel_spacing_mm`` is (row spacing, column spacing).
    """

    path: Path
    sop_class: str
    modality: str
    image_type: tuple[str, ...]
    series_uid: str
    series_key: str
    series_description: str
    series_number: int | None
    rows: int | None
    columns: int | None
    n_frames: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing_mm: tuple[float, float] | None
    slice_thickness_mm: float | None
    manufacturer: str
    kernel: str
    instance_number: int | None
    acquisition_number: int | None
    gantry_tilt_deg: float | None
    rescale: tuple[float, float] = (1.0, 0.0)
    dataset: Dataset | None = field(default=None, repr=False)

    @property
    def enhanced(self) -> bool:
        return self.sop_class in (ENHANCED_CT_IMAGE_STORAGE, LEGACY_ENHANCED_CT_STORAGE) or self.n_frames > 1

    @property
    def normal(self) -> np.ndarray | None:
        if self.orientation is None:
            return None
        o = np.asarray(self.orientation, float)
        n = np.cross(o[:3], o[3:])
        norm = np.linalg.norm(n)
        return n / norm if norm > 0 else None


def _floats(value, n: int) -> tuple[float, ...] | None:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _float(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(132)
    except OSError:
        return b""


def is_dicom_part10(path: Path) -> bool:
    """True when the file carries the DICOM Part 10 preamble ('DICM' at byte 128)."""
    head = _head(path)
    return len(head) == 132 and head[128:132] == b"DICM"


def looks_like_dicom(path: Path) -> bool:
    """Part 10 file, or a raw dataset without preamble starting with a group 0x0002/0x0008 element."""
    head = _head(path)
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00")


def header_from_dataset(ds: Dataset, path: Path) -> DicomHeader:
    """Extract the loader's fields from a dataset (read with or without pixels)."""
    sop = str(ds.get("SOPClassUID", "") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    series_uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
    series_number = _int(ds.get("SeriesNumber"))
    if series_uid:
        key = series_uid
    else:
        key = "no-series-uid:{}/{}/{}".format(ds.get("StudyInstanceUID", "") or "", series_number or "",
                                              ds.get("FrameOfReferenceUID", "") or path.parent.name)
    kernel = ds.get("ConvolutionKernel", "")
    if isinstance(kernel, pydicom.multival.MultiValue):
        kernel = "\\".join(str(k) for k in kernel)
    image_type = ds.get("ImageType") or ()
    if isinstance(image_type, str):
        image_type = (image_type,)
    return DicomHeader(
        path=path,
        sop_class=sop,
        modality=str(ds.get("Modality", "") or "").upper(),
        image_type=tuple(str(v).strip().upper() for v in image_type),
        series_uid=series_uid,
        series_key=key,
        series_description=str(ds.get("SeriesDescription", "") or ""),
        series_number=series_number,
        rows=_int(ds.get("Rows")),
        columns=_int(ds.get("Columns")),
        n_frames=_int(ds.get("NumberOfFrames")) or 1,
        position=_floats(ds.get("ImagePositionPatient"), 3),
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing_mm=_floats(ds.get("PixelSpacing"), 2),
        slice_thickness_mm=_float(ds.get("SliceThickness")),
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        kernel=str(kernel or ""),
        instance_number=_int(ds.get("InstanceNumber")),
        acquisition_number=_int(ds.get("AcquisitionNumber")),
        gantry_tilt_deg=_float(ds.get("GantryDetectorTilt")),
        rescale=(_float(ds.get("RescaleSlope")) or 1.0, _float(ds.get("RescaleIntercept")) or 0.0),
    )


def read_header(path: Path) -> DicomHeader | IgnoredInput:
    """Read one file's header; an :class:`IgnoredInput` when it is not a readable DICOM file."""
    if not looks_like_dicom(path):
        return IgnoredInput(path.name, NOT_DICOM)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=SCAN_TAGS, force=not is_dicom_part10(path))
    except Exception as exc:  # corrupt header: record and go on with the other files
        return IgnoredInput(path.name, f"unreadable DICOM header ({type(exc).__name__}: {str(exc)[:80]})")
    try:
        header = header_from_dataset(ds, path)
    except Exception as exc:  # malformed values are converted lazily by pydicom
        return IgnoredInput(path.name, f"malformed DICOM header ({type(exc).__name__}: {str(exc)[:80]})")
    if header.n_frames > 1:  # keep the functional groups for the frame geometry
        object.__setattr__(header, "dataset", ds)
    return header


def classify(header: DicomHeader) -> str | None:
    """Why a file is not part of an axial CT image stack, or None when it may be."""
    if header.sop_class == MEDIA_STORAGE_DIRECTORY or (not header.sop_class and header.rows is None):
        return "DICOMDIR / directory file, not an image"
    name = _SOP_CLASS_NAMES.get(header.sop_class)
    if name is None and header.sop_class.startswith("1.2.840.10008.5.1.4.1.1.88."):
        name = "SR document"
    if name is not None:
        detail = "/".join(t for t in header.image_type[2:3] if t)
        return f"{name}{' (' + detail + ')' if detail else ''}, not a CT image"
    if header.modality and header.modality != "CT":
        return f"modality {header.modality}, not CT"
    if header.sop_class and header.sop_class not in CT_SOP_CLASSES:
        return f"SOP class {header.sop_class} is not a CT image"
    if any(t in ("LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "SCANOGRAM") for t in header.image_type):
        return "localizer/scout image (ImageType LOCALIZER)"
    if header.rows is None or header.columns is None:
        return "no image (Rows/Columns missing)"
    if header.enhanced:
        return None
    if header.position is None or header.orientation is None or header.pixel_spacing_mm is None:
        return "no image geometry (ImagePositionPatient/ImageOrientationPatient/PixelSpacing missing)"
    return None


@dataclass(eq=False)
class StackGroup:
    """Files of one series sharing orientation and slice size: one candidate image stack."""

    series_key: str
    headers: list[DicomHeader]
    orientation_label: str = "axial"

    @property
    def first(self) -> DicomHeader:
        return self.headers[0]

    @property
    def n_files(self) -> int:
        return len(self.headers)


@dataclass
class ScanResult:
    """What a scan found: candidate stacks, ignored inputs, modalities seen."""

    groups: list[StackGroup]
    ignored: list[IgnoredInput]
    modalities: dict[str, int]
    n_files: int


def find_files(folder: Path) -> list[Path]:
    """All regular files under ``folder`` (recursive, sorted, hidden files skipped)."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return files


def read_headers(paths: list[Path]) -> list[DicomHeader | IgnoredInput]:
    """Read headers of many files (thread pool; order kept)."""
    if len(paths) < 16:
        return [read_header(p) for p in paths]
    with ThreadPoolExecutor(MAX_WORKERS) as pool:
        return list(pool.map(read_header, paths, chunksize=16))


def _orientation_key(h: DicomHeader) -> tuple:
    o = np.round(np.asarray(h.orientation, float), ORIENTATION_DECIMALS) + 0.0 if h.orientation else None
    return (tuple(o) if o is not None else None, h.rows, h.columns)


def group_headers(headers: list[DicomHeader | IgnoredInput], *, root: Path) -> ScanResult:
    """Classify headers and group the CT images into stacks (series, then orientation and size)."""
    ignored: list[IgnoredInput] = []
    modalities: dict[str, int] = defaultdict(int)
    by_series: dict[str, list[DicomHeader]] = defaultdict(list)
    n_files = len(headers)
    for h in headers:
        if isinstance(h, IgnoredInput):
            ignored.append(h)
            continue
        if h.modality and h.rows is not None:  # images only (an SR or dose report says nothing of the study)
            modalities[h.modality] += 1
        reason = classify(h)
        if reason:
            ignored.append(IgnoredInput(_rel(h.path, root), reason))
        else:
            by_series[h.series_key].append(h)
    groups: list[StackGroup] = []
    for key, hs in by_series.items():
        enhanced = [h for h in hs if h.enhanced]
        for h in enhanced:  # each multi-frame file is a stack of its own
            groups.append(StackGroup(key, [h], "multi-frame"))
        by_orient: dict[tuple, list[DicomHeader]] = defaultdict(list)
        for h in hs:
            if not h.enhanced:
                by_orient[_orientation_key(h)].append(h)
        for members in by_orient.values():
            label = describe_orientation(members[0].normal) if members[0].normal is not None else "unknown"
            groups.extend(StackGroup(key, part, label) for part in _split_acquisitions(members))
    groups = _drop_single_non_axial(groups, ignored, root)
    return ScanResult(groups=groups, ignored=ignored, modalities=dict(modalities), n_files=n_files)


def _has_duplicate_positions(headers: list[DicomHeader]) -> bool:
    normal = headers[0].normal
    if normal is None:
        return False
    offsets = np.round(np.array([h.position for h in headers], float) @ normal, 2)
    return len(set(offsets.tolist())) < len(headers)


def _split_acquisitions(members: list[DicomHeader]) -> list[list[DicomHeader]]:
    """Slices sharing positions (several phases/acquisitions in one series) split by AcquisitionNumber.

    The split is kept only when it removes every duplicate; otherwise the group stays whole and the
    stack builder reports the duplicate positions.
    """
    if len(members) < 2 or not _has_duplicate_positions(members):
        return [members]
    parts: dict[int | None, list[DicomHeader]] = defaultdict(list)
    for h in members:
        parts[h.acquisition_number].append(h)
    if len(parts) > 1 and not any(_has_duplicate_positions(p) for p in parts.values()):
        logger.info("series split into %d acquisitions sharing slice positions", len(parts))
        return [parts[k] for k in sorted(parts, key=lambda v: (v is None, v or 0))]
    return [members]


def _drop_single_non_axial(groups: list[StackGroup], ignored: list[IgnoredInput], root: Path) -> list[StackGroup]:
    """Single non-axial slices are localizers even without the LOCALIZER image type."""
    kept = []
    for g in groups:
        if g.orientation_label not in ("axial", "multi-frame") and g.n_files == 1:
            ignored.append(IgnoredInput(_rel(g.first.path, root),
                                        f"single {g.orientation_label} slice (localizer-like), not an axial stack"))
        else:
            kept.append(g)
    return kept


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def scan_files(paths: list[Path], *, root: Path) -> ScanResult:
    """Read the headers of ``paths`` and group them (see :func:`group_headers`)."""
    logger.info("reading %d DICOM headers", len(paths))
    return group_headers(read_headers(paths), root=root)


def scan_folder(folder: Path) -> ScanResult:
    """Scan a folder recursively.

    Raises
    ------
    InputError
        The folder is empty or cannot be listed.
    """
    try:
        paths = find_files(folder)
    except OSError as exc:
        raise InputError(f"{folder}: cannot be listed ({exc}); check permissions") from exc
    if not paths:
        raise InputError(f"{folder}: the folder is empty; pass the folder holding the CT's DICOM files")
    return scan_files(paths, root=folder)
