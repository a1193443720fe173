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
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pvp_plan.io.ct_volume import CTVolume, ct_from_array
from pvp_plan.levels import Level
from pvp_plan.sample_data.anatomy import (
    DEFAULT_LEVELS,
    LEVEL_SPECS,
    Curvature,
    Frame,
    SpineLayout,
    build_layout,
    validate_levels,
)
from pvp_plan.sample_data.render import Grid, composite, union_into
from pvp_plan.sample_data.shapes import Capsule, Disc, Ellipsoid, Restricted, Slab, VertebralBody
from pvp_plan.sample_data.vertebra import (
    VertebraModel,
    make_ribs,
    make_sacrum,
    make_vertebra,
    pathology_solids,
    spinous_tip_lps,
    superior_facet_local,
)

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1"

#: Material values (HU) before blur, partial volume and noise.
MATERIALS_HU: dict[str, float] = {
    "air": -1000.0,
    "lung": -850.0,
    "fat": -100.0,
    "retroperitoneal_fat": -90.0,
    "skin": 40.0,
    "muscle": 50.0,
    "organ": 35.0,
    "liver": 60.0,
    "kidney": 140.0,
    "csf": 20.0,
    "cord": 35.0,
    "vessel_wall": 40.0,
    "aortic_blood": 300.0,
    "ivc_blood": 130.0,
    "calcification": 1100.0,
    "disc_annulus": 95.0,
    "disc_nucleus": 75.0,
    "cortical_bone": 1300.0,
    "trabecular_bone": 200.0,
    "cancellous_arch": 260.0,
    "rib_marrow": 240.0,
    "sclerotic": 900.0,
    "lytic": 35.0,
    "breach": 50.0,
    "impaction": 420.0,
}

#: Texture amplitude (HU, standard deviation) of cancellous bone.
TRABECULAR_TEXTURE_SD_HU = 35.0

PATHOLOGY_TYPES = ("wedge", "lytic", "sclerotic", "posterior_wall_breach")

#: Parameters of each planted pathology (overridable per level).
PATHOLOGY_DEFAULTS: dict[str, dict] = {
    "wedge": {"anterior_height_loss_fraction": 0.35},
    "lytic": {"diameter_mm": 14.0, "side": "left", "angle_from_anterior_deg": 40.0,
              "cortex_breach_depth_mm": 3.5},
    "sclerotic": {"extent_fraction": 0.82},
    "posterior_wall_breach": {"side": "left-centre", "lateral_offset_mm": 4.0, "width_mm": 12.0,
                              "depth_into_body_mm": 6.0, "protrusion_mm": 4.0, "craniocaudal_extent_mm": 10.0,
                              "center_w_mm": 0.0},
}

#: Levels and pathology of the default phantom (``pathology=None``).
DEFAULT_PATHOLOGY: dict[str, str] = {"T11": "sclerotic", "L1": "wedge", "L2": "posterior_wall_breach",
                                     "L3": "lytic"}

#: Air kept behind the posterior skin when the field of view is cropped (mm).
POSTERIOR_AIR_MM = 8.0

#: Psoas radius (mm) at each level's centre.
PSOAS_RADIUS_MM = {"T12": 4.0, "L1": 7.0, "L2": 10.5, "L3": 14.0, "L4": 17.5, "L5": 20.0, "S1": 21.0}

