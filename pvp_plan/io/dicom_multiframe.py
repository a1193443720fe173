"""Enhanced / multi-frame CT: one file holding a stack of frames.

Geometry and rescale come from the functional groups: per-frame
(PerFrameFunctionalGroupsSequence) values override shared
(SharedFunctionalGroupsSequence) ones:

* PlanePositionSequence -> ImagePositionPatient of each frame (LPS, mm),
* PlaneOrientationSequence -> ImageOrientationPatient,
* PixelMeasuresSequence -> PixelSpacing (and SliceThickness),
* PixelValueTransformationSequence -> RescaleSlope / RescaleIntercept.

A legacy multi-frame file without functional groups falls back to the top-level
ImagePositionPatient plus GridFrameOffsetVector when present.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from pvp_plan.errors import GeometryError
from pvp_plan.io.dicom_pixels import (
    check_plausible_hu,
    decode_stored,
    padding_mask,
    rescale_is_integral,
    to_hu,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class FrameGeometry:
    """Per-frame geometry and rescale of a multi-frame image.

    Attributes
    ----------
    positions_lps_mm : np.ndarray
        (F, 3) ImagePositionPatient of each frame, file order.
    orientation : tuple of float
        ImageOrientationPatient shared by all frames (row direction, column direction).
    pixel_spacing_mm : tuple of float
        (row spacing, column spacing) in mm.
    slopes, intercepts : np.ndarray
        (F,) rescale per frame.
    slice_thickness_mm : float or None
    """

    positions_lps_mm: np.ndarray
    orientation: tuple[float, ...]
    pixel_spacing_mm: tuple[float, float]
    slopes: np.ndarray
    intercepts: np.ndarray
    slice_thickness_mm: float | None

    @property
    def n_frames(self) -> int:
        return int(self.positions_lps_mm.shape[0])


def _item(ds: Dataset | None, seq: str) -> Dataset | None:
    if ds is None:
        return None
    value = ds.get(seq)
    return value[0] if value else None


def _lookup(per_frame: Dataset | None, shared: Dataset | None, seq: str, attr: str):
    for group in (per_frame, shared):
        item = _item(group, seq)
        if item is not None and attr in item and item.get(attr) not in (None, ""):
            return item.get(attr)
    return None


def frame_geometry(ds: Dataset, path: Path) -> FrameGeometry:
    """Read the per-frame geometry of a multi-frame CT dataset (pixels not needed).

    Raises
    ------
    GeometryError
        Frames without position, orientation or pixel spacing, or with several orientations.
    """
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence") or []
    if per_frame_seq and len(per_frame_seq) != n_frames:
        raise GeometryError(f"{path}: {len(per_frame_seq)} per-frame groups for {n_frames} frames; the file is "
                            "inconsistent: re-export it")
    positions, orientations, slopes, intercepts = [], set(), [], []
    spacing = thickness = None
    for f in range(n_frames):
        pf = per_frame_seq[f] if per_frame_seq else None
        pos = _lookup(pf, shared, "PlanePositionSequence", "ImagePositionPatient")
        orient = _lookup(pf, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
        sp = _lookup(pf, shared, "PixelMeasuresSequence", "PixelSpacing")
        thickness = thickness or _lookup(pf, shared, "PixelMeasuresSequence", "SliceThickness")
        slope = _lookup(pf, shared, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _lookup(pf, shared, "PixelValueTransformationSequence", "RescaleIntercept")
        positions.append(pos)
        orientations.add(tuple(round(float(v), 4) for v in orient) if orient is not None else None)
        spacing = spacing or sp
        slopes.append(float(slope) if slope is not None else float(ds.get("RescaleSlope", 1) or 1))
        intercepts.append(float(intercept) if intercept is not None else float(ds.get("RescaleIntercept", 0) or 0))
    if not per_frame_seq:
        positions, orientations, spacing = _legacy_geometry(ds, n_frames)
    if any(p is None for p in positions) or None in orientations or spacing is None:
        raise GeometryError(f"{path}: multi-frame image without per-frame position, orientation or pixel spacing; "
                            "cannot place the frames in space: export the series as single-frame CT images")
    if len(orientations) != 1:
        raise GeometryError(f"{path}: frames have {len(orientations)} different orientations; pvp-plan needs one "
                            "stack of parallel frames")
    return FrameGeometry(
        positions_lps_mm=np.array([[float(v) for v in p] for p in positions]),
        orientation=next(iter(orientations)),
        pixel_spacing_mm=(float(spacing[0]), float(spacing[1])),
        slopes=np.array(slopes),
        intercepts=np.array(intercepts),
        slice_thickness_mm=float(thickness) if thickness is not None else None,
    )


def _legacy_geometry(ds: Dataset, n_frames: int):
    pos = ds.get("ImagePositionPatient")
    orient = ds.get("ImageOrientationPatient")
    offsets = ds.get("GridFrameOffsetVector")
    if pos is None or orient is None or offsets is None or len(offsets) != n_frames:
        return [None], {None}, None
    o = np.array([float(v) for v in orient])
    normal = np.cross(o[:3], o[3:])
    positions = [np.array([float(v) for v in pos]) + float(off) * normal for off in offsets]
    return positions, {tuple(round(float(v), 4) for v in orient)}, ds.get("PixelSpacing")


def frames_hu(ds: Dataset, path: Path, geometry: FrameGeometry) -> np.ndarray:
    """HU of every frame (frames, rows, columns), per-frame rescale applied, in file order."""
    stored = decode_stored(ds, path)
    if stored.ndim == 2:
        stored = stored[None]
    if stored.shape[0] != geometry.n_frames:
        raise GeometryError(f"{path}: decoded {stored.shape[0]} frames, header says {geometry.n_frames}")
    integral = all(rescale_is_integral(s, i) for s, i in zip(geometry.slopes, geometry.intercepts, strict=True))
    dtype = np.dtype(np.int16 if integral else np.float32)
    padding = padding_mask(stored, ds)
    out = np.empty(stored.shape, dtype=dtype)
    for f in range(stored.shape[0]):
        out[f] = to_hu(stored[f], slope=geometry.slopes[f], intercept=geometry.intercepts[f],
                       padding=None if padding is None else padding[f], out_dtype=dtype)
        check_plausible_hu(out[f], what=f"{path} frame {f + 1}")
    return out
