"""``pvp-plan info INPUT``: what was found, which series was chosen and why, geometry, HU range, warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from pvp_plan.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command()
    def info(
        input: Path = typer.Argument(..., help="DICOM folder or file, DICOMDIR, NIfTI, NRRD or MHA/MHD."),
        series: str = typer.Option(None, "--series", help="SeriesInstanceUID to load when several are present."),
    ) -> None:
        """Describe a CT input without patient identifiers."""
        from pvp_plan.io import load_ct

        ct = load_ct(input, series=series)
        s = ct.series
        console.print(f"[bold]{input}[/bold]  format: {s.source_format}")
        console.print(f"series: {s.series_ref}  {s.series_description}")
        if s.choice_reason:
            console.print(f"chosen because: {s.choice_reason}")
        for cand in s.other_series:
            console.print(f"  other series: {cand.series_uid} ({cand.description}, {cand.n_slices} slices)")
        for ign in s.ignored:
            console.print(f"  ignored: {ign.what}: {ign.reason}")
        z, y, x = ct.shape
        console.print(f"grid: {x} x {y} x {z} voxels (x, y, z), voxel {ct.describe_voxel_size()}, LPS")
        hu = ct.hu
        console.print(f"HU range: {float(np.min(hu)):.0f} to {float(np.max(hu)):.0f}")
        for w in ct.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")
