"""DICOM input to :class:`CTVolume`: scan, choose a stack, decode in parallel, put on the LPS grid.

Inputs: a folder (searched recursively), a DICOMDIR, a multi-frame / Enhanced CT file, or a
single-frame file. A single-frame file is **not** widened to its folder (that could silently
pick another series): it is a single slice and is refused with
:class:`~pvp_plan.errors.GeometryError` telling the user to pass the folder.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pvp_plan.errors import GeometryError
from pvp_plan.io.ct_volume import CTVolume, SeriesInfo
from pvp_plan.io.dicom_dir import is_dicomdir, referenced_files
from pvp_plan.io.dicom_multiframe import frames_hu
from pvp_plan.io.dicom_pixels import read_dataset, rescale_is_integral, slice_hu
from pvp_plan.io.dicom_scan import MAX_WORKERS, ScanResult, scan_files, scan_folder
from pvp_plan.io.dicom_series import Candidate, choose
from pvp_plan.io.orientation import stack_to_lps
from pvp_plan.io.slice_stack import apply_order, make_stack

logger = logging.getLogger(__name__)


def load_dicom_folder(folder: Path, *, series: str | None = None) -> CTVolume:
    """Load the chosen CT stack of a DICOM folder (searched recursively)."""
    return _load_scan(scan_folder(folder), what=folder, series=series, warnings=[])


def load_dicom_file(path: Path, *, series: str | None = None) -> CTVolume:
    """Load a DICOMDIR, a multi-frame CT file, or refuse a single slice."""
    ds = read_dataset(path, stop_before_pixels=True)
    if is_dicomdir(ds):
        files, warnings = referenced_files(ds, path)
        return _load_scan(scan_files(files, root=path.parent), what=path, series=series, warnings=warnings)
    return _load_scan(scan_files([path], root=path.parent), what=path, series=series, warnings=[])


def _load_scan(scan: ScanResult, *, what: Path, series: str | None, warnings: list[str]) -> CTVolume:
    chosen, others, ignored, reason = choose(scan, series=series, what=what)
    if chosen.frames is not None:
        pixels, stack, order, files, fmt = _multiframe_pixels(chosen)
        thickness = chosen.frames.slice_thickness_mm
    else:
        pixels, stack, order, files, fmt = _singleframe_pixels(chosen)
        thickness, note = _slice_thickness([h.slice_thickness_mm for h in chosen.group.headers])
        warnings = [*warnings, note] if note else warnings
    first = chosen.group.first
    grid = stack_to_lps(pixels, stack, what=str(what), tilt_header_deg=first.gantry_tilt_deg)
    del pixels
    if not chosen.axial:
        warnings = [*warnings, f"no axial CT stack in the input: loaded a {chosen.group.orientation_label} "
                               "stack (reformat) instead; check that this is the series you meant"]
    if stack.normal[2] < 0 and len(files) == stack.n_slices:
        files = files[::-1]
    info = SeriesInfo(
        source_path=str(what),
        source_format=fmt,
        series_uid=first.series_uid or None,
        series_description=first.series_description,
        modality="CT",
        manufacturer=first.manufacturer,
        convolution_kernel=first.kernel,
        slice_thickness_mm=thickness,
        n_files=chosen.group.n_files,
        choice_reason=reason,
        other_series=tuple(c.as_series_candidate() for c in others),
        ignored=tuple(ignored),
        dicom_files=tuple(str(f) for f in files),
    )
    return CTVolume(hu=grid.hu, spacing_mm=grid.spacing_mm, origin_lps_mm=grid.origin_lps_mm, series=info,
                    source_geometry=grid.source, warnings=tuple(warnings) + grid.warnings)


def _slice_thickness(values: list[float | None]) -> tuple[float | None, str | None]:
    """The series' SliceThickness (mm), or None with a note when it varies or is missing."""
    known = sorted({round(v, 2) for v in values if v is not None})
    if not known:
        return None, None
    if known[-1] - known[0] <= 0.01:
        return float(known[0]), None
    return None, (f"slice thickness varies within the series ({', '.join(f'{v:g}' for v in known)} mm); "
                  "reported as unknown")


def _singleframe_pixels(chosen: Candidate):
    headers = chosen.group.headers
    first = headers[0]
    positions = np.array([h.position for h in headers], float)
    o = np.asarray(first.orientation, float)
    stack, order = make_stack(positions, o[:3], o[3:], pixel_spacing_mm=first.pixel_spacing_mm,
                              shape_ij=(first.rows, first.columns))
    sorted_headers = [headers[i] for i in order]
    integral = all(rescale_is_integral(*h.rescale) for h in headers)
    dtype = np.dtype(np.int16 if integral else np.float32)
    out = np.empty((len(headers), first.rows, first.columns), dtype=dtype)

    def decode(k: int) -> None:
        h = sorted_headers[k]
        ds = read_dataset(h.path)
        if (ds.get("Rows"), ds.get("Columns")) != (first.rows, first.columns):
            raise GeometryError(f"{h.path}: {ds.get('Rows')} x {ds.get('Columns')} pixels, the series has "
                                f"{first.rows} x {first.columns}; inconsistent rows/columns within the series")
        out[k] = slice_hu(ds, h.path, out_dtype=dtype)

    logger.info("decoding %d slices", len(headers))
    if len(headers) < 4:
        for k in range(len(headers)):
            decode(k)
    else:
        with ThreadPoolExecutor(MAX_WORKERS) as pool:
            futures = [pool.submit(decode, k) for k in range(len(headers))]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # stop decoding the rest on the first error
                raise
    return out, stack, order, [h.path for h in sorted_headers], "dicom"


def _multiframe_pixels(chosen: Candidate):
    header = chosen.group.first
    frames = chosen.frames
    ds = read_dataset(header.path)
    hu = frames_hu(ds, header.path, frames)
    o = np.asarray(frames.orientation, float)
    stack, order = make_stack(frames.positions_lps_mm, o[:3], o[3:], pixel_spacing_mm=frames.pixel_spacing_mm,
                              shape_ij=(header.rows, header.columns))
    return apply_order(hu, order), stack, order, [header.path], "dicom-multiframe"
