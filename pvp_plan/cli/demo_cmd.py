"""``pvp-plan demo [--out DIR]``: the full plan on the bundled sample data (synthetic phantom, read as DICOM)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from pvp_plan.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: a new temporary folder)."),
        no_needles: bool = typer.Option(False, "--no-needles", help="Skip needle path planning."),
    ) -> None:
        """Run the whole plan on the bundled synthetic sample CT and print the table and the report path."""
        from pvp_plan.cli.plan_cmd import print_plan_table, run_with_progress
        from pvp_plan.errors import InputError
        from pvp_plan.pipeline import PlanOptions, run_case, write_case_outputs

        try:
            from pvp_plan.sample_data import sample_dicom_dir
        except ImportError:
            raise InputError("the bundled sample data is not available in this build") from None
        source = sample_dicom_dir()
        out = out or Path(tempfile.mkdtemp(prefix="pvp-plan-demo-"))
        console.print(f"sample data: synthetic spine phantom (DICOM) at {source}", highlight=False)
        segmentation_path = None
        try:
            from pvp_plan.segment import segment_vertebral_bodies  # noqa: F401
        except ImportError:
            segmentation_path = source.parent / "vertebral_bodies_truth.nii.gz"
            console.print("[yellow]automatic segmentation is not available in this build: using the sample's "
                          "ground-truth body map[/yellow]", highlight=False)
        case = run_with_progress(run_case, source, options=PlanOptions(plan_needles=not no_needles),
                                 segmentation_path=segmentation_path)
        paths = write_case_outputs(case, out)
        print_plan_table(case)
        console.print(f"report: {paths.get('html', paths['json'])}", highlight=False)
        for kind, path in paths.items():
            if kind != "html":
                console.print(f"{kind}: {path}", highlight=False)
