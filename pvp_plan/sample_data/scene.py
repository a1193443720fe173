"""The scene of the phantom: every solid (bones, discs, canal, vessels, muscles, organs) placed in LPS.

Built from the spine layout (:mod:`pvp_plan.sample_data.anatomy`) and the vertebra solids
(:mod:`pvp_plan.sample_data.vertebra`); no voxels here (see :mod:`pvp_plan.sample_data.paint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pvp_plan.sample_data.anatomy import LEVEL_SPECS, Frame, SpineLayout, build_layout
from pvp_plan.sample_data.render import Grid
from pvp_plan.sample_data.shapes import Capsule, Disc, Ellipsoid, Restricted, Slab, VertebralBody
from pvp_plan.sample_data.vertebra import (
    VertebraModel,
    make_ribs,
    make_sacrum,
    make_vertebra,
    pathology_solids,
    sacral_facet_local,
    spinous_tip_lps,
    superior_facet_local,
)

#: Air kept behind the posterior skin when the field of view is cropped (mm).
POSTERIOR_AIR_MM = 8.0

#: Psoas radius (mm) at each level's centre.
PSOAS_RADIUS_MM = {"T12": 4.0, "L1": 7.0, "L2": 10.5, "L3": 14.0, "L4": 17.5, "L5": 20.0, "S1": 21.0}
#: Psoas centre depth as a fraction of the body depth (negative: anterior); it moves forward caudally.
PSOAS_DEPTH_FRACTION = {"L4": -0.05, "L5": -0.2, "S1": -0.45}


@dataclass
class Scene:
    """Every solid of the phantom, in LPS millimetres, and the CT grid it is rendered on."""

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


def build_scene(opts) -> Scene:
    """Place every structure for the validated options of :func:`pvp_plan.sample_data.generate_phantom`."""
    layout = build_layout(opts.levels, opts.curvature, LEVEL_SPECS)
    models = _vertebrae(layout, opts)
    path_truth = _plant_pathology(models, opts.pathology)
    sacrum_body, sacrum_parts = make_sacrum(layout.sacrum) if layout.sacrum is not None else (None, [])
    bodies = [m.body for m in models] + ([sacrum_body] if sacrum_body is not None else [])
    discs = [_disc(up, lo) for up, lo in zip(bodies[:-1], bodies[1:], strict=True)]
    torso = _torso(models)
    grid = _grid(opts, models, sacrum_body, torso)
    cavity = ZEllipse(0.0, torso["center_y"], torso["a"] - torso["fat"] - torso["wall"],
                      torso["b"] - torso["fat"] - torso["wall"])
    canal, cord, psoas, paraspinal = _slabs(layout, models, bodies, torso)
    ribs = {m.name: make_ribs(m, torso, length_mm={"T12": 110.0, "T11": 170.0}.get(m.name, 320.0))
            for m in models if m.name.startswith("T")}
    return Scene(layout, models, sacrum_body, sacrum_parts, discs, canal, cord, psoas, paraspinal, ribs,
                 _aorta(models, opts, grid), _ivc(models), torso, _organs(models, torso, cavity), grid, path_truth)


def _vertebrae(layout: SpineLayout, opts) -> list[VertebraModel]:
    """Vertebra solids, built caudal to cranial so each level knows the superior facets of the one below."""
    lay = list(layout.vertebrae)
    models: list[VertebraModel | None] = [None] * len(lay)
    below, below_facets = None, None
    if layout.sacrum is not None:
        below = layout.sacrum
        below_facets = {side: sacral_facet_local(layout.sacrum.spec, side) for side in ("left", "right")}
    for i in range(len(lay) - 1, -1, -1):
        v = lay[i]
        width = opts.narrow_pedicle_width_mm if v.name == opts.narrow_pedicle_level else v.spec.pedicle_width_mm
        p = opts.pathology.get(v.name)
        wedge = p["anterior_height_loss_fraction"] if p and p["type"] == "wedge" else 0.0
        disc_above = lay[i - 1].spec.disc_below_mm if i > 0 else 8.0
        models[i] = make_vertebra(v, pedicle_width_mm={"left": width, "right": width}, wedge_fraction=wedge,
                                  below=below, below_facets=below_facets, disc_above_mm=disc_above,
                                  thoracic=v.name.startswith("T"))
        below, below_facets = v, {side: superior_facet_local(v.spec, width, side) for side in ("left", "right")}
    return [m for m in models if m is not None]


def _plant_pathology(models: list[VertebraModel], pathology: dict[str, dict]) -> dict:
    """Add the lesion solids to their vertebrae; return the truth description per level."""
    truth = {}
    for m in models:
        p = pathology.get(m.name)
        if p:
            params = {k: v for k, v in p.items() if k != "type"}
            solids, info = pathology_solids(m, p["type"], params)
            m.lesions.extend(solids)
            truth[m.name] = {"type": p["type"], **params, **info}
    return truth


def _slabs(layout: SpineLayout, models: list[VertebraModel], bodies: list[VertebralBody], torso: dict):
    """Canal, cord, psoas and paraspinal muscles swept along the curved column, one level at a time."""
    frames = [b.frame for b in bodies]
    specs = [m.layout.spec for m in models] + ([layout.sacrum.spec] if layout.sacrum is not None else [])
    names = [m.name for m in models] + (["S1"] if layout.sacrum is not None else [])
    planes = _cut_planes(bodies)
    psoas_u0 = [sp.body_width_mm / 2 + 0.75 * PSOAS_RADIUS_MM.get(n, 0.0) for n, sp in zip(names, specs, strict=True)]
    canal, cord, psoas, paraspinal = [], [], [], []
    for i, (f, sp) in enumerate(zip(frames, specs, strict=True)):
        top, bot = planes[i], planes[i + 1]
        d = sp.body_depth_mm
        canal.append(Slab(f, *top, *bot, u0=0.0, v0=d / 2 + sp.canal_depth_mm / 2, ru=sp.canal_width_mm / 2,
                          rv=sp.canal_depth_mm / 2, power=2.2))
        if names[i].startswith("T") or names[i] == "L1":  # the cord ends (conus) at L1
            cord.append(Slab(f, *top, *bot, u0=0.0, v0=d / 2 + sp.canal_depth_mm * 0.45, ru=4.5, rv=4.0))
        rp = PSOAS_RADIUS_MM.get(names[i])
        # psoas radius and centre interpolated between neighbouring levels (no steps at the discs)
        j0, j1 = max(i - 1, 0), min(i + 1, len(specs) - 1)
        r_up = PSOAS_RADIUS_MM.get(names[j0]) or (rp or 0.0) - 3.5
        r_dn = PSOAS_RADIUS_MM.get(names[j1]) or (rp or 0.0) + 3.5
        span = max(j1 - j0, 1) * (sp.body_height_mm + sp.disc_below_mm)
        for s in (1.0, -1.0):
            if rp:
                v0 = PSOAS_DEPTH_FRACTION.get(names[i], 0.05) * d
                psoas.append(Slab(f, *top, *bot, u0=s * psoas_u0[i], v0=v0, ru=rp, rv=0.85 * rp,
                                  taper_per_mm=(r_up - r_dn) / span / rp,
                                  u0_per_mm=s * (psoas_u0[j0] - psoas_u0[j1]) / span))
            muscle = Slab(f, *top, *bot, u0=s * 36.0, v0=d / 2 + sp.canal_depth_mm + 20.0, ru=23.0, rv=21.0,
                          power=2.3)
            paraspinal.append(Restricted(muscle, within=cavity_wall_inner(torso)))
    return canal, cord, psoas, paraspinal


@dataclass(frozen=True)
class ZEllipse:
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


def cavity_wall_inner(torso: dict) -> ZEllipse:
    """Inside the subcutaneous fat (muscle wall and deeper)."""
    return ZEllipse(0.0, torso["center_y"], torso["a"] - torso["fat"], torso["b"] - torso["fat"])


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
    for up, lo in zip(bodies[:-1], bodies[1:], strict=True):
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


def _grid(opts, models: list[VertebraModel], sacrum_body, torso: dict) -> Grid:
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


def _aorta(models: list[VertebraModel], opts, grid: Grid) -> dict:
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
    return [Capsule(p0, p1, r) for p0, p1 in zip(pts[:-1], pts[1:], strict=True)]


def _organs(models: list[VertebraModel], torso: dict, cavity: ZEllipse) -> list:
    """Bowel loops, liver, kidneys and lung bases as (solid, material), in painting order."""
    by_name = {m.name: m for m in models}
    eye = np.eye(3)
    yc = torso["center_y"]
    out = _bowel(models, torso, cavity)
    ref = by_name.get("T12") or models[0]
    z_ref = float(ref.frame.center[2])
    spine_y = float(np.mean([m.frame.center[1] for m in models]))
    liver = Ellipsoid(np.array([-80.0, spine_y - 25.0, z_ref + 25.0]), eye, (80.0, 75.0, 105.0))
    out.append((Restricted(liver, within=cavity, outside=ZEllipse(0.0, spine_y, 42.0, 50.0)), "liver"))
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
            ring = ZEllipse(0.0, yc, torso["rib_a"] - 5.0, torso["b"] - torso["fat"] - 22.0)
            out.append((Restricted(Ellipsoid(c, eye, (42.0, 42.0, 70.0)), within=ring), "lung"))
    return out


#: Seed of the bowel layout: fixed, so the geometry never depends on the user's seed.
_BOWEL_LAYOUT_SEED = 20261121


def _bowel(models: list[VertebraModel], torso: dict, cavity: ZEllipse) -> list:
    """Bowel loops in the anterior abdomen: wall, fluid content and gas above an air-fluid level."""
    rng = np.random.default_rng(_BOWEL_LAYOUT_SEED)
    lumbar = [m for m in models if m.name.startswith("L")] or models
    z_hi, z_lo = float(lumbar[0].frame.center[2]) + 20.0, float(lumbar[-1].frame.center[2]) - 30.0
    spine_y = float(np.mean([m.frame.center[1] for m in models]))
    yc, b = torso["center_y"], cavity.b
    walls, lumens, gas = [], [], []
    for _ in range(40):
        r = float(rng.uniform(9.0, 16.0))
        p = np.array([rng.uniform(-95, 95), rng.uniform(yc - 0.75 * b, spine_y - 60.0), rng.uniform(z_lo, z_hi)])
        level = float(rng.uniform(-0.6, 0.2)) * r  # air-fluid level, anterior (smaller y) part is gas
        for _ in range(5):
            q = p + np.array([rng.normal(0, 22), rng.normal(0, 8), rng.normal(0, 22)])
            q[1] = min(q[1], spine_y - 55.0)
            walls.append(Restricted(Capsule(p, q, r), within=cavity))
            lumens.append(Restricted(Capsule(p, q, r - 2.5), within=cavity))
            if level > -0.3 * r:
                gas.append(_GasAbove(Capsule(p, q, r - 2.5), level))
            p = q
    return ([(w, "bowel_wall") for w in walls] + [(lu, "bowel_fluid") for lu in lumens]
            + [(g, "bowel_gas") for g in gas])


@dataclass(frozen=True)
class _GasAbove:
    """The part of a bowel lumen anterior to its air-fluid level (supine: gas rises anteriorly)."""

    lumen: Capsule
    level: float

    def inside(self, x, y, z):
        outer, _ = self.lumen.inside(x, y, z)
        p0, p1 = self.lumen.p0, self.lumen.p1
        seg = p1 - p0
        t = np.clip(((x - p0[0]) * seg[0] + (y - p0[1]) * seg[1] + (z - p0[2]) * seg[2]) / float(seg @ seg), 0, 1)
        return outer & (y - (p0[1] + t * seg[1]) < self.level), None

    def bbox(self):
        return self.lumen.bbox()
