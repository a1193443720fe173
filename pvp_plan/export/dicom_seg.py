"""DICOM Segmentation (SEG) of the vertebral bodies, written and read with highdicom.

Geometry
--------
The label map lives on the internal LPS grid (:mod:`pvp_plan.io.ct_volume`). For export, every pixel of
every source frame is placed in patient space from that frame's own Image Position / Orientation and
Pixel Spacing, and takes the label of the nearest internal voxel (:func:`labels_on_source_frames`). The
frames therefore follow each source instance whatever the slice order or row/column flips of the series;
the mapping is exact (no interpolation) unless the loader resampled the CT (gantry tilt, irregular slices).
Reading back (:func:`seg_to_label_map`) places every SEG frame by its Plane Position on the CT grid.

Patient data
------------
A SEG must belong to the study of its source images, so highdicom copies the Patient, General Study and
Frame of Reference information (patient name, ID, birth date, sex, study UID, date, accession number...)
from the source CT. This is the DICOM norm and the one pvp-plan output that carries them; nothing else is
added (no paths, no user names).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from pvp_plan.errors import ExportError, LabelMapError
from pvp_plan.export.codes import SEGMENT_CATEGORY, level_of_code, vertebra_code
from pvp_plan.io.atomic import atomic_write_bytes
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import Level
from pvp_plan.segment.types import Segmentation

logger = logging.getLogger(__name__)

MANUFACTURER = "pvp-plan developers"
MODEL = "pvp-plan"
SEG_SERIES_NUMBER = 9901
SEG_SERIES_DESCRIPTION = "pvp-plan vertebral bodies"


@dataclass(frozen=True)
class SegExport:
    """What :func:`write_dicom_seg` wrote.

    Attributes
    ----------
    path : Path
        The SEG file.
    dataset : pydicom.Dataset
        The SEG as written (for the SR's references).
    segment_numbers : dict of str to int
        Segment number of each level (``{"L1": 2, ...}``), cranial to caudal from 1.
    source_datasets : list of pydicom.Dataset
        Headers of the source CT instances (no pixel data), in ``ct.series.dicom_files`` order.
    """

    path: Path
    dataset: pydicom.Dataset
    segment_numbers: dict[str, int]
    source_datasets: list[pydicom.Dataset]


def require_dicom_input(ct: CTVolume) -> None:
    """Raise :class:`ExportError` unless ``ct`` was loaded from DICOM (cheap: call it before planning)."""
    if not ct.series.dicom_files or not str(ct.series.source_format).startswith("dicom"):
        raise ExportError(
            f"{Path(ct.series.source_path).name}: DICOM SEG/SR export needs a DICOM input (the exports reference "
            f"the source CT instances); this input is {ct.series.source_format}. Run on the DICOM series instead"
        )


def read_source_headers(ct: CTVolume) -> list[pydicom.Dataset]:
    """Headers of the CT's source DICOM instances; :class:`ExportError` when the input was not DICOM."""
    require_dicom_input(ct)
    files = ct.series.dicom_files
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise ExportError(f"{len(missing)} source DICOM files are gone (e.g. {Path(missing[0]).name}); "
                          "the DICOM export needs the input series in place")
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def write_dicom_seg(
    ct: CTVolume,
    segmentation: Segmentation,
    path: str | Path,
    *,
    levels: list[str] | None = None,
    source_datasets: list[pydicom.Dataset] | None = None,
) -> SegExport:
    """Write the vertebral bodies as a DICOM SEG (one BINARY segment per level) referencing the source CT.

    Parameters
    ----------
    ct : CTVolume
        The CT, loaded from DICOM (``ct.series.dicom_files`` set).
    segmentation : Segmentation
        VerSe body label map on ``ct``'s grid.
    path : str or Path
        Output file (written atomically).
    levels : list of str, optional
        Levels to export (default: every body present).
    source_datasets : list of pydicom.Dataset, optional
        Already-read source headers (:func:`read_source_headers`).

    Returns
    -------
    SegExport
        Segment number per level: segments are numbered from 1, cranial to caudal.

    Notes
    -----
    Segment property category "Anatomical Structure" (SCT 91723000), property type the SNOMED CT code
    of the vertebra (see :mod:`pvp_plan.export.codes`), label ``"L1 vertebral body"``. Algorithm type
    AUTOMATIC (MANUAL once the map was edited by hand), algorithm identification pvp-plan and its version.
    Copies the patient and study modules from the source (see the module docstring).
    """
    import highdicom as hd

    sources = source_datasets if source_datasets is not None else read_source_headers(ct)
    bodies = [b for b in segmentation.bodies if levels is None or b.level.value in set(levels)]
    if not bodies:
        raise ExportError("no vertebral body to export in the DICOM SEG")
    numbers = {b.level.value: i for i, b in enumerate(bodies, start=1)}
    lut = np.zeros(256, dtype=np.uint8)
    for b in bodies:
        lut[b.label] = numbers[b.level.value]
    segment_map = lut[segmentation.labels]
    frames = np.concatenate([labels_on_source_frames(segment_map, ct, ds) for ds in sources])
    descriptions = [_segment_description(b.level, n, segmentation) for b, n in zip(bodies, numbers.values(), strict=True)]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL,
        software_versions=_version(),
        device_serial_number="none",
        content_label="VERTEBRAE",
        content_description="Vertebral bodies (pvp-plan)",
        series_description=SEG_SERIES_DESCRIPTION,
    )
    for item in seg.SegmentSequence:
        item.SegmentDescription = "vertebral body (arch excluded)"
    buffer = io.BytesIO()
    seg.save_as(buffer, enforce_file_format=True)
    out = atomic_write_bytes(path, buffer.getvalue())
    logger.info("DICOM SEG with %d segments written to %s", len(bodies), out.name)
    return SegExport(path=out, dataset=seg, segment_numbers=numbers, source_datasets=sources)


