"""``pvp-plan batch INPUT --out OUT``: plan and measure many studies, one tidy table (see docs/batch.md)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import typer

from pvp_plan.cli.common import console, err_console


def register(app: typer.Typer) -> None:
    @app.command()
    def batch(
        input: Path = typer.Argument(..., help="Folder tree of studies (DICOM series, NIfTI, NRRD, MHA) or a "
                                               "manifest CSV with columns study_id,path[,series_uid][,anchor][,segmentation]."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (tables, studies/<study_id>/...)."),
        workers: int = typer.Option(None, "--workers", "-j", help="Studies in parallel (default: half the CPU "
                                                                   "cores, at least 1)."),
        scheduler: str = typer.Option(None, "--scheduler", help="Run on this Dask scheduler (tcp://host:8786); "
                                                                  "inputs and --out must be visible to its workers."),
        dask: bool = typer.Option(False, "--dask", help="Run on a local Dask cluster of --workers processes."),
        resume: bool = typer.Option(False, "--resume", help="Continue the batch in --out; finished studies are "
                                                             "kept, never recomputed."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume: recompute failed studies."),
        exclude: list[str] = typer.Option(None, "--exclude", help="Skip files/folders of the tree matching this "
                                                                    "pattern (repeatable), e.g. '*seg*'."),
        levels: str = typer.Option(None, "--levels", help="Only these levels, comma-separated (e.g. T12,L1)."),
        needle_gauge: str = typer.Option(None, "--needle-gauge", help="Needle gauge for path planning (10G/11G/13G)."),
        no_needles: bool = typer.Option(False, "--no-needles", help="Skip needle-path planning (faster; "
                                                                     "measurements only)."),
        keep_identifiers: bool = typer.Option(False, "--keep-identifiers", help="Write input paths, series UIDs "
                                                                                 "and unredacted messages."),
        salt: str = typer.Option(None, "--salt", help="Salt of the hashed study IDs (default: random, stored in "
                                                        "OUT/batch_config.json)."),
        max_memory_gb: float = typer.Option(None, "--max-memory-gb", help="Per-worker memory (address space) "
                                                                           "limit in GB; a study over it fails."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (logs and CI)."),
        task: str = typer.Option(None, "--task", hidden=True, help="module:function compute step (tests)."),
    ) -> None:
        """Plan and measure every study of a folder tree or manifest; levels.csv, studies.csv and one folder per study.

        Exit code 0 when every study is ok or skipped, 1 when some failed (see studies.csv), 2 for unusable
        input or options, 130 when interrupted (continue with --resume).
        """
        from pvp_plan.batch import BatchOptions, run_batch
        from pvp_plan.batch.task import DEFAULT_COMPUTE

        options = BatchOptions(
            plan_options=_plan_options(levels, needle_gauge, no_needles),
            workers=workers or max(1, (os.cpu_count() or 2) // 2),
            scheduler=scheduler, dask_local=dask, resume=resume, retry_failed=retry_failed,
            keep_identifiers=keep_identifiers, salt=salt, max_memory_gb=max_memory_gb,
            compute=task or DEFAULT_COMPUTE, exclude=tuple(exclude or ()),
        )
        if not logging.getLogger().isEnabledFor(logging.INFO):  # Dask's own INFO chatter only with --verbose
            logging.getLogger("distributed").setLevel(logging.WARNING)
        progress = _NullProgress() if no_progress else _RichProgress()
        try:
            with progress:
                summary = run_batch(input, out, options, progress=progress)
        except KeyboardInterrupt as exc:
            summary = getattr(exc, "batch_summary", None)
            done = f"{summary.n_ok + summary.n_failed + summary.n_skipped} finished studies are kept; " if summary else ""
            err_console.print(f"interrupted: {done}continue with the same command and --resume")
            raise SystemExit(130) from None  # typer.Exit codes are dropped by main(standalone_mode=False)
        _print_summary(summary, out)
        if summary.n_failed:
            raise SystemExit(1)


def _plan_options(levels: str | None, needle_gauge: str | None, no_needles: bool) -> dict:
    """PlanOptions keyword arguments that differ from the pipeline defaults (plain values, stored for --resume)."""
    from pvp_plan.levels import Level

    opts: dict = {}
    if levels:
        try:
            opts["levels"] = [Level.parse(t).value for t in levels.split(",") if t.strip()]
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--levels") from None
    if needle_gauge:
        opts["needle_gauge"] = needle_gauge.strip().upper()
    if no_needles:
        opts["plan_needles"] = False
    return opts


def _print_summary(summary, out: Path) -> None:
    console.print(
        f"[bold]{summary.n_studies} studies[/bold]: {summary.n_ok} ok, {summary.n_failed} failed, "
        f"{summary.n_skipped} skipped ({summary.n_reused} from a previous run, {summary.n_computed} computed now) "
        f"in {summary.wall_seconds:.1f} s on {summary.backend}"
    )
    for name, path in summary.tables.items():
        console.print(f"  {name}: {path}")
    if summary.n_failed:
        console.print(f"[yellow]failed studies are listed with their message in {Path(out) / 'studies.csv'}[/yellow]")


class _NullProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def start(self, total: int, finished: dict[str, int], backend: str) -> None:
        err_console.print(f"{total} studies, {total - sum(finished.values())} to compute on {backend}")

    def study_done(self, result: dict) -> None:
        return None


class _RichProgress(_NullProgress):
    """A rich progress bar on stderr: done / total, ok, failed, studies per minute, elapsed, remaining."""

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("batch"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]{task.fields[ok]} ok[/green] [red]{task.fields[failed]} failed[/red] "
                       "{task.fields[skipped]} skipped  {task.fields[rate]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False,
        )
        self._progress.__enter__()
        self._counts = {"ok": 0, "failed": 0, "skipped": 0}
        self._task = self._progress.add_task("batch", total=None, rate="", **self._counts)
        self._computed = 0
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start(self, total: int, finished: dict[str, int], backend: str) -> None:
        super().start(total, finished, backend)
        self._counts.update(finished)
        self._progress.update(self._task, total=total, completed=sum(finished.values()), **self._counts)
        self._started = time.monotonic()

    def study_done(self, result: dict) -> None:
        status = result.get("status", "failed")
        self._counts[status] = self._counts.get(status, 0) + 1
        self._computed += 1
        minutes = max(time.monotonic() - self._started, 1e-6) / 60.0
        self._progress.update(self._task, advance=1, rate=f"{self._computed / minutes:.1f} studies/min",
                              **self._counts)
