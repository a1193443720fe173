"""The ground-truth synthetic CT phantom of the thoracolumbar spine: :func:`generate_phantom`.

Rendering: every structure is an analytic solid (:mod:`pvp_plan.sample_data.shapes`) evaluated
on a fine grid inside its bounding box (sub-voxels of about 0.5 mm); the sub-voxel fraction is
the voxel's partial volume. Materials are blended in anatomical order, then the volume is
blurred by a Gaussian point-spread function and Gaussian noise is added. Geometry never depends
on the seed; texture and noise do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from pvp_plan.io.ct_volume import CTVolume, ct_from_array
from pvp_plan.levels import Level
from pvp_plan.sample_data.anatomy import DEFAULT_LEVELS, Curvature, validate_levels
from pvp_plan.sample_data.paint import MATERIALS_HU, paint_scene
from pvp_plan.sample_data.scene import build_scene
from pvp_plan.sample_data.truth import EXTRA_MASK_LABELS, GENERATOR_VERSION, build_truth

logger = logging.getLogger(__name__)

__all__ = ["EXTRA_MASK_LABELS", "GENERATOR_VERSION", "MATERIALS_HU", "Phantom", "generate_phantom"]

PATHOLOGY_TYPES = ("wedge", "lytic", "sclerotic", "posterior_wall_breach")

#: Parameters of each planted pathology (overridable per level).
PATHOLOGY_DEFAULTS: dict[str, dict] = {
    "wedge": {"anterior_height_loss_fraction": 0.35},
    "lytic": {"diameter_mm": 14.0, "side": "left", "angle_from_anterior_deg": 40.0,
              "cortex_breach_depth_mm": 3.5},
    "sclerotic": {"extent_fraction": 0.86},
    "posterior_wall_breach": {"side": "left-centre", "lateral_offset_mm": 4.0, "width_mm": 12.0,
                              "depth_into_body_mm": 6.0, "protrusion_mm": 4.0, "craniocaudal_extent_mm": 10.0,
                              "center_w_mm": 0.0},
}

#: Levels and pathology of the default phantom (``pathology=None``).
DEFAULT_PATHOLOGY: dict[str, str] = {"T11": "sclerotic", "L1": "wedge", "L2": "posterior_wall_breach",
                                     "L3": "lytic"}


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic CT with its exact ground truth.

    Attributes
    ----------
    ct : CTVolume
        HU volume (int16) on an LPS-aligned (z, y, x) grid.
    body_labels : np.ndarray
        uint8 (z, y, x), VerSe label per vertebral body (T10 = 17 ... L5 = 24); 0 elsewhere.
        Bodies only (cortex and everything inside, lesions included), no arch.
    masks : dict of str to np.ndarray
        ``"vertebra_labels"`` (uint8 VerSe, whole vertebra: body + arch), ``"canal"``, ``"aorta"``
        (lumen + wall, with the common iliac arteries), ``"ribs"``, ``"sacrum"`` (bool).
    truth : dict
        JSON-serialisable description (see the ``schema`` key and ``sample_data/README.md``).
    """

    ct: CTVolume
    body_labels: np.ndarray
    masks: dict
    truth: dict

    def __post_init__(self) -> None:
        if self.body_labels.shape != self.ct.shape:
            raise ValueError(f"body_labels shape {self.body_labels.shape} differs from the CT {self.ct.shape}")

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.truth["level_order"])

    def body_mask(self, level: str) -> np.ndarray:
        """Boolean mask of one level's body (``"L1"``)."""
        return self.body_labels == Level.parse(level).label

    def ground_truth_segmentation(self):
        """The body labels as a :class:`pvp_plan.segment.types.Segmentation` (confidence 1, ground truth)."""
        from pvp_plan.segment.types import Segmentation

        return Segmentation.from_label_map(self.body_labels, self.ct, method="pvp-plan phantom ground truth")


