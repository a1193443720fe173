"""``pvp-plan plan INPUT --out DIR``: segment, measure, apply the rules, write plan.json/csv, report.html."""

from __future__ import annotations

from pathlib import Path

import typer

from pvp_plan.cli.common import console, err_console


def _in_verdict_colour(verdict: str, word: str) -> str:
    """``word`` in ``verdict``'s colour (rich markup): the colour the report and napari draw its path in
    (``VERDICT_RGBA``); rich falls back to the nearest colour the terminal has."""
    from pvp_plan.needle.draw import VERDICT_RGBA

    r, g, b = (round(255 * c) for c in VERDICT_RGBA[verdict][:3])
    return f"[#{r:02x}{g:02x}{b:02x}]{word}[/]"


def print_plan_table(plan) -> None:
    """A compact terminal table of a CasePlan, then its case-level and flagged-level notices."""
    from rich.table import Table

    from pvp_plan.needle.types import VERDICT_LEGEND, verdicts_in_words

    table = Table(title="PVP plan (decision support; the operator decides)", title_style="bold", pad_edge=False,
                  box=None, header_style="bold")
    for col, just in (("Lvl", "left"), ("mL", "right"), ("Fill mL", "right"), (">5", "center"), ("2/3 mL", "right"),
                      ("Density HU", "left"), ("A/M/P mm", "right"), ("G", "center"), ("Needle", "center"),
                      ("Wall", "left")):
        # the words wrap in a narrow terminal; the figures and level names are never cut
        table.add_column(col, justify=just, no_wrap=col not in ("Density HU", "Wall"))
    short = {"osteoporotic": "osteop."}
    for lp, r in zip(plan.levels, plan.table_rows(), strict=True):
        vol = f"{r['body_volume_ml']:.1f}" if lp.plannable else "[dim]n/p[/dim]"
        fill = "—" if r["fill_low_ml"] is None else f"{r['fill_low_ml']:.1f}-{r['fill_high_ml']:.1f}"
        exceeds = "—" if r["exceeds_5ml_caution"] is None else ("[yellow]yes[/yellow]" if r["exceeds_5ml_caution"] else "no")
        stop = "—" if r["posterior_third_stop_ml"] is None else f"{r['posterior_third_stop_ml']:.1f}"
        dens = r["density_class"] or "—"
        dens = short.get(dens, dens) + ("" if r["hu_median"] is None else f" {r['hu_median']:.0f}")
        if r["density_class"] in ("sclerotic", "lytic", "mixed"):
            dens = f"[red]{dens}[/red]"
        hts = "/".join("—" if r[k] is None else f"{r[k]:.0f}" for k in ("anterior_mm", "middle_mm", "posterior_mm"))
        grade = "—" if r["genant_grade"] is None else str(r["genant_grade"])
        if (r["genant_grade"] or 0) >= 1:
            grade = f"[red]{grade}[/red]"
        wall = "—" if r["wall_breach"] is None else (f"[red]breach {r['wall_breach_side']}[/red]" if r["wall_breach"] else "ok")
        needles = verdicts_in_words(lp.needle_paths, mark=_in_verdict_colour)
        table.add_row(lp.level, vol, fill, exceeds, stop, dens, hts, grade, needles, wall)
    console.print(table)
    console.print("[dim]mL: body volume; Fill: CQ5 50-70% of it; >5: above the CQ5 5 mL caution; 2/3 mL: body "
                  "anterior to its posterior third; A/M/P: heights; G: Genant grade; Needle: transpedicular path, "
                  f"left/right: {VERDICT_LEGEND} (report.html says why); n/p: not plannable[/dim]", highlight=False)
    for n in plan.notices:
        console.print(f"[yellow]•[/yellow] {n.message} [dim]({n.source})[/dim]", highlight=False)
    shown = ("fill_exceeds_5ml", "sclerotic_density", "lytic_density", "posterior_wall_breach", "collapse_grade",
             "vertebra_plana", "not_plannable")
    seen_fill = False
    for lp in plan.levels:
        for n in lp.warnings:
            if n.code not in shown:
                continue
            if n.code == "fill_exceeds_5ml":  # the same advice for every level: print it once
                if seen_fill:
                    continue
                seen_fill = True
            prefix = "" if lp.level in n.message else f"{lp.level}: "
            console.print(f"[yellow]•[/yellow] {prefix}{n.message} [dim]({n.source})[/dim]", highlight=False)