#: Labels of the combined extra-mask file (``extra_masks.nii.gz``); vertebrae keep their VerSe label.
EXTRA_MASK_LABELS = {"canal": 40, "aorta": 41, "ribs": 42, "sacrum": 43}


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
    psf_sigma_mm: float = 0.5,
    noise_sd_hu: float = 15.0,
    aorta_gap_mm: float = 1.0,
    supersample_mm: float = 0.5,
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
        gentle curve (lordosis 30 degrees, kyphosis 8 degrees over the thoracic levels).
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

    Returns
    -------
    Phantom
    """
    opts = _options(seed, spacing_mm, levels, pathology, curvature, narrow_pedicle_level,
                    narrow_pedicle_width_mm, fov_mm, psf_sigma_mm, noise_sd_hu, aorta_gap_mm, supersample_mm)
    t0 = time.perf_counter()
    scene = _build_scene(opts)
    phantom = _render(scene, opts)
    logger.info("phantom %s rendered in %.1f s", phantom.ct.shape, time.perf_counter() - t0)
    return phantom


def _options(seed, spacing_mm, levels, pathology, curvature, narrow_pedicle_level, narrow_width, fov_mm, psf,
             noise, gap, supersample) -> _Options:
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
    return _Options(int(seed), spacing, names, path, curvature, narrow, float(narrow_width), fov, float(psf),
                    float(noise), float(gap), float(supersample))


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


# --------------------------------------------------------------------------------------------- scene


@dataclass
class _Scene:
    layout: SpineLayout
    vertebrae: list[VertebraModel]
    sacrum_body: VertebralBody | None
    sacrum_parts: list
    discs: list
    canal: list
    cord: list
    psoas: list
    paraspinal: list
    ribs: dict
    aorta: dict
    ivc: list
    torso: dict
    organs: list
    grid: Grid
    pathology_truth: dict = field(default_factory=dict)


def _build_scene(opts: _Options) -> _Scene:
    layout = build_layout(opts.levels, opts.curvature, LEVEL_SPECS)
    lay = list(layout.vertebrae)
    models: list[VertebraModel] = [None] * len(lay)  # type: ignore[list-item]
    # caudal to cranial so each level knows the superior facets of the one below
    below_facets = None
    below = None
    if layout.sacrum is not None:
        below = layout.sacrum
        below_facets = {side: np.array([s * 21.0, layout.sacrum.spec.body_depth_mm / 2 + 10.0])
                        for side, s in (("left", 1.0), ("right", -1.0))}
    for i in range(len(lay) - 1, -1, -1):
        v = lay[i]
        width = v.spec.pedicle_width_mm if v.name != opts.narrow_pedicle_level else opts.narrow_pedicle_width_mm
        p = opts.pathology.get(v.name)
        wedge = p["anterior_height_loss_fraction"] if p and p["type"] == "wedge" else 0.0
        disc_above = lay[i - 1].spec.disc_below_mm if i > 0 else 8.0
        m = make_vertebra(v, pedicle_width_mm={"left": width, "right": width}, wedge_fraction=wedge, below=below,
                          below_facets=below_facets, disc_above_mm=disc_above, thoracic=v.name.startswith("T"))
        models[i] = m
        below, below_facets = v, {side: superior_facet_local(v.spec, width, side) for side in ("left", "right")}
    path_truth = {}
    for m in models:
        p = opts.pathology.get(m.name)
        if p:
            params = {k: v for k, v in p.items() if k != "type"}
            solids, info = pathology_solids(m, p["type"], params)
            m.lesions.extend(solids)
            path_truth[m.name] = {"type": p["type"], **params, **info}
    sacrum_body, sacrum_parts = (make_sacrum(layout.sacrum) if layout.sacrum is not None else (None, []))
    bodies = [m.body for m in models] + ([sacrum_body] if sacrum_body is not None else [])
    frames = [m.frame for m in models] + ([layout.sacrum.frame] if layout.sacrum is not None else [])
    specs = [m.layout.spec for m in models] + ([layout.sacrum.spec] if layout.sacrum is not None else [])
    discs = [_disc(bodies[i], bodies[i + 1]) for i in range(len(bodies) - 1)]
    planes = _cut_planes(bodies)
    torso = _torso(models)
    grid = _grid(opts, models, sacrum_body, torso)
    canal, cord, psoas, paraspinal = [], [], [], []
    cavity = _ZEllipse(0.0, torso["center_y"], torso["a"] - torso["fat"] - torso["wall"],
                       torso["b"] - torso["fat"] - torso["wall"])
    names_all = [m.name for m in models] + (["S1"] if layout.sacrum is not None else [])
    psoas_u0 = [sp.body_width_mm / 2 + 0.75 * PSOAS_RADIUS_MM.get(n, 0.0) for n, sp in zip(names_all, specs)]
    for i, (f, sp) in enumerate(zip(frames, specs)):
        top, bot = planes[i], planes[i + 1]
        d = sp.body_depth_mm
        canal.append(Slab(f, *top, *bot, u0=0.0, v0=d / 2 + sp.canal_depth_mm / 2, ru=sp.canal_width_mm / 2,
                          rv=sp.canal_depth_mm / 2, power=2.2))
        name = names_all[i]
        if name.startswith("T") or name == "L1":
            cord.append(Slab(f, *top, *bot, u0=0.0, v0=d / 2 + sp.canal_depth_mm * 0.45, ru=4.5, rv=4.0))
        rp = PSOAS_RADIUS_MM.get(name)
        pitch = sp.body_height_mm + sp.disc_below_mm
        # psoas: radius and centre interpolated between neighbouring levels (no steps at the discs)
        j0, j1 = max(i - 1, 0), min(i + 1, len(specs) - 1)
        r_up = PSOAS_RADIUS_MM.get(names_all[j0]) or (rp or 0.0) - 3.5
        r_dn = PSOAS_RADIUS_MM.get(names_all[j1]) or (rp or 0.0) + 3.5
        span = max(j1 - j0, 1) * pitch
        for s in (1.0, -1.0):
            if rp:
                taper = (r_up - r_dn) / span / rp
                du0 = (psoas_u0[j0] - psoas_u0[j1]) / span
                psoas.append(Slab(f, *top, *bot, u0=s * psoas_u0[i], v0=0.05 * d, ru=rp, rv=0.85 * rp,
                                  taper_per_mm=taper, u0_per_mm=s * du0))
            muscle = Slab(f, *top, *bot, u0=s * 36.0, v0=d / 2 + sp.canal_depth_mm + 20.0, ru=23.0, rv=21.0,
                          power=2.3)
            paraspinal.append(Restricted(muscle, within=cavity_wall_inner(torso)))
    ribs = {m.name: make_ribs(m, torso, length_mm={"T12": 110.0, "T11": 170.0}.get(m.name, 320.0))
            for m in models if m.name.startswith("T")}
    aorta = _aorta(models, opts, grid)
    ivc = _ivc(models)
    organs = _organs(models, torso, cavity)
    return _Scene(layout, models, sacrum_body, sacrum_parts, discs, canal, cord, psoas, paraspinal, ribs, aorta,
                  ivc, torso, organs, grid, path_truth)


@dataclass(frozen=True)
class _ZEllipse:
    """An elliptic cylinder along z (LPS), for torso layers."""

    cx: float
    cy: float
    a: float
    b: float

    def inside(self, x, y, z):
        q = ((x - self.cx) / self.a) ** 2 + ((y - self.cy) / self.b) ** 2 <= 1.0
        return np.broadcast_to(q, np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))), None

    def bbox(self):
        return (np.array([self.cx - self.a, self.cy - self.b, -1e6]),
                np.array([self.cx + self.a, self.cy + self.b, 1e6]))


def cavity_wall_inner(torso: dict) -> _ZEllipse:
    """Inside the subcutaneous fat (muscle wall and deeper)."""
    return _ZEllipse(0.0, torso["center_y"], torso["a"] - torso["fat"], torso["b"] - torso["fat"])


def _disc(upper: VertebralBody, lower: VertebralBody) -> Disc:
    f_up, f_lo = upper.frame, lower.frame
    p_up = f_up.to_lps([0.0, 0.0, -upper.height_mm / 2])
    p_lo = f_lo.to_lps([0.0, 0.0, lower.height_mm / 2])
    centre = (p_up + p_lo) / 2
    wv = f_up.w + f_lo.w
    wv = wv / np.linalg.norm(wv)
    beta = float(np.arctan2(-wv[1], wv[2]))
    frame = Frame.tilted(centre, beta)
    half = float(np.linalg.norm(p_up - p_lo)) / 2 + 10.0
    return Disc(frame=frame, upper=upper, lower=lower, width_mm=(upper.width_mm + lower.width_mm) / 2,
                depth_mm=(upper.depth_mm + lower.depth_mm) / 2, half_extent_mm=half)


def _cut_planes(bodies: list[VertebralBody]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Planes (point, cranial normal) bounding each level's slab: bisectors of the discs, open ends."""
    planes = []
    first = bodies[0]
    planes.append((first.frame.to_lps([0.0, 0.0, first.height_mm / 2 + 300.0]), first.frame.w))
    for up, lo in zip(bodies[:-1], bodies[1:]):
        d = _disc(up, lo)
        planes.append((d.frame.center, d.frame.w))
    last = bodies[-1]
    planes.append((last.frame.to_lps([0.0, 0.0, -last.height_mm / 2 - 300.0]), last.frame.w))
    return planes


