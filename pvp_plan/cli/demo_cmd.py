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
        case = run_with_progress(run_case, source, options=PlanOptions(plan_needles=not no_needles))
        paths = write_case_outputs(case, out)
        print_plan_table(case)
        console.print(f"report: {paths.get('html', paths['json'])}", highlight=False)
        for kind, path in paths.items():
            if kind != "html":
                console.print(f"{kind}: {path}", highlight=False)
