"""``pvp-plan info INPUT``: what was found, which series was chosen and why, geometry, HU range, warnings.

Prints no patient identifiers (name, ID, birth date, study date are never read into the volume).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import typer

from pvp_plan.cli.common import console


def _fmt(values, digits: int = 3) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}g}" for v in values) + ")"


def describe(ct, input_label: str) -> list[str]:
    """The lines ``pvp-plan info`` prints for a loaded :class:`~pvp_plan.io.CTVolume` (plain text)."""
    s = ct.series
    lines = [f"{input_label}  format: {s.source_format}"]
    if s.source_format.startswith("dicom"):
        lines.append(f"found: {1 + len(s.other_series)} CT image stack(s), {len(s.ignored)} ignored item(s)")
        lines.append(f"chosen series: {s.series_uid or s.series_ref}  {s.series_description or '(no description)'}")
    else:
        lines.append(f"image file: {s.series_description}  (reference {s.series_ref})")
    details = [f"{s.n_files} file(s)"]
    if s.source_format == "dicom-multiframe":
        details.append(f"{ct.source_geometry.size_xyz[2]} frames")
    if s.manufacturer:
        details.append(f"manufacturer {s.manufacturer}")
    if s.convolution_kernel:
        details.append(f"kernel {s.convolution_kernel}")
    if s.slice_thickness_mm is not None:
        details.append(f"slice thickness {s.slice_thickness_mm:g} mm")
    lines.append("  " + ", ".join(details))
    if s.choice_reason:
        lines.append(f"  why: {s.choice_reason}")
    for cand in s.other_series:
        spacing = f"{cand.slice_spacing_mm:.2f} mm spacing" if cand.slice_spacing_mm else "spacing unknown"
        lines.append(f"other series: {cand.series_uid}  {cand.description or '(no description)'}: "
                     f"{cand.n_slices} slices, {spacing} (load it with --series {cand.series_uid})")
    for ign in s.ignored:
        lines.append(f"ignored: {ign.what}: {ign.reason}")
    z, y, x = ct.shape
    lines.append(f"grid: {x} x {y} x {z} voxels (x, y, z), voxel {ct.describe_voxel_size()}, LPS-aligned")
    lines.append(f"origin (LPS, mm): {_fmt(ct.origin_lps_mm, 6)}")
    src = ct.source_geometry
    d = np.array(src.direction).reshape(3, 3)
    lines.append(f"source grid: {src.size_xyz[0]} x {src.size_xyz[1]} x {src.size_xyz[2]}, spacing "
                 f"{_fmt(src.spacing_xyz_mm, 4)} mm, axes (LPS) x{_fmt(d[:, 0])} y{_fmt(d[:, 1])} z{_fmt(d[:, 2])}")
    tilt = any("gantry tilt" in w for w in ct.warnings)
    lines.append(f"resampled from source: {'yes' if src.resampled else 'no (exact axis permutation/flip)'}; "
                 f"gantry tilt: {'detected and corrected' if tilt else 'none'}")
    hu = ct.hu
    lines.append(f"HU range: {float(np.min(hu)):.0f} to {float(np.max(hu)):.0f} ({hu.dtype})")
    for w in ct.warnings:
        lines.append(f"warning: {w}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command()
    def info(
        input: Path = typer.Argument(..., help="DICOM folder or file, DICOMDIR, NIfTI, NRRD or MHA/MHD."),  # noqa: B008
        series: str = typer.Option(None, "--series", help="SeriesInstanceUID to load when several are present."),
    ) -> None:
        """Describe a CT input without patient identifiers."""
        from pvp_plan.io import load_ct

        with warnings.catch_warnings():  # pydicom's warnings on odd but readable headers
            warnings.filterwarnings("ignore", module="pydicom")
            ct = load_ct(input, series=series)
        for line in describe(ct, str(input)):
            if line.startswith("warning: "):
                console.print(f"[yellow]warning:[/yellow] {line[9:]}", highlight=False, soft_wrap=True)
            else:
                console.print(line, highlight=False, markup=False, soft_wrap=True)