def _torso(models: list[VertebraModel]) -> dict:
    tips = [spinous_tip_lps(m) for m in models]
    y_skin = max(float(t[1]) for t in tips) + 16.0
    a, b = 160.0, 122.0
    return {"a": a, "b": b, "center_y": y_skin - b, "skin": 2.0, "fat": 16.0, "wall": 14.0,
            "rib_a": a - 16.0 - 7.0, "rib_b": b - 16.0 - 7.0, "posterior_skin_y_mm": y_skin}


def _grid(opts: _Options, models: list[VertebraModel], sacrum_body, torso: dict) -> Grid:
    sz, sy, sx = opts.spacing_mm
    top = max(float(bar.bbox()[1][2]) for bar in models[0].arch + [models[0].body]) + 2.0
    if sacrum_body is not None:
        bottom = float(sacrum_body.frame.to_lps([0.0, 0.0, sacrum_body.height_mm / 2])[2]) - 36.0
    else:
        last = models[-1]
        bottom = min(float(bar.bbox()[0][2]) for bar in last.arch + [last.body]) - 2.0
    nz = int(np.ceil((top - bottom) / sz)) + 1
    fx, fy = opts.fov_mm
    nx, ny = int(round(fx / sx)), int(round(fy / sy))
    y_post = torso["posterior_skin_y_mm"] + POSTERIOR_AIR_MM
    y_centre = max(torso["center_y"], y_post - fy / 2)
    origin = (-(nx - 1) * sx / 2, y_centre - (ny - 1) * sy / 2, bottom)
    return Grid(shape=(nz, ny, nx), spacing_mm=opts.spacing_mm, origin_lps_mm=origin)