def _segment_description(level: Level, number: int, segmentation: Segmentation):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    manual = segmentation.edited
    family = codes.cid7162.ManualProcessing if manual else (
        codes.cid7162.ArtificialIntelligence if "TotalSegmentator" in segmentation.method
        else codes.cid7162.MorphologicalOperations)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="pvp-plan", family=family, version=_version(),
        parameters={"method": (segmentation.method or "pvp-plan")[:64]},
    )
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=f"{level.value} vertebral body",
        segmented_property_category=SEGMENT_CATEGORY,
        segmented_property_type=vertebra_code(level),
        algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.MANUAL if manual
                        else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC),
        algorithm_identification=algorithm,
        tracking_uid=generate_uid(),
        tracking_id=f"{level.value} vertebral body",
    )


def frame_planes(ds: pydicom.Dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]]:
    """Geometry of each frame of an image: (position, row direction, column direction... ) in LPS mm.

    Returns a list of ``(position_lps_mm, step_col_lps_mm, step_row_lps_mm, rows, columns)``: the centre
    of the first pixel, and the LPS displacement of one step along a row (next column) and down a column
    (next row). Works for single-frame images and for multi-frame images with functional groups.
    """
    rows, cols = int(ds.Rows), int(ds.Columns)
    if "PerFrameFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
        planes = []
        for item in ds.PerFrameFunctionalGroupsSequence:
            def pick(name, item=item):
                if name in item:
                    return item[name].value[0]
                if shared is not None and name in shared:
                    return shared[name].value[0]
                raise ExportError(f"frame without {name}: cannot place it in patient space")
            position = pick("PlanePositionSequence").ImagePositionPatient
            orientation = pick("PlaneOrientationSequence").ImageOrientationPatient
            spacing = pick("PixelMeasuresSequence").PixelSpacing
            planes.append(_plane(position, orientation, spacing, rows, cols))
        return planes
    for name in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if name not in ds:
            raise ExportError(f"source instance without {name}: cannot place it in patient space")
    return [_plane(ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing, rows, cols)]


def _plane(position, orientation, spacing, rows, cols):
    orient = np.asarray(orientation, dtype=float)
    row_spacing, col_spacing = (float(v) for v in spacing)  # between rows, between columns
    return (np.asarray(position, dtype=float), orient[:3] * col_spacing, orient[3:] * row_spacing, rows, cols)


def labels_on_source_frames(labels: np.ndarray, ct: CTVolume, ds: pydicom.Dataset) -> np.ndarray:
    """The label map (internal grid) sampled at every pixel of ``ds``'s frames: (frames, rows, columns).

    Nearest internal voxel; pixels outside the CT grid get 0.
    """
    origin = np.asarray(ct.origin_lps_mm, dtype=float)
    spacing = np.asarray(ct.spacing_xyz_mm, dtype=float)
    nz, ny, nx = ct.shape
    out = []
    for position, step_col, step_row, rows, cols in frame_planes(ds):
        # the plane is affine: the fractional (x, y, z) index of pixel (r, c) is start + c * dc + r * dr
        start, dc, dr = (position - origin) / spacing, step_col / spacing, step_row / spacing
        r, c = np.arange(rows, dtype=float)[:, None], np.arange(cols, dtype=float)[None, :]
        ix, iy, iz = (np.rint(start[k] + c * dc[k] + r * dr[k]).astype(np.int64) for k in range(3))
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny) & (iz >= 0) & (iz < nz)
        frame = np.zeros((rows, cols), dtype=labels.dtype)
        frame[inside] = labels[iz[inside], iy[inside], ix[inside]]
        out.append(frame)
    return np.stack(out)


