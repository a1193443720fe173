"""Result types of the per-level plan (all values JSON-ready through ``to_dict``).

"Not measured" is None, never 0. Every statement is a :class:`~pvp_plan.messages.Notice` with its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvp_plan.messages import Notice
from pvp_plan.needle.types import NeedlePath


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(float(v), nd) + 0.0  # no "-0.0"


@dataclass(frozen=True)
class FillGuidance:
    """CQ5 cement-volume guidance for one body (mL), with the conflicting figures side by side."""

    low_ml: float
    high_ml: float
    exceeds_5ml_caution: bool
    caution_ml: float
    usual_low_ml: float
    usual_high_ml: float
    typical_myeloma_ml: float
    typical_osteoporotic_ml: float
    region: str
    posterior_third_stop_ml: float | None
    context_strength_ml: float
    context_stiffness_ml: float

    def to_dict(self) -> dict:
        return {
            "low": _r(self.low_ml), "high": _r(self.high_ml), "unit": "mL",
            "basis": "50-70% of the body volume (one reference cited by CQ5; no fixed upper limit)",
            "caution_ml": self.caution_ml, "exceeds_5ml_caution": bool(self.exceeds_5ml_caution),
            "usual_ml": {"low": self.usual_low_ml, "high": self.usual_high_ml, "source": "CQ5"},
            "typical_ml": {"region": self.region, "myeloma": self.typical_myeloma_ml,
                           "osteoporotic": self.typical_osteoporotic_ml},
            "posterior_third_stop_ml": _r(self.posterior_third_stop_ml),
            "biomechanics_context": {
                "label": "context from cadaver studies (Molloy 2003), not a guideline recommendation",
                "strength_16pct_ml": _r(self.context_strength_ml), "stiffness_30pct_ml": _r(self.context_stiffness_ml),
            },
        }


@dataclass(frozen=True)
class WallBreach:
    """Posterior wall assessment of one body.

    ``extent_mm`` is the cranio-caudal extent (mm along the spine axis, relative to the body centre,
    + cranial); ``side`` is where across the wall ("left", "centre", "right", or combinations);
    ``missing_fraction`` is the share of the assessed wall without cortex or protruding.
    """

    flag: bool
    confidence: float
    missing_fraction: float | None
    gap_fraction: float | None
    protrusion_max_mm: float | None
    extent_mm: tuple[float, float] | None
    craniocaudal_length_mm: float | None
    side: str | None
    finding: str
    location_zyx: tuple[float, float, float] | None = None  # voxel index of the finding, for report images

    def to_dict(self) -> dict:
        return {
            "flag": bool(self.flag), "confidence": _r(self.confidence, 2), "missing_fraction": _r(self.missing_fraction, 2),
            "cortical_gap_fraction": _r(self.gap_fraction, 2), "protrusion_max_mm": _r(self.protrusion_max_mm),
            "craniocaudal_extent_mm": None if self.extent_mm is None else [_r(v) for v in self.extent_mm],
            "craniocaudal_length_mm": _r(self.craniocaudal_length_mm), "side": self.side, "finding": self.finding,
        }


@dataclass(frozen=True)
class DensityAssessment:
    """Trabecular density class and statistics of one body (thresholds stated)."""

    density_class: str  # "sclerotic" | "lytic" | "mixed" | "osteoporotic" | "normal"
    hu_mean: float | None
    hu_median: float | None
    hu_p05: float | None
    hu_p95: float | None
    hu_std: float | None
    lytic_fraction: float | None
    lytic_cluster_fraction: float | None
    sclerotic_fraction: float | None
    sclerotic_cluster_fraction: float | None
    margin_mm: float | None
    thresholds: dict
    osteoporosis_note: str = ""
    location_zyx: tuple[float, float, float] | None = None
    lytic_cortex_fraction: float | None = None  # share of the body surface reached by the lytic cluster

    def to_dict(self) -> dict:
        return {
            "class": self.density_class,
            "hu": {"mean": _r(self.hu_mean), "median": _r(self.hu_median), "p05": _r(self.hu_p05),
                   "p95": _r(self.hu_p95), "std": _r(self.hu_std)},
            "trabecular_region": f"body eroded by {self.margin_mm} mm from its surface",
            "lytic_search_region": f"body farther than {self.margin_mm} mm from its outline (the convex hull of each "
                                   "axial section in front of its posterior quarter, so that a bay a lesion opened "
                                   "through the cortex does not hide the lesion)",
            "lytic_fraction": _r(self.lytic_fraction, 3), "lytic_cluster_fraction": _r(self.lytic_cluster_fraction, 3),
            "lytic_cortex_fraction": _r(self.lytic_cortex_fraction, 3),
            "sclerotic_fraction": _r(self.sclerotic_fraction, 3),
            "sclerotic_cluster_fraction": _r(self.sclerotic_cluster_fraction, 3),
            "thresholds": self.thresholds, "osteoporosis_note": self.osteoporosis_note,
        }


@dataclass(frozen=True)
class CollapseAssessment:
    """Heights (mm, along the spine axis), ratios and Genant grade of one body."""

    anterior_mm: float | None
    middle_mm: float | None
    posterior_mm: float | None
    own_ratio: float | None  # min(wedge_ratio, biconcave_ratio)
    neighbour_ratio: float | None  # mean of own heights / mean of the neighbours' mean heights
    height_loss: float | None
    genant_grade: int | None
    genant_name: str | None
    vertebra_plana: bool
    neighbours: tuple[str, ...] = ()
    wedge_ratio: float | None = None  # anterior / posterior margin height (fitted line)
    biconcave_ratio: float | None = None  # middle / posterior height
    anterior_margin_mm: float | None = None
    posterior_margin_mm: float | None = None

    def to_dict(self) -> dict:
        return {
            "heights_mm": {"anterior": _r(self.anterior_mm), "middle": _r(self.middle_mm),
                           "posterior": _r(self.posterior_mm)},
            "margin_heights_mm": {"anterior": _r(self.anterior_margin_mm), "posterior": _r(self.posterior_margin_mm)},
            "axis": "spine's own cranio-caudal axis at this body",
            "ratio_to_own_posterior": _r(self.own_ratio, 2), "wedge_ratio": _r(self.wedge_ratio, 2),
            "biconcave_ratio": _r(self.biconcave_ratio, 2), "ratio_to_neighbours": _r(self.neighbour_ratio, 2),
            "neighbours_used": list(self.neighbours), "height_loss": _r(self.height_loss, 2),
            "genant_grade": self.genant_grade, "genant": self.genant_name, "vertebra_plana": bool(self.vertebra_plana),
        }


@dataclass(frozen=True)
class LevelPlan:
    """The plan of one vertebral level.

    ``plannable`` is False (with ``not_plannable_reason``) for bodies cut by the field of view or
    with low segmentation / level confidence; their volume and fill guidance are then None.
    """

    level: str
    label: int
    plannable: bool
    not_plannable_reason: str | None
    body_volume_ml: float | None
    volume_low_ml: float | None
    volume_high_ml: float | None
    voxel_size_mm: tuple[float, float, float]
    fill: FillGuidance | None
    wall: WallBreach | None
    density: DensityAssessment | None
    collapse: CollapseAssessment | None
    level_confidence: float
    segmentation_confidence: float
    needle_paths: tuple[NeedlePath, ...] = ()
    warnings: tuple[Notice, ...] = field(default_factory=tuple)

    @property
    def flags(self) -> tuple[str, ...]:
        """Short names of the findings flagged on this level (for tables and images)."""
        out = []
        if self.collapse is not None and (self.collapse.genant_grade or 0) >= 1:
            out.append(f"collapse:{self.collapse.genant_name}")
        if self.density is not None and self.density.density_class in ("sclerotic", "lytic", "mixed"):
            out.append(self.density.density_class)
        if self.wall is not None and self.wall.flag:
            out.append("posterior wall breach")
        return tuple(out)

    def to_dict(self) -> dict:
        return {
            "level": self.level, "label": int(self.label), "plannable": bool(self.plannable),
            "not_plannable_reason": self.not_plannable_reason,
            "body_volume_ml": _r(self.body_volume_ml, 2),
            "body_volume_band_ml": None if self.body_volume_ml is None else {
                "low": _r(self.volume_low_ml, 2), "high": _r(self.volume_high_ml, 2),
                "method": "one-voxel erosion / dilation of the body mask", "voxel_size_mm_zyx": list(self.voxel_size_mm)},
            "fill_guidance_ml": None if self.fill is None else self.fill.to_dict(),
            "exceeds_5ml_caution": None if self.fill is None else bool(self.fill.exceeds_5ml_caution),
            "posterior_third_stop_ml": None if self.fill is None else _r(self.fill.posterior_third_stop_ml),
            "posterior_wall_breach": None if self.wall is None else self.wall.to_dict(),
            "density": None if self.density is None else self.density.to_dict(),
            "collapse": None if self.collapse is None else self.collapse.to_dict(),
            "level_confidence": _r(self.level_confidence, 2),
            "segmentation_confidence": _r(self.segmentation_confidence, 2),
            "flags": list(self.flags),
            "needle_paths": [p.to_dict() for p in self.needle_paths],
            "warnings": [n.to_dict() for n in self.warnings],
        }