def _vessel_offset(body: VertebralBody, u_off: float, radius: float, gap: float) -> float:
    """Local v of a vessel centre at lateral offset u_off lying ``gap`` mm anterior of the body's section."""
    a, d = body.width_mm / 2, body.depth_mm
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    pu, pv = a * np.sin(t), 0.1 * d - 0.6 * d * np.cos(t)
    pv = np.minimum(pv, d / 2)
    lo, hi = -d / 2 - radius - 80.0, 0.0
    for _ in range(60):
        m = (lo + hi) / 2
        inside_body = body.in_section(np.float64(u_off), np.float64(m), np.float64(body.height_mm / 2))
        dist = float(np.min(np.hypot(pu - u_off, pv - m)))
        if inside_body or dist < radius + gap:
            hi = m
        else:
            lo = m
    return lo


def _aorta(models: list[VertebraModel], opts: _Options, grid: Grid) -> dict:
    r_lumen, wall = 12.5, 2.0
    r_out = r_lumen + wall
    u_off = 16.0
    pts = []
    bif_index = next((i for i, m in enumerate(models) if m.name == "L4"), len(models) - 1)
    for m in models[: bif_index + 1]:
        v = _vessel_offset(m.body, u_off, r_out, opts.aorta_gap_mm + 0.9)
        pts.append(m.frame.to_lps([u_off, v, 0.0]))
    top_dir = pts[0] - pts[1] if len(pts) > 1 else np.array([0.0, 0.0, 1.0])
    top_dir = top_dir / np.linalg.norm(top_dir)
    pts.insert(0, pts[0] + top_dir * 80.0)
    segments = [(pts[i], pts[i + 1]) for i in range(len(pts) - 1)]
    bif = pts[-1]
    iliac = []
    r_il, wall_il = 5.5, 1.5
    for s in (1.0, -1.0):
        direction = np.array([s * 0.42, -0.18, -0.89])
        direction /= np.linalg.norm(direction)
        start = bif + np.array([s * 4.0, 0.0, -6.0]) if s > 0 else bif + np.array([-8.0, 0.0, -6.0])
        iliac.append((start, start + 110.0 * direction))
    outer = [Capsule(p0, p1, r_out) for p0, p1 in segments] + [Capsule(p0, p1, r_il + wall_il) for p0, p1 in iliac]
    lumen = [Capsule(p0, p1, r_lumen) for p0, p1 in segments] + [Capsule(p0, p1, r_il) for p0, p1 in iliac]
    # calcified patch on the anterior-left wall over the L2-L3 segment (or the lowest segment)
    k = next((i for i, m in enumerate(models) if m.name == "L2"), len(segments) - 2) + 1
    k = min(max(k, 0), len(segments) - 1)
    patch = _WallPatch(segments[k][0], segments[k][1], r_lumen + 0.3, r_out, np.array([0.5, -0.866, 0.0]), 35.0)
    return {"outer": outer, "lumen": lumen, "patch": patch, "points": pts, "bifurcation": bif,
            "lumen_radius_mm": r_lumen, "wall_mm": wall}