@dataclass(frozen=True)
class _Options:
    seed: int
    spacing_mm: tuple[float, float, float]
    levels: tuple[str, ...]
    pathology: dict[str, dict]
    curvature: Curvature
    narrow_pedicle_level: str | None
    narrow_pedicle_width_mm: float
    fov_mm: tuple[float, float]
    psf_sigma_mm: float
    noise_sd_hu: float
    aorta_gap_mm: float
    supersample_mm: float
    materials_hu: dict[str, float]


def generate_phantom(
    *,
    seed: int = 0,
    spacing_mm: tuple[float, float, float] = (2.0, 0.8, 0.8),
    levels: tuple[str, ...] = DEFAULT_LEVELS,
    pathology: dict | None = None,
    curvature: Curvature | float | None = None,
    narrow_pedicle_level: str | None = None,
    narrow_pedicle_width_mm: float = 4.0,
    fov_mm: tuple[float, float] = (200.0, 180.0),
    psf_sigma_mm: float = 0.6,
    noise_sd_hu: float = 15.0,
    aorta_gap_mm: float = 1.0,
    supersample_mm: float = 0.5,
    materials_hu: dict[str, float] | None = None,
) -> Phantom:
    """Render the synthetic thoracolumbar CT phantom with its exact ground truth.

    Parameters
    ----------
    seed : int
        Seeds the texture and noise (numpy ``default_rng``); the geometry does not depend on it.
    spacing_mm : (z, y, x) in millimetres
        Voxel spacing of the CT grid.
    levels : tuple of str
        Contiguous levels, cranial to caudal, within T8-L5 (default T10-L5). The sacrum is
        rendered when L5 is included; ribs at every thoracic level.
    pathology : dict or None
        ``{level: type}`` or ``{level: {"type": type, **params}}`` with type one of
        ``"wedge"``, ``"lytic"``, ``"sclerotic"``, ``"posterior_wall_breach"`` (parameters:
        :data:`PATHOLOGY_DEFAULTS`). ``None`` plants :data:`DEFAULT_PATHOLOGY`; ``{}`` none.
    curvature : Curvature, float or None
        Sagittal curvature; a float is the lumbar lordosis in degrees. None: the default
        gentle curve (lumbar lordosis 30 degrees L1-S1, kyphosis 8 degrees over T10-T12).
        ``Curvature(0, 0)`` gives a straight column along z.
    narrow_pedicle_level : str or None
        Level whose two pedicles get an isthmus of ``narrow_pedicle_width_mm`` (gauge warnings).
    fov_mm : (x, y) in millimetres
        In-plane field of view, centred on the spine left-right and including the posterior skin.
        ``(409.6, 409.6)`` shows the whole torso.
    psf_sigma_mm : float
        Standard deviation (mm) of the Gaussian point-spread function applied on every axis.
    noise_sd_hu : float
        Standard deviation (HU) of the added Gaussian noise (slightly correlated in-plane).
    aorta_gap_mm : float
        Gap between the aortic wall and the nearest vertebral body (0 = touching).
    supersample_mm : float
        Sub-voxel size (mm) of the partial-volume rendering of bone.
    materials_hu : dict or None
        HU of materials, overriding :data:`MATERIALS_HU` (keys among its own), e.g.
        :data:`~pvp_plan.sample_data.paint.OSTEOPOROTIC_BONE_HU` for an osteoporotic spine. The truth records the
        values used.

    Returns
    -------
    Phantom
    """
    opts = _options(seed, spacing_mm, levels, pathology, curvature, narrow_pedicle_level,
                    narrow_pedicle_width_mm, fov_mm, psf_sigma_mm, noise_sd_hu, aorta_gap_mm, supersample_mm,
                    materials_hu)
    t0 = time.perf_counter()
    scene = build_scene(opts)
    hu, body_labels, body_fracs, masks = paint_scene(scene, seed=opts.seed, supersample_mm=opts.supersample_mm,
                                                     psf_sigma_mm=opts.psf_sigma_mm, noise_sd_hu=opts.noise_sd_hu,
                                                     materials_hu=opts.materials_hu)
    ct = ct_from_array(hu, spacing_mm=scene.grid.spacing_mm, origin_lps_mm=scene.grid.origin_lps_mm,
                       name="pvp-plan synthetic phantom")
    truth = build_truth(scene, opts, scene.grid, body_labels, body_fracs, masks, opts.materials_hu)
    phantom = Phantom(ct=ct, body_labels=body_labels, masks=masks, truth=truth)
    logger.info("phantom %s rendered in %.1f s", phantom.ct.shape, time.perf_counter() - t0)
    return phantom