def seg_to_label_map(seg: pydicom.Dataset, ct: CTVolume) -> dict[int, np.ndarray]:
    """Place every frame of a SEG on ``ct``'s grid by its Plane Position: boolean mask per segment number.

    Pixels whose position falls between CT voxels go to the nearest voxel (exact when the SEG was made
    on the CT's own series and the CT was not resampled).
    """
    import highdicom as hd

    if not isinstance(seg, hd.seg.Segmentation):
        seg = hd.seg.Segmentation.from_dataset(seg)
    masks = {int(n): np.zeros(ct.shape, dtype=bool) for n in seg.get_segment_numbers()}
    planes = frame_planes(seg)
    pixels = seg.pixel_array.reshape(len(planes), int(seg.Rows), int(seg.Columns))
    for item, (position, step_col, step_row, _, _), frame in zip(seg.PerFrameFunctionalGroupsSequence, planes,
                                                                   pixels, strict=True):
        number = int(_functional_group(seg, item, "SegmentIdentificationSequence").ReferencedSegmentNumber)
        r, c = np.nonzero(frame)
        points = position + c[:, None] * step_col + r[:, None] * step_row
        index = np.rint(ct.lps_to_index(points)).astype(np.int64)
        inside = np.all((index >= 0) & (index < np.asarray(ct.shape)), axis=1)
        iz, iy, ix = index[inside].T
        masks[number][iz, iy, ix] = True
    return masks


def _functional_group(ds: pydicom.Dataset, frame_item: pydicom.Dataset, name: str) -> pydicom.Dataset:
    """First item of a functional group macro, per-frame if present there, else shared."""
    if name in frame_item:
        return frame_item[name].value[0]
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else pydicom.Dataset()
    if name in shared:
        return shared[name].value[0]
    raise LabelMapError(f"SEG frame without {name}: cannot tell which segment it holds")


def read_dicom_seg_levels(path: str | Path, ct: CTVolume) -> tuple[np.ndarray, bool]:
    """A DICOM SEG of vertebrae as a VerSe label map on ``ct``'s grid, and whether it holds bodies only.

    The level of each segment comes from its SNOMED CT property type (see :mod:`pvp_plan.export.codes`),
    else from a level name at the start of its label (``"L1 vertebral body"``). Segments are bodies when
    their label or description says "body". Segments naming no vertebra are ignored (logged).
    """
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise LabelMapError(f"{path.name}: cannot read the DICOM SEG ({exc})") from None
    frame_uid = getattr(seg, "FrameOfReferenceUID", None)
    if ct.series.dicom_files and frame_uid:
        first = pydicom.dcmread(ct.series.dicom_files[0], stop_before_pixels=True,
                                specific_tags=["FrameOfReferenceUID"])
        if getattr(first, "FrameOfReferenceUID", frame_uid) != frame_uid:
            raise LabelMapError(f"{path.name} belongs to another frame of reference than "
                                f"{Path(ct.series.source_path).name}; use the SEG made on this series")
    masks = seg_to_label_map(seg, ct)
    labels = np.zeros(ct.shape, dtype=np.uint8)
    bodies_only = []
    for item in seg.SegmentSequence:
        level = _segment_level(item)
        number = int(item.SegmentNumber)
        if level is None:
            logger.info("%s: segment %d (%s) names no vertebra; ignored", path.name, number,
                        getattr(item, "SegmentLabel", ""))
            continue
        text = f"{getattr(item, 'SegmentLabel', '')} {getattr(item, 'SegmentDescription', '')}".lower()
        bodies_only.append("body" in text)
        labels[masks[number]] = level.label
    if not labels.any():
        raise LabelMapError(f"{path.name}: no segment with a vertebra code or level name inside the CT")
    return labels, all(bodies_only)


def _segment_level(item: pydicom.Dataset) -> Level | None:
    if "SegmentedPropertyTypeCodeSequence" in item:
        code = item.SegmentedPropertyTypeCodeSequence[0]
        level = level_of_code(code.CodeValue, code.CodingSchemeDesignator)
        if level is not None:
            return level
    words = str(getattr(item, "SegmentLabel", "")).replace("_", " ").split()
    for word in words[:2]:
        try:
            return Level.parse(word.removeprefix("vertebrae").strip())
        except ValueError:
            continue
    return None


def _version() -> str:
    from pvp_plan import __version__

    return __version__