@dataclass(frozen=True)
class _WallPatch:
    """Calcified plaque in a vessel wall: between radii, within a sector around ``direction``, mid-segment."""

    p0: np.ndarray
    p1: np.ndarray
    r_in: float
    r_out: float
    direction: np.ndarray
    half_angle_deg: float

    def inside(self, x, y, z):
        seg = self.p1 - self.p0
        L2 = float(seg @ seg)
        dx, dy, dz = x - self.p0[0], y - self.p0[1], z - self.p0[2]
        t = (dx * seg[0] + dy * seg[1] + dz * seg[2]) / L2
        rx, ry, rz = dx - t * seg[0], dy - t * seg[1], dz - t * seg[2]
        r = np.sqrt(rx**2 + ry**2 + rz**2)
        cosang = (rx * self.direction[0] + ry * self.direction[1] + rz * self.direction[2]) / np.maximum(r, 1e-6)
        ok = (t > 0.25) & (t < 0.75) & (r >= self.r_in) & (r <= self.r_out)
        return ok & (cosang >= np.cos(np.deg2rad(self.half_angle_deg))), None

    def bbox(self):
        return Capsule(self.p0, self.p1, self.r_out).bbox()


def _ivc(models: list[VertebraModel]) -> list[Capsule]:
    r = 11.0
    pts = []
    last = next((i for i, m in enumerate(models) if m.name == "L4"), len(models) - 1)
    for m in models[: last + 1]:
        v = _vessel_offset(m.body, -22.0, r, 3.0)
        pts.append(m.frame.to_lps([-22.0, v, 0.0]))
    top_dir = pts[0] - pts[1] if len(pts) > 1 else np.array([0.0, 0.0, 1.0])
    pts.insert(0, pts[0] + top_dir / np.linalg.norm(top_dir) * 80.0)
    return [Capsule(p0, p1, r) for p0, p1 in zip(pts[:-1], pts[1:])]