def run_with_progress(func, *args, **kwargs):
    """Run ``func(*args, progress=..., **kwargs)`` showing a progress bar on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(step: str, fraction: float) -> None:
            bar.update(task, description=step, completed=fraction)

        return func(*args, progress=progress, **kwargs)


def register(app: typer.Typer) -> None:
    @app.command()
    def plan(
        input: Path = typer.Argument(..., help="DICOM folder or file, DICOMDIR, NIfTI, NRRD or MHA/MHD."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (plan.json, plan.csv, report.html, "
                                                         "vertebral_bodies.nii.gz)."),
        levels: str = typer.Option(None, "--levels", help="Levels to plan, comma-separated (e.g. L1,L2); "
                                                          "default: every level found."),
        needle: str = typer.Option("11G", "--needle", help="Needle gauge: 10G, 11G or 13G."),
        target: str = typer.Option("anterior_third", "--target", help="Needle tip target: anterior_third or "
                                                                      "anterior_quarter."),
        anchor: str = typer.Option(None, "--anchor", help="Level-naming override for the segmentation (e.g. L5)."),
        series: str = typer.Option(None, "--series", help="SeriesInstanceUID when the input holds several."),
        segmentation: Path = typer.Option(None, "--segmentation", help="Use this vertebral body label map "
                                                                       "instead of segmenting."),
        labels: str = typer.Option("auto", "--labels", help="Label convention of --segmentation: auto, "
                                                             "totalsegmentator, totalsegmentator-bodies, verse or "
                                                             "verse-bodies."),
        dicom_out: Path = typer.Option(None, "--dicom-out", help="Also write a DICOM SEG of the bodies and a DICOM "
                                                                 "SR measurement report here (DICOM input only)."),
        no_needles: bool = typer.Option(False, "--no-needles", help="Skip needle path planning."),
        no_html: bool = typer.Option(False, "--no-html", help="Do not write report.html."),
        osteoporosis_hu: float = typer.Option(110.0, "--osteoporosis-hu",
                                              help="Median trabecular HU at or below which bone is in the "
                                                   "osteoporotic range (Pickhardt 2013, L1)."),
        normal_hu: float = typer.Option(160.0, "--normal-hu", help="Median HU at or above which osteoporosis is "
                                                                   "unlikely (Pickhardt 2013, L1)."),
        lytic_hu: float = typer.Option(60.0, "--lytic-hu", help="Soft-tissue (lytic) density cut-off, HU."),
        sclerotic_hu: float = typer.Option(500.0, "--sclerotic-hu", help="Sclerotic density cut-off, HU."),
        keep_identifiers: bool = typer.Option(False, "--keep-identifiers",
                                              help="Keep the series UID and source path in the outputs."),
    ) -> None:
        """Plan PVP on a spine CT: body volume, CQ5 fill guidance, density, collapse, posterior wall, needles."""
        from pvp_plan.errors import PlanError
        from pvp_plan.pipeline import PlanOptions, run_case, write_case_outputs
        from pvp_plan.rules.density import DensityThresholds

        try:
            density = DensityThresholds(osteoporosis_hu=osteoporosis_hu, normal_hu=normal_hu, lytic_hu=lytic_hu,
                                        sclerotic_hu=sclerotic_hu)
        except ValueError as exc:
            raise PlanError(f"density thresholds: {exc}") from None
        options = PlanOptions(
            levels=None if not levels else tuple(s.strip() for s in levels.split(",") if s.strip()),
            needle_gauge=needle, needle_target=target, plan_needles=not no_needles, anchor=anchor,
            density=density, keep_identifiers=keep_identifiers,
        )
        if dicom_out is not None:  # fail before the slow steps when the input cannot carry DICOM exports
            from pvp_plan.errors import ExportError
            from pvp_plan.io.load import image_format

            fmt = image_format(input)
            if fmt is not None:
                raise ExportError(f"{input}: --dicom-out needs DICOM input (this is {fmt}); a DICOM SEG/SR must "
                                  "reference the source DICOM images. Run without --dicom-out, or plan the DICOM series.")
        case = run_with_progress(run_case, input, options=options, series=series, segmentation_path=segmentation,
                                 labels=None if labels == "auto" else labels)
        with err_console.status("writing outputs"):
            paths = write_case_outputs(case, out, html=not no_html)
            if dicom_out is not None:
                from pvp_plan.export import write_dicom_exports

                paths.update(write_dicom_exports(case, dicom_out))
        print_plan_table(case)
        for kind, path in paths.items():
            console.print(f"{kind}: {path}", highlight=False)
