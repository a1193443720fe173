"""The one pipeline every door (CLI, napari, batch) calls: segment, measure, apply the rules, write outputs.

>>> from pvp_plan.pipeline import PlanOptions, plan_case            # doctest: +SKIP
>>> plan = plan_case(ct, options=PlanOptions(levels=("L1", "L2")))  # doctest: +SKIP
>>> plan.to_dict()["levels"][0]["fill_guidance_ml"]                 # doctest: +SKIP

Decision support only: every figure comes with its source; the operator decides.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pvp_plan import __version__
from pvp_plan.errors import PlanError, PvpPlanError, SegmentationError
from pvp_plan.io.atomic import publish
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import Level
from pvp_plan.messages import Notice, Severity
from pvp_plan.plan.level import assess_level
from pvp_plan.plan.session import needle_notices, session_notices
from pvp_plan.plan.types import LevelPlan
from pvp_plan.rules.density import DensityThresholds
from pvp_plan.rules.session import NEEDLE_GAUGES, NEEDLE_TARGETS
from pvp_plan.segment.types import Segmentation

logger = logging.getLogger(__name__)

#: Version of the plan.json layout (docs/plan_schema.md). Bump the minor for additions, the major for changes.
SCHEMA_VERSION = "1.0"

DISCLAIMER = ("Decision support only, not a replacement for the operator's judgement. Every figure is a "
              "measurement on this CT with its source; the operator decides the levels, the access and the "
              "cement volume during the procedure.")

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class PlanOptions:
    """Options of :func:`plan_case` (all keyword, with documented defaults).

    Attributes
    ----------
    levels : tuple of str or None
        Levels to plan (``("L1", "L2")``); None plans every level found.
    needle_gauge : str
        "10G", "11G" (default, 3.05 mm outer diameter) or "13G".
    needle_target : str
        "anterior_third" (default) or "anterior_quarter".
    plan_needles : bool
        Plan transpedicular needle paths (needs :mod:`pvp_plan.needle`).
    anchor : str or None
        Level-naming override passed to the segmentation (e.g. ``"L5"``).
    density : DensityThresholds
        HU thresholds of the density classes (:mod:`pvp_plan.rules.density`).
    keep_identifiers : bool
        Keep the series UID and source path in the outputs (default: a one-way hash only).
    """

    levels: tuple[str, ...] | None = None
    needle_gauge: str = "11G"
    needle_target: str = "anterior_third"
    plan_needles: bool = True
    anchor: str | None = None
    density: DensityThresholds = field(default_factory=DensityThresholds)
    keep_identifiers: bool = False

    def __post_init__(self) -> None:
        if self.levels is not None:
            if isinstance(self.levels, str):
                object.__setattr__(self, "levels", tuple(s for s in self.levels.split(",") if s.strip()))
            try:
                parsed = tuple(Level.parse(str(getattr(v, "value", v))).value for v in self.levels)
            except ValueError as exc:
                raise PlanError(f"--levels: {exc}") from None
            object.__setattr__(self, "levels", parsed)
        gauge = self.needle_gauge.upper().replace(" ", "")
        if gauge not in NEEDLE_GAUGES:
            raise PlanError(f"needle gauge {self.needle_gauge!r} is not supported; choose one of {', '.join(NEEDLE_GAUGES)}")
        object.__setattr__(self, "needle_gauge", gauge)
        if self.needle_target not in NEEDLE_TARGETS:
            raise PlanError(f"needle target {self.needle_target!r} is not supported; choose one of {', '.join(NEEDLE_TARGETS)}")
        if not isinstance(self.density, DensityThresholds):
            raise PlanError("density must be a DensityThresholds")

    def to_dict(self) -> dict:
        return {"levels": None if self.levels is None else list(self.levels), "needle_gauge": self.needle_gauge,
                "needle_target": self.needle_target, "plan_needles": self.plan_needles, "anchor": self.anchor,
                "density_thresholds": self.density.to_dict(), "keep_identifiers": self.keep_identifiers}


@dataclass(frozen=True, eq=False)
class CasePlan:
    """The plan of one case: per-level plans plus case-level notices (e.g. more than 3 levels)."""

    ct: CTVolume
    segmentation: Segmentation
    options: PlanOptions
    levels: tuple[LevelPlan, ...]
    notices: tuple[Notice, ...]

    def level(self, name: str) -> LevelPlan:
        """The plan of one level (``"L1"``); KeyError if it was not planned."""
        name = Level.parse(name).value
        for lp in self.levels:
            if lp.level == name:
                return lp
        raise KeyError(f"{name} was not planned; planned: {', '.join(lp.level for lp in self.levels)}")

    def to_dict(self) -> dict:
        """Exactly the content of ``plan.json`` (schema: docs/plan_schema.md)."""
        from pvp_plan.rules import cement, collapse, session

        prov = self.ct.provenance()
        source_name = Path(self.ct.series.source_path).name
        if not self.options.keep_identifiers and source_name and prov.get("series_description") == source_name:
            prov["series_description"] = ""  # a file name may carry a patient name: withheld by default
        if self.options.keep_identifiers:
            prov["series_uid"] = self.ct.series.series_uid
            prov["source_path"] = self.ct.series.source_path
        return {
            "schema_version": SCHEMA_VERSION,
            "software": f"pvp-plan {__version__}",
            "disclaimer": DISCLAIMER,
            "input": prov,
            "voxel_size_mm_zyx": list(self.ct.spacing_mm),
            "segmentation": {"method": self.segmentation.method, "edited": self.segmentation.edited,
                             "warnings": list(self.segmentation.warnings),
                             "levels_found": [lv.value for lv in self.segmentation.levels]},
            "options": self.options.to_dict(),
            "rules": [r.to_dict() for r in (*cement.ALL, *collapse.ALL, *session.ALL, *self.options.density.rules())],
            "notices": [n.to_dict() for n in self.notices],
            "levels": [lp.to_dict() for lp in self.levels],
        }

    def table_rows(self) -> list[dict]:
        """One flat row per level (plan.csv, terminal and UI tables); None where not measured."""
        rows = []
        for lp in self.levels:
            f, d, c, w = lp.fill, lp.density, lp.collapse, lp.wall
            rows.append({
                "level": lp.level, "plannable": lp.plannable, "not_plannable_reason": lp.not_plannable_reason or "",
                "body_volume_ml": _r(lp.body_volume_ml, 1),
                "fill_low_ml": _r(f and f.low_ml), "fill_high_ml": _r(f and f.high_ml),
                "exceeds_5ml_caution": None if f is None else f.exceeds_5ml_caution,
                "posterior_third_stop_ml": _r(f and f.posterior_third_stop_ml),
                "density_class": d and d.density_class, "hu_median": _r(d and d.hu_median, 0),
                "anterior_mm": _r(c and c.anterior_mm), "middle_mm": _r(c and c.middle_mm),
                "posterior_mm": _r(c and c.posterior_mm), "height_loss": _r(c and c.height_loss, 2),
                "genant_grade": None if c is None else c.genant_grade,
                "wall_breach": None if w is None else w.flag, "wall_breach_side": (w.side if w and w.flag else "") or "",
                "n_needle_paths": len(lp.needle_paths),
                **{f"needle_{side}": next((p.verdict for p in lp.needle_paths if p.side == side), "")
                   for side in ("left", "right")},
                "flags": "; ".join(lp.flags),
            })
        return rows


def _r(v, nd: int = 1):
    return None if v is None or v is False else round(float(v), nd)


def _segment(ct: CTVolume, anchor: str | None) -> Segmentation:
    try:
        from pvp_plan.segment import segment_vertebral_bodies
    except ImportError:
        raise SegmentationError(
            "automatic segmentation is not available in this build; pass a label map "
            "(--segmentation / segmentation=)") from None
    return segment_vertebral_bodies(ct, anchor=anchor)


def _needle_paths(ct, segmentation, level: str, options: PlanOptions) -> tuple[tuple, tuple[Notice, ...]]:
    """Needle paths from :mod:`pvp_plan.needle` or a notice saying why there are none."""
    unavailable = Notice(code="needle_planning_unavailable",
                         message=f"{level}: needle planning not available in this build; no paths planned.",
                         source="pvp-plan", severity=Severity.INFO)
    try:
        from pvp_plan.needle import plan_level_needle_paths
    except (ImportError, AttributeError):
        return (), (unavailable,)
    try:
        paths = tuple(plan_level_needle_paths(ct, segmentation, level, gauge=options.needle_gauge,
                                              target=options.needle_target))
    except NotImplementedError:
        return (), (unavailable,)
    except PvpPlanError as exc:  # one level's failure does not sink the plan
        return (), (Notice(code="needle_planning_failed", message=f"{level}: no needle path planned: {exc}",
                           source="pvp-plan needle planning", severity=Severity.CAUTION),)
    notices = tuple(n for p in paths for n in p.notices)
    return paths, notices


def plan_level(ct: CTVolume, segmentation: Segmentation, level: Level | str, *, options: PlanOptions = PlanOptions()
               ) -> LevelPlan:
    """Plan (or re-plan after an edit) one level: volume, fill guidance, wall, density, collapse, needles.

    Raises
    ------
    PlanError
        When ``level`` is not a level name or has no segmented body.
    """
    try:
        lv = Level.parse(str(getattr(level, "value", level)))
        segmentation.body(lv)
    except (ValueError, KeyError) as exc:
        raise PlanError(f"cannot plan {level}: {exc.args[0]}") from None
    lp = assess_level(ct, segmentation, lv, thresholds=options.density)
    if options.plan_needles and lp.plannable:
        paths, notices = _needle_paths(ct, segmentation, lv.value, options)
        lp = replace(lp, needle_paths=paths, warnings=lp.warnings + notices)
    return lp


def plan_case(ct: CTVolume, *, options: PlanOptions = PlanOptions(), segmentation: Segmentation | None = None,
              progress: Progress | None = None) -> CasePlan:
    """Plan a whole case: segment (unless given), then plan every selected level.

    Parameters
    ----------
    ct : CTVolume
        The CT (HU, LPS-aligned grid).
    options : PlanOptions
        Levels, needle, density thresholds...
    segmentation : Segmentation, optional
        Use this body map instead of segmenting (ground truth, external or edited map).
    progress : callable, optional
        ``progress(step, fraction)`` called as the slow steps advance (fraction 0-1).

    Raises
    ------
    SegmentationError
        No vertebral body found.
    PlanError
        A requested level was not found.
    """
    report = progress or (lambda step, frac: None)
    if segmentation is None:
        report("segmenting vertebral bodies", 0.0)
        segmentation = _segment(ct, options.anchor)
    if segmentation.labels.shape != ct.shape:
        raise PlanError(f"segmentation grid {segmentation.labels.shape} does not match the CT {ct.shape}")
    if not segmentation.bodies:
        raise SegmentationError("no vertebral body found in this CT; is the spine in the field of view?")
    found = [b.level.value for b in segmentation.bodies]
    if options.levels is None:
        selected = found
    else:
        missing = [lv for lv in options.levels if lv not in found]
        if missing:
            raise PlanError(f"level(s) {', '.join(missing)} not found in the segmentation; found: {', '.join(found)}")
        selected = [lv for lv in found if lv in options.levels]
    plans = []
    for i, name in enumerate(selected):
        report(f"planning {name}", i / max(len(selected), 1))
        plans.append(plan_level(ct, segmentation, name, options=options))
    report("planning done", 1.0)
    case_notices = list(session_notices([lp.level for lp in plans if lp.plannable],
                                        selected_by_user=options.levels is not None))
    case_notices += needle_notices(options.needle_gauge)
    unavailable = [n for lp in plans for n in lp.warnings if n.code == "needle_planning_unavailable"]
    if unavailable:
        case_notices.append(Notice(code="needle_planning_unavailable",
                                   message="Needle planning not available in this build: no needle paths planned.",
                                   source="pvp-plan", severity=Severity.INFO))
        plans = [replace(lp, warnings=tuple(n for n in lp.warnings if n.code != "needle_planning_unavailable"))
                 for lp in plans]
    return CasePlan(ct=ct, segmentation=segmentation, options=options, levels=tuple(plans),
                    notices=tuple(case_notices))


def run_case(path: str | Path, *, options: PlanOptions = PlanOptions(), series: str | None = None,
             segmentation_path: str | Path | None = None, labels: str | None = None,
             progress: Progress | None = None) -> CasePlan:
    """Load a CT (DICOM folder/file, NIfTI, NRRD, MHA) and plan it; the batch runner and the CLI use this.

    ``segmentation_path`` plans on an external label map instead of segmenting; ``labels`` names its
    convention (see :func:`pvp_plan.segment.external.load_external_segmentation`; None = auto-detect).
    """
    from pvp_plan.io import load_ct

    report = progress or (lambda step, frac: None)
    report("loading CT", 0.0)
    ct = load_ct(path, series=series)
    segmentation = None
    if segmentation_path is not None:
        from pvp_plan.segment.external import load_external_segmentation

        segmentation = load_external_segmentation(segmentation_path, ct, convention=labels, anchor=options.anchor)
    return plan_case(ct, options=options, segmentation=segmentation, progress=progress)


def plan_csv_text(plan: CasePlan) -> str:
    """plan.csv content: one row per level."""
    rows = plan.table_rows()
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def write_case_outputs(plan: CasePlan, out_dir: str | Path, *, html: bool = True, label_map: bool = True
                       ) -> dict[str, Path]:
    """Write plan.json, plan.csv, report.html and vertebral_bodies.nii.gz (on the input's own grid).

    Everything is first written to temporary names in ``out_dir``, then renamed, so a failure leaves no
    half output. Returns the paths by kind (``"json"``, ``"csv"``, ``"html"``, ``"label_map"``).
    """
    import SimpleITK as sitk

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    contents: dict[str, tuple[str, bytes | None]] = {
        "json": ("plan.json", json.dumps(plan.to_dict(), indent=2, allow_nan=False).encode("utf-8")),
        "csv": ("plan.csv", plan_csv_text(plan).encode("utf-8")),
    }
    if html:
        from pvp_plan.report import render_report_html

        contents["html"] = ("report.html", render_report_html(plan).encode("utf-8"))
    staged: dict[str, tuple[Path, Path]] = {}
    try:
        for kind, (name, data) in contents.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=out_dir)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            staged[kind] = (Path(tmp), out_dir / name)
        if label_map:
            fd, tmp = tempfile.mkstemp(prefix=".vertebral_bodies.", suffix=".part.nii.gz", dir=out_dir)
            os.close(fd)
            sitk.WriteImage(plan.ct.to_source_grid(plan.segmentation.labels), tmp, useCompression=True)
            staged["label_map"] = (Path(tmp), out_dir / "vertebral_bodies.nii.gz")
    except BaseException:
        for tmp, _ in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in staged.values():
        publish(tmp, final)
    logger.info("plan written to %s (%s)", out_dir.name, ", ".join(p.name for _, p in staged.values()))
    return {kind: final for kind, (_, final) in staged.items()}