def _organs(models: list[VertebraModel], torso: dict, cavity: _ZEllipse) -> list:
    """Liver, kidneys and lung bases as (solid, material), in painting order."""
    by_name = {m.name: m for m in models}
    eye = np.eye(3)
    out = []
    yc = torso["center_y"]
    ref = by_name.get("T12") or models[0]
    z_ref = float(ref.frame.center[2])
    out.append((Restricted(Ellipsoid(np.array([-75.0, yc + 10.0, z_ref + 20.0]), eye, (85.0, 95.0, 110.0)),
                           within=cavity), "liver"))
    out.append(("retroperitoneal", "retroperitoneal_fat"))
    for name, s, dz in (("L1", 1.0, 10.0), ("L2", -1.0, 10.0)):
        m = by_name.get(name)
        if m is None:
            continue
        c = np.array([s * 68.0, float(m.frame.center[1]) + 12.0, float(m.frame.center[2]) + dz])
        out.append((Ellipsoid(c, eye, (24.0, 20.0, 52.0)), "kidney"))
    thor = [m for m in models if m.name.startswith("T")]
    if thor:
        ztop = float(thor[0].frame.center[2])
        for s in (1.0, -1.0):
            c = np.array([s * 78.0, yc + 70.0, ztop + 35.0])
            ring = _ZEllipse(0.0, yc, torso["rib_a"] - 5.0, torso["b"] - torso["fat"] - 22.0)
            out.append((Restricted(Ellipsoid(c, eye, (42.0, 42.0, 70.0)), within=ring), "lung"))
    return out


# -------------------------------------------------------------------------------------------- render


class _LocalAcc:
    """A union-occupancy accumulator on the bounding box of a set of solids."""

    def __init__(self, grid: Grid, solids: list) -> None:
        boxes = [s.bbox() for s in solids]
        lo = np.min([b[0] for b in boxes], axis=0)
        hi = np.max([b[1] for b in boxes], axis=0)
        self.sl = grid.box_slices(lo, hi)
        shape = tuple(s.stop - s.start for s in self.sl) if self.sl else (0, 0, 0)
        self.acc = np.zeros(shape, np.float32)

    def add(self, sl, frac) -> None:
        if self.sl is None:
            return
        local = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(sl, self.sl))
        union_into(self.acc, local, frac)

    def paint(self, target: np.ndarray, value, *, only_empty: bool = True) -> None:
        if self.sl is None:
            return
        view = target[self.sl]
        sel = self.acc > 0.5
        if only_empty:
            sel &= view == 0
        view[sel] = value


