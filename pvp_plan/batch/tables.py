"""The batch tables, rebuilt from the per-study results (never appended to, so always consistent).

* ``levels.csv`` (and ``levels.parquet`` when pyarrow is installed): one row per study and vertebral level,
  ``study_id`` first, then the plan's per-level columns; rows sorted by study ID, levels in the plan's order
  (cranial to caudal). No timings and no timestamps: the same batch gives byte-identical files.
* ``studies.csv``: one row per study, every status (ok / failed / skipped), with timings and provenance.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from pvp_plan.io.atomic import atomic_write_bytes, atomic_write_text

#: Columns of studies.csv, with their meaning (units in the names; also in docs/batch.md).
STUDY_COLUMNS: dict[str, str] = {
    "study_id": "study identifier (manifest ID, or salted hash of the input path and series UID)",
    "status": "ok, failed or skipped",
    "message": "why the study failed or was skipped (empty when ok)",
    "n_levels": "rows of this study in levels.csv",
    "source_format": "dicom, dicom-multiframe, nifti, nrrd or metaimage",
    "series_ref": "sha256 reference of the series (never the UID itself)",
    "voxel_z_mm": "voxel size along z (cranio-caudal), mm",
    "voxel_y_mm": "voxel size along y (antero-posterior), mm",
    "voxel_x_mm": "voxel size along x (left-right), mm",
    "size_z": "voxels along z",
    "size_y": "voxels along y",
    "size_x": "voxels along x",
    "resampled": "true when the loader interpolated the grid (gantry tilt, oblique, irregular slices)",
    "loader_warnings": "what the loader corrected or noticed, '; '-separated",
    "segmentation_method": "what segmented the bodies (method and version)",
    "software_version": "pvp-plan version that computed the study",
    "seconds": "wall time of the whole task in its worker (read, plan, write), s",
    "compute_seconds": "wall time of the pipeline itself (read, segment, measure, plan, write outputs; until the "
                       "error for a failed study), s",
}
#: Added to studies.csv only with --keep-identifiers.
IDENTIFIER_COLUMNS: dict[str, str] = {
    "input_path": "input file or DICOM folder",
    "series_uid": "DICOM SeriesInstanceUID",
    "series_description": "series description (DICOM) or file name",
}


def study_row(result: dict, *, keep_identifiers: bool = False) -> dict[str, Any]:
    """The studies.csv row of one result dict."""
    prov = result.get("provenance") or {}
    voxel = list(prov.get("voxel_size_mm_zyx") or [None] * 3)
    shape = list(prov.get("shape_zyx") or [None] * 3)
    row = {
        "study_id": result["study_id"],
        "status": result["status"],
        "message": " ".join(str(result.get("message") or "").split()),
        "n_levels": result.get("n_levels", len(result.get("levels") or [])),
        "source_format": prov.get("source_format"),
        "series_ref": prov.get("series_ref"),
        "voxel_z_mm": voxel[0], "voxel_y_mm": voxel[1], "voxel_x_mm": voxel[2],
        "size_z": shape[0], "size_y": shape[1], "size_x": shape[2],
        "resampled": prov.get("resampled_from_source"),
        "loader_warnings": "; ".join(prov.get("loader_warnings") or []),
        "segmentation_method": result.get("segmentation_method"),
        "software_version": result.get("software_version"),
        "seconds": _round_time(result.get("seconds")),
        "compute_seconds": _round_time(result.get("compute_seconds")),
    }
    if keep_identifiers:
        row.update(input_path=result.get("input_path"), series_uid=result.get("series_uid"),
                   series_description=prov.get("series_description"))
    return row


def level_rows(results: list[dict]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of levels.csv: ``study_id`` then the plan's columns in first-seen order."""
    columns = ["study_id"]
    rows = []
    for result in sorted(results, key=lambda r: r["study_id"]):
        if result.get("status") != "ok":
            continue
        for level in result.get("levels") or []:
            row = {"study_id": result["study_id"], **{k: v for k, v in level.items() if k != "study_id"}}
            for key in row:
                if key not in columns:
                    columns.append(key)
            rows.append(row)
    return columns, rows


def write_tables(out_dir: Path, results: list[dict], *, keep_identifiers: bool = False,
                 parquet: bool = True) -> dict[str, Path]:
    """(Re)write levels.csv, levels.parquet (if pyarrow is available and ``parquet``) and studies.csv atomically."""
    out_dir = Path(out_dir)
    ordered = sorted(results, key=lambda r: r["study_id"])
    study_columns = list(STUDY_COLUMNS) + (list(IDENTIFIER_COLUMNS) if keep_identifiers else [])
    written = {"studies.csv": atomic_write_text(out_dir / "studies.csv", _csv_text(
        study_columns, [study_row(r, keep_identifiers=keep_identifiers) for r in ordered]))}
    columns, rows = level_rows(ordered)
    written["levels.csv"] = atomic_write_text(out_dir / "levels.csv", _csv_text(columns, rows))
    if parquet:
        path = _write_parquet(out_dir / "levels.parquet", columns, rows)
        if path is not None:
            written["levels.parquet"] = path
    return written


def _csv_text(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None / NaN (not measured), lower-case booleans, JSON for nested values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def _write_parquet(path: Path, columns: list[str], rows: list[dict]) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    arrays = [_arrow_column(pa, [row.get(col) for row in rows]) for col in columns]
    table = pa.Table.from_arrays(arrays, names=columns)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    return atomic_write_bytes(path, buf.getvalue().to_pybytes())


def _arrow_column(pa, values: list[Any]):
    """A typed column: bool, int64, float64 or string (nested values as JSON), None as null."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.bool_())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.int64())
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    return pa.array([None if v is None else (v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                     for v in values], type=pa.string())


def _round_time(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds), 3)