def _options(seed, spacing_mm, levels, pathology, curvature, narrow_pedicle_level, narrow_width, fov_mm, psf,
             noise, gap, supersample, materials=None) -> _Options:
    spacing = tuple(float(v) for v in spacing_mm)
    if len(spacing) != 3 or min(spacing) <= 0 or max(spacing) > 6:
        raise ValueError(f"spacing_mm must be three values in (0, 6] mm as (z, y, x), got {spacing_mm}")
    names = validate_levels(levels)
    if curvature is None:
        curvature = Curvature()
    elif isinstance(curvature, (int, float)):
        curvature = Curvature(lordosis_deg=float(curvature))
    elif not isinstance(curvature, Curvature):
        raise ValueError(f"curvature must be a Curvature, a lordosis angle in degrees or None, got {curvature!r}")
    path = _parse_pathology(DEFAULT_PATHOLOGY if pathology is None else pathology, names,
                            default=pathology is None)
    narrow = None
    if narrow_pedicle_level is not None:
        narrow = Level.parse(narrow_pedicle_level).value
        if narrow not in names:
            raise ValueError(f"narrow_pedicle_level {narrow} is not among the rendered levels {list(names)}")
        if not 1.5 <= narrow_width <= 20:
            raise ValueError(f"narrow_pedicle_width_mm must lie in [1.5, 20] mm, got {narrow_width}")
    fov = tuple(float(v) for v in fov_mm)
    if len(fov) != 2 or min(fov) < 120:
        raise ValueError(f"fov_mm must be (x, y) of at least 120 mm each, got {fov_mm}")
    if not 0 <= psf <= 3 or not 0 <= noise <= 200 or not 0 <= gap <= 20 or not 0.1 <= supersample <= 2:
        raise ValueError("psf_sigma_mm in [0, 3], noise_sd_hu in [0, 200], aorta_gap_mm in [0, 20] and "
                         f"supersample_mm in [0.1, 2] expected, got {psf}, {noise}, {gap}, {supersample}")
    unknown = set(materials or {}) - set(MATERIALS_HU)
    if unknown:
        raise ValueError(f"materials_hu: unknown materials {sorted(unknown)}; expected keys of MATERIALS_HU")
    materials_hu = {**MATERIALS_HU, **{k: float(v) for k, v in (materials or {}).items()}}
    return _Options(int(seed), spacing, names, path, curvature, narrow, float(narrow_width), fov, float(psf),
                    float(noise), float(gap), float(supersample), materials_hu)


def _parse_pathology(spec: dict, names: tuple[str, ...], *, default: bool) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, value in spec.items():
        level = Level.parse(str(key)).value
        if level not in names:
            if default:
                continue  # the default set only applies to the levels rendered
            raise ValueError(f"pathology level {level} is not among the rendered levels {list(names)}")
        params = {"type": value} if isinstance(value, str) else dict(value)
        kind = params.pop("type", None)
        if kind not in PATHOLOGY_TYPES:
            raise ValueError(f"pathology of {level}: type {kind!r} unknown; expected one of {PATHOLOGY_TYPES}")
        unknown = set(params) - set(PATHOLOGY_DEFAULTS[kind])
        if unknown:
            raise ValueError(f"pathology of {level} ({kind}): unknown parameters {sorted(unknown)}; "
                             f"expected {sorted(PATHOLOGY_DEFAULTS[kind])}")
        out[level] = {"type": kind, **PATHOLOGY_DEFAULTS[kind], **params}
    return out