def _render(scene: _Scene, opts: _Options) -> Phantom:
    grid = scene.grid
    hard = grid.supersampling(opts.supersample_mm)
    soft = grid.supersampling(1.0)
    rng = np.random.default_rng(opts.seed)
    tex_seed = int(rng.integers(2**31))
    noise_rng = np.random.default_rng(rng.integers(2**31))
    hu = np.full(grid.shape, MATERIALS_HU["air"], np.float32)
    _render_torso(hu, grid, scene.torso)
    tex_counter = [0]

    def texture(sl, sd):
        tex_counter[0] += 1
        shape = tuple(s.stop - s.start for s in sl)
        r = np.random.default_rng([tex_seed, tex_counter[0]])
        field_ = r.standard_normal(shape, dtype=np.float32)
        sig = [0.7 / s for s in grid.spacing_mm]
        field_ = ndimage.gaussian_filter(field_, sig, mode="nearest")
        std = float(field_.std()) or 1.0
        return field_ * (sd / std)

    def paint(solid, material, factor=hard, acc=None, inner_material=None, inner_texture=0.0):
        res = grid.fractions(solid, factor)
        if res is None:
            return None
        sl, outer, inner = res
        value = MATERIALS_HU[material] if isinstance(material, str) else material
        composite(hu, sl, outer, value)
        if inner is not None and inner_material is not None:
            val = MATERIALS_HU[inner_material]
            if inner_texture:
                val = val + texture(sl, inner_texture)
            composite(hu, sl, inner, val)
        if acc is not None:
            acc.add(sl, outer)
        return res

    # soft tissue and organs
    cavity = _ZEllipse(0.0, scene.torso["center_y"], scene.torso["a"] - scene.torso["fat"] - scene.torso["wall"],
                       scene.torso["b"] - scene.torso["fat"] - scene.torso["wall"])
    for solid, material in scene.organs:
        if solid == "retroperitoneal":
            spine_y = float(np.mean([m.frame.center[1] for m in scene.vertebrae]))
            solid = Restricted(_ZEllipse(0.0, spine_y - 5.0, 85.0, 55.0), within=cavity)
            _paint_2d(hu, grid, solid, MATERIALS_HU[material])
            continue
        paint(solid, material, soft)
    for s in scene.psoas:
        paint(s, "muscle", soft)
    for s in scene.paraspinal:
        paint(s, "muscle", soft)
    canal_acc = _LocalAcc(grid, scene.canal)
    for s in scene.canal:
        paint(s, "csf", hard, acc=canal_acc)
    for s in scene.cord:
        paint(s, "cord", hard)
    for s in scene.ivc:
        paint(s, "ivc_blood", soft)
    aorta_acc = _LocalAcc(grid, scene.aorta["outer"])
    for s in scene.aorta["outer"]:
        paint(s, "vessel_wall", hard, acc=aorta_acc)
    for s in scene.aorta["lumen"]:
        paint(s, "aortic_blood", hard)
    paint(scene.aorta["patch"], "calcification", hard)
    for s in scene.discs:
        paint(s, "disc_annulus", hard, inner_material="disc_nucleus")
    # bone
    body_labels = np.zeros(grid.shape, np.uint8)
    vert_labels = np.zeros(grid.shape, np.uint8)
    body_fracs = {}
    vert_accs = []
    for m in scene.vertebrae:
        label = Level(m.name).label
        acc = _LocalAcc(grid, [m.body] + m.arch)
        arch_res = []
        for bar in m.arch:
            res = grid.fractions(bar, hard)
            if res is None:
                continue
            composite(hu, res[0], res[1], MATERIALS_HU["cortical_bone"])
            acc.add(res[0], res[1])
            arch_res.append(res)
        res = grid.fractions(m.body, hard)
        sl, outer, inner = res
        composite(hu, sl, outer, MATERIALS_HU["cortical_bone"])
        acc.add(sl, outer)
        for a_sl, _, a_inner in arch_res:
            composite(hu, a_sl, a_inner, MATERIALS_HU["cancellous_arch"] + texture(a_sl, TRABECULAR_TEXTURE_SD_HU))
        composite(hu, sl, inner, MATERIALS_HU["trabecular_bone"] + texture(sl, TRABECULAR_TEXTURE_SD_HU))
        for solid, material in m.lesions:
            r = grid.fractions(solid, hard)
            if r is not None:
                extra = texture(r[0], TRABECULAR_TEXTURE_SD_HU) if material in ("sclerotic", "impaction") else 0.0
                composite(hu, r[0], r[1], MATERIALS_HU[material] + extra)
        body_labels[sl][outer > 0.5] = label
        body_fracs[m.name] = (sl, outer)
        vert_accs.append((acc, label))
    rib_acc = None
    rib_solids = [c for caps in scene.ribs.values() for c in caps]
    if rib_solids:
        rib_acc = _LocalAcc(grid, rib_solids)
        rib_res = [r for r in (grid.fractions(c, hard) for c in rib_solids) if r is not None]
        for sl, outer, _ in rib_res:
            composite(hu, sl, outer, MATERIALS_HU["cortical_bone"])
            rib_acc.add(sl, outer)
        for sl, _, inner in rib_res:
            composite(hu, sl, inner, MATERIALS_HU["rib_marrow"] + texture(sl, TRABECULAR_TEXTURE_SD_HU))
    sacrum_acc = None
    if scene.sacrum_body is not None:
        solids = [scene.sacrum_body] + scene.sacrum_parts
        sacrum_acc = _LocalAcc(grid, solids)
        res_all = [r for r in (grid.fractions(s, hard) for s in solids) if r is not None]
        for sl, outer, _ in res_all:
            composite(hu, sl, outer, MATERIALS_HU["cortical_bone"])
            sacrum_acc.add(sl, outer)
        for sl, _, inner in res_all:
            if inner is not None:
                composite(hu, sl, inner, MATERIALS_HU["cancellous_arch"] + texture(sl, TRABECULAR_TEXTURE_SD_HU))
    # image formation
    if opts.psf_sigma_mm > 0:
        hu = ndimage.gaussian_filter(hu, [opts.psf_sigma_mm / s for s in grid.spacing_mm], mode="nearest")
    if opts.noise_sd_hu > 0:
        noise = noise_rng.standard_normal(grid.shape, dtype=np.float32)
        noise = ndimage.gaussian_filter(noise, (0.0, 0.45, 0.45), mode="wrap")
        noise *= opts.noise_sd_hu / float(noise.std())
        hu += noise
    np.clip(hu, -1024, 3071, out=hu)
    ct_hu = np.rint(hu).astype(np.int16)
    del hu
    # masks
    for acc, label in vert_accs:
        acc.paint(vert_labels, label)
    vert_labels[body_labels > 0] = body_labels[body_labels > 0]
    masks = {"vertebra_labels": vert_labels}
    bone = vert_labels > 0
    for name, acc in (("ribs", rib_acc), ("sacrum", sacrum_acc)):
        mask = np.zeros(grid.shape, bool)
        if acc is not None:
            acc.paint(mask, True, only_empty=False)
            mask &= ~bone
        masks[name] = mask
    aorta = np.zeros(grid.shape, bool)
    aorta_acc.paint(aorta, True, only_empty=False)
    masks["aorta"] = aorta
    canal = np.zeros(grid.shape, bool)
    canal_acc.paint(canal, True, only_empty=False)
    canal &= ~bone & ~masks["sacrum"]
    masks["canal"] = canal
    ct = ct_from_array(ct_hu, spacing_mm=grid.spacing_mm, origin_lps_mm=grid.origin_lps_mm,
                       name="pvp-plan synthetic phantom")
    from pvp_plan.sample_data.truth import build_truth

    truth = build_truth(scene, opts, grid, body_labels, body_fracs, masks, MATERIALS_HU)
    return Phantom(ct=ct, body_labels=body_labels, masks=masks, truth=truth)


def _paint_2d(hu: np.ndarray, grid: Grid, solid, value: float, factor: int = 4) -> None:
    """Blend a z-invariant solid: supersampled in-plane once, applied to every slice."""
    ny, nx = grid.shape[1:]
    sy, sx = grid.spacing_mm[1:]
    yf = grid.origin_lps_mm[1] + ((np.arange(ny * factor) + 0.5) / factor - 0.5) * sy
    xf = grid.origin_lps_mm[0] + ((np.arange(nx * factor) + 0.5) / factor - 0.5) * sx
    inside = solid.inside(xf[None, :], yf[:, None], np.zeros((1, 1)))[0]
    frac = inside.reshape(ny, factor, nx, factor).mean(axis=(1, 3)).astype(np.float32)
    hu += frac[None] * (value - hu)


def _render_torso(hu: np.ndarray, grid: Grid, torso: dict) -> None:
    a, b, yc = torso["a"], torso["b"], torso["center_y"]
    layers = [(0.0, "skin"), (torso["skin"], "fat"), (torso["fat"], "muscle"), (torso["fat"] + torso["wall"], "organ")]
    for inset, material in layers:
        _paint_2d(hu, grid, _ZEllipse(0.0, yc, a - inset, b - inset), MATERIALS_HU[material])
