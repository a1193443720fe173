"""``pvp-plan segment INPUT --out DIR``: vertebral-body label map, per-level table, provenance."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import typer

from pvp_plan.cli.common import console, err_console

CUT_REASON = "cut by the field of view"


def body_rows(seg, ct) -> list[dict]:
    """One row per body: volume (None when cut), voxel count, mean/median HU, confidences, and why the planner would
    not plan it (cut, name or outline uncertain; None when it would)."""
    from pvp_plan.plan.session import not_plannable_reason

    rows = []
    for b in seg.bodies:
        hu = ct.hu[seg.labels == b.label]
        vol = b.volume_ml(ct.voxel_volume_ml)
        rows.append({
            "level": b.level.value, "label": b.label,
            "volume_ml": None if vol is None else round(vol, 2),
            "excluded_reason": CUT_REASON if b.cut_by_fov else None,
            "voxel_count": b.voxel_count,
            "hu_mean": round(float(hu.mean()), 1) if hu.size else None,
            "hu_median": round(float(np.median(hu)), 1) if hu.size else None,
            "level_confidence": round(b.level_confidence, 2),
            "segmentation_confidence": round(b.segmentation_confidence, 2),
            "cut_by_fov": b.cut_by_fov,
            "not_plannable_reason": not_plannable_reason(b, voxel_volume_ml=ct.voxel_volume_ml),
            "centroid_lps_mm": [round(v, 1) for v in b.centroid_lps_mm],
        })
    return rows


def register(app: typer.Typer) -> None:
    @app.command()
    def segment(
        input: Path = typer.Argument(..., help="DICOM folder or file, NIfTI, NRRD or MHA/MHD."),
        out: Path = typer.Option(..., "--out", help="Output folder."),
        anchor: str = typer.Option(None, "--anchor",
                                   help="Name one level: 'L3' (lowest body is L3), 'L3:2' (2nd body from the "
                                        "bottom is L3) or 'L3:z=123.4' (body nearest LPS z mm is L3)."),
        series: str = typer.Option(None, "--series", help="SeriesInstanceUID when several are present."),
    ) -> None:
        """Segment and name the vertebral bodies; write vertebral_bodies.nii.gz, bodies.json and bodies.csv."""
        from rich.table import Table

        from pvp_plan.io import load_ct
        from pvp_plan.io.atomic import atomic_write_text, write_image_atomic
        from pvp_plan.segment import segment_vertebral_bodies

        ct = load_ct(input, series=series)

        def progress(step: str, fraction: float) -> None:
            err_console.print(f"[dim]{fraction:4.0%} {step}[/dim]")

        seg = segment_vertebral_bodies(ct, anchor=anchor, progress=progress)
        write_image_atomic(ct.to_source_grid(seg.labels), out / "vertebral_bodies.nii.gz")
        rows = body_rows(seg, ct)
        doc = {"bodies": rows, "warnings": list(seg.warnings), "method": seg.method,
               "label_convention": "VerSe (T12 = 19, L1 = 20 ... L5 = 24)", "provenance": ct.provenance()}
        atomic_write_text(out / "bodies.json", json.dumps(doc, indent=2))
        buf = io.StringIO()
        fields = [k for k in rows[0] if k != "centroid_lps_mm"] if rows else ["level"]
        w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(out / "bodies.csv", buf.getvalue())
        table = Table(title="Vertebral bodies")
        for col in ("level", "volume mL", "voxels", "HU median", "level conf.", "note"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["level"], "-" if r["volume_ml"] is None else f"{r['volume_ml']:.1f}",
                          str(r["voxel_count"]), str(r["hu_median"]), f"{r['level_confidence']:.2f}",
                          (r["not_plannable_reason"] or "").split(":")[0])  # its head; bodies.json has it in full
        console.print(table)
        for warning in seg.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        console.print(f"written to {out}")
