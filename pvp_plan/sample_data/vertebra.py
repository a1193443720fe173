"""Solids of one vertebra (body, pedicles, laminae, processes), its ribs, pathology and the sacrum.

All positions are built in the vertebra's own frame (``u`` left, ``v`` posterior, ``w``
cranial; see :mod:`pvp_plan.sample_data.anatomy`) and converted to LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pvp_plan.sample_data.anatomy import Frame, LevelSpec, VertebraLayout
from pvp_plan.sample_data.shapes import Bar, Capsule, Ellipsoid, Restricted, VertebralBody

SIDES = {"left": 1.0, "right": -1.0}


@dataclass(frozen=True)
class PedicleGeometry:
    """A pedicle as rendered: the isthmus (narrowest section) and the axis, exact by construction."""

    side: str
    width_mm: float
    height_mm: float
    isthmus_center_lps_mm: np.ndarray
    axis_lps: np.ndarray  # unit, pointing anteriorly (from the pedicle into the body)
    medial_deg_local: float
    caudal_deg_local: float
    bar: Bar

    def truth(self) -> dict:
        a = self.axis_lps
        horiz = float(np.hypot(a[0], a[1]))
        return {
            "side": self.side,
            "width_mm": round(self.width_mm, 4),
            "height_mm": round(self.height_mm, 4),
            "isthmus_center_lps_mm": [round(float(v), 4) + 0.0 for v in self.isthmus_center_lps_mm],
            "axis_lps": [round(float(v), 6) + 0.0 for v in a],
            "mediolateral_angle_deg": round(float(np.degrees(np.arctan2(abs(a[0]), abs(a[1])))), 4),
            "craniocaudal_angle_deg": round(float(np.degrees(np.arctan2(-a[2], horiz))), 4),
            "mediolateral_angle_deg_local": round(self.medial_deg_local, 4),
            "craniocaudal_angle_deg_local": round(self.caudal_deg_local, 4),
        }


@dataclass
class VertebraModel:
    """Everything rendered for one level."""

    layout: VertebraLayout
    body: VertebralBody
    pedicles: dict[str, PedicleGeometry]
    arch: list = field(default_factory=list)  # Bars (cortex shell + cancellous core)
    ribs: list = field(default_factory=list)  # Capsules
    lesions: list = field(default_factory=list)  # (solid, material, kind)
    superior_facets: dict[str, np.ndarray] = field(default_factory=dict)  # local (u, v) of the SAPs
    transverse: dict[str, Bar] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def frame(self) -> Frame:
        return self.layout.frame


def make_body(layout: VertebraLayout, *, wedge_fraction: float = 0.0) -> VertebralBody:
    sp = layout.spec
    return VertebralBody(frame=layout.frame, width_mm=sp.body_width_mm, depth_mm=sp.body_depth_mm,
                         height_mm=sp.body_height_mm, wedge_fraction=wedge_fraction)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def make_pedicle(layout: VertebraLayout, side: str, width_mm: float) -> PedicleGeometry:
    """Pedicle bar whose isthmus is exactly ``width_mm`` x ``pedicle_height_mm`` at a known centre."""
    sp, f = layout.spec, layout.frame
    s = SIDES[side]
    alpha, gamma = np.deg2rad(sp.pedicle_medial_deg), np.deg2rad(sp.pedicle_caudal_deg)
    d, h = sp.body_depth_mm, sp.body_height_mm
    centre = np.array([s * (sp.canal_width_mm / 2 + width_mm / 2), d / 2 + 0.4 * sp.canal_depth_mm, 0.15 * h])
    axis = np.array([-s * np.sin(alpha) * np.cos(gamma), -np.cos(alpha) * np.cos(gamma), -np.sin(gamma)])
    t_post = 8.0
    t_ant = (centre[1] - d / 2) / (np.cos(alpha) * np.cos(gamma)) + 6.0
    e1 = _unit(np.cross(axis, [0.0, 0.0, 1.0]))  # width direction: in the local axial plane
    bar = Bar(p0=f.to_lps(centre - t_post * axis), p1=f.to_lps(centre + t_ant * axis), e1=f.dir_to_lps(e1),
              r1=width_mm / 2, r2=sp.pedicle_height_mm / 2, cortex_mm=1.0, t0=t_post, flare0_mm=2.0,
              flare1_mm=3.5)
    return PedicleGeometry(side=side, width_mm=width_mm, height_mm=sp.pedicle_height_mm,
                           isthmus_center_lps_mm=f.to_lps(centre), axis_lps=_unit(f.dir_to_lps(axis)),
                           medial_deg_local=sp.pedicle_medial_deg, caudal_deg_local=sp.pedicle_caudal_deg,
                           bar=bar)


def superior_facet_local(spec: LevelSpec, pedicle_width_mm: float, side: str) -> np.ndarray:
    """Local (u, v) of a superior articular process (lateral to the inferior one of the level above)."""
    s = SIDES[side]
    return np.array([s * (spec.canal_width_mm / 2 + pedicle_width_mm / 2 + 4.0),
                     spec.body_depth_mm / 2 + 0.4 * spec.canal_depth_mm + 9.0])


def sacral_facet_local(spec: LevelSpec, side: str) -> np.ndarray:
    """Local (u, v) of a superior articular process of the sacrum (in the S1 frame)."""
    return np.array([SIDES[side] * 21.0, spec.body_depth_mm / 2 + 10.0])


def make_vertebra(layout: VertebraLayout, *, pedicle_width_mm: dict[str, float], wedge_fraction: float,
                  below: VertebraLayout | None, below_facets: dict[str, np.ndarray] | None,
                  disc_above_mm: float, thoracic: bool) -> VertebraModel:
    """Body, pedicles, laminae, spinous and transverse processes and articular processes of one level.

    ``below`` / ``below_facets``: the level underneath and the local (u, v) of its superior articular
    processes, so this level's inferior processes sit just medial to them (a 1.5 mm facet joint).
    """
    sp, f = layout.spec, layout.frame
    h = sp.body_height_mm
    peds = {side: make_pedicle(layout, side, pedicle_width_mm[side]) for side in SIDES}
    model = VertebraModel(layout=layout, body=make_body(layout, wedge_fraction=wedge_fraction), pedicles=peds)
    model.arch.extend(ped.bar for ped in peds.values())
    lam_t = 5.0 if thoracic else 5.5
    w_lam = 0.03 * h
    mid = np.array([0.0, sp.body_depth_mm / 2 + sp.canal_depth_mm + lam_t / 2, w_lam])
    for side, s in SIDES.items():
        p_end = _to_local(f, peds[side].bar.p0)
        model.arch.append(_lamina(f, p_end + np.array([-s * 1.0, 0.5, -0.1 * h]), mid, lam_t, 0.8 * h))
        origin = np.array([s * (sp.canal_width_mm / 2 + pedicle_width_mm[side] + 2.0), p_end[1], 0.15 * h])
        model.transverse[side] = _transverse_process(f, origin, s, sp.transverse_length_mm, thoracic)
        model.arch.append(model.transverse[side])
        sap = superior_facet_local(sp, pedicle_width_mm[side], side)
        model.superior_facets[side] = sap
        # superior articular process: rises from the pedicle-lamina junction above the disc
        model.arch.append(_pillar(f, sap, 0.1 * h, h / 2 + disc_above_mm / 2 + 4.0))
        # inferior articular process: hangs from the lamina, medial to the superior process of the level below
        if below is not None and below_facets is not None:
            nb = below_facets[side]
            iap_v = _to_local(f, below.frame.to_lps([nb[0], nb[1], below.spec.body_height_mm / 2]))[1] + 1.5
            iap = np.array([nb[0] - s * 7.5, iap_v])
        else:
            iap = np.array([sap[0] - s * 7.5, sap[1] + 1.5])
        model.arch.append(_pillar(f, iap, w_lam, -h / 2 - sp.disc_below_mm / 2 - 4.0))
    model.arch.append(_spinous_process(f, mid + np.array([0.0, lam_t / 2 - 1.0, 0.0]), sp, thoracic))
    return model


def _lamina(f: Frame, start: np.ndarray, mid: np.ndarray, thickness: float, height: float) -> Bar:
    """A lamina from the pedicle's posterior end to just past the midline roof of the canal."""
    direction = _unit(mid - start)
    e1 = _unit(np.cross(direction, [0.0, 0.0, 1.0]))
    return Bar(p0=f.to_lps(start), p1=f.to_lps(mid + 2.0 * direction), e1=f.dir_to_lps(e1), r1=thickness / 2,
               r2=height / 2, cortex_mm=1.0)


def _transverse_process(f: Frame, origin: np.ndarray, s: float, length: float, thoracic: bool) -> Bar:
    """Thoracic: rounded, posterolateral and slightly up; lumbar: flat, lateral."""
    if thoracic:
        direction, r_h, r_t = _unit([s * np.cos(np.deg2rad(40)), np.sin(np.deg2rad(40)), 0.12]), 5.0, 4.5
    else:
        direction, r_h, r_t = _unit([s * np.cos(np.deg2rad(12)), np.sin(np.deg2rad(12)), 0.0]), 5.0, 2.5
    return Bar(p0=f.to_lps(origin), p1=f.to_lps(origin + length * direction), e1=f.dir_to_lps([0.0, 0.0, 1.0]),
               r1=r_h, r2=r_t, cortex_mm=1.0, round_ends=True)


def _pillar(f: Frame, uv: np.ndarray, w0: float, w1: float) -> Bar:
    """An articular process: a vertical bar at local (u, v) from w0 to w1 (6 x 10 mm section)."""
    return Bar(p0=f.to_lps([uv[0], uv[1], w0]), p1=f.to_lps([uv[0], uv[1], w1]), e1=f.dir_to_lps([1.0, 0.0, 0.0]),
               r1=3.0, r2=5.0, cortex_mm=1.0, round_ends=True)


def _spinous_process(f: Frame, base: np.ndarray, sp: LevelSpec, thoracic: bool) -> Bar:
    phi = np.deg2rad(sp.spinous_caudal_deg)
    direction = np.array([0.0, np.cos(phi), -np.sin(phi)])
    return Bar(p0=f.to_lps(base), p1=f.to_lps(base + sp.spinous_length_mm * direction),
               e1=f.dir_to_lps([1.0, 0.0, 0.0]), r1=3.0 if thoracic else 3.5, r2=sp.spinous_height_mm / 2,
               cortex_mm=1.0, round_ends=True)


def spinous_tip_lps(model: VertebraModel) -> np.ndarray:
    return np.asarray(model.arch[-1].p1)


def _to_local(f: Frame, p_lps: np.ndarray) -> np.ndarray:
    d = np.asarray(p_lps, float) - f.center
    return np.array([d @ f.u, d @ f.v, d @ f.w])


def body_half_width_at(body: VertebralBody, v: float) -> float:
    """Half-width (mm) of the body's section at endplate level at local depth v."""
    a, d = body.width_mm / 2, body.depth_mm
    q = (v - 0.1 * d) / (0.6 * d)
    return float(a * np.sqrt(max(0.0, 1.0 - q * q)))


def make_ribs(model: VertebraModel, torso: dict, *, length_mm: float) -> list[Capsule]:
    """A rib each side: head at the costovertebral joint, neck, then the shaft around the torso wall."""
    f, sp = model.frame, model.layout.spec
    d, h = sp.body_depth_mm, sp.body_height_mm
    caps: list[Capsule] = []
    r_out, r_in = 4.5, 3.2
    for side, s in SIDES.items():
        v_head = d / 2 - 6.0
        u_head = s * (body_half_width_at(model.body, v_head) + r_out + 1.5)
        head = f.to_lps([u_head, v_head, 0.2 * h])
        tp_tip = np.asarray(model.transverse[side].p1)
        tubercle = tp_tip + f.dir_to_lps([0.0, -6.0, -2.0])
        if abs(tubercle[0] - f.center[0]) < 30.0:
            tubercle = f.to_lps([s * 32.0, d / 2 + 10.0, 0.0])
        pts = [head, tubercle]
        # shaft: along the ellipse (A', B') of the inner torso wall, from the rib angle forward and down
        a_e, yc = torso["rib_a"], torso["center_y"]
        x0 = abs(tubercle[0] - f.center[0]) + 20.0
        theta = float(np.arcsin(min(x0 / a_e, 0.99)))
        b_e = (float(tubercle[1]) + 12.0 - yc) / np.cos(theta)  # the rib angle lies just behind the tubercle
        z = float(tubercle[2]) - 4.0
        travelled = 0.0
        prev = np.array([s * a_e * np.sin(theta), yc + b_e * np.cos(theta), z])
        pts.append(prev)
        step = 0.08
        while travelled < length_mm and theta < np.pi * 0.92:
            theta += step
            p = np.array([s * a_e * np.sin(theta), yc + b_e * np.cos(theta), 0.0])
            seg = float(np.hypot(p[0] - prev[0], p[1] - prev[1]))
            travelled += seg
            p[2] = prev[2] - 0.35 * seg
            pts.append(p)
            prev = p
        for p0, p1 in zip(pts[:-1], pts[1:], strict=True):
            caps.append(Capsule(p0=np.asarray(p0), p1=np.asarray(p1), radius=r_out, inner_radius=r_in))
    return caps


def make_sacrum(layout: VertebraLayout) -> tuple[VertebralBody, list]:
    """S1 body plus alae, the lower sacrum, the dorsal plate and the superior articular processes."""
    f, sp = layout.frame, layout.spec
    w, d, h = sp.body_width_mm, sp.body_depth_mm, sp.body_height_mm
    s1 = VertebralBody(frame=f, width_mm=w, depth_mm=d, height_mm=h, concavity_mm=0.5, waist=0.0)
    parts: list = []
    axes = np.stack([f.u, f.v, f.w])
    for s in (1.0, -1.0):
        # ala: a wing reaching laterally and back from the S1 body, then the lateral mass below it
        wing = np.stack([_unit([s * np.cos(0.35), np.sin(0.35), 0.0]), _unit([-s * np.sin(0.35), np.cos(0.35), 0.0]),
                         [0.0, 0.0, 1.0]])
        parts.append(Ellipsoid(center=f.to_lps([s * (w / 2 + 8.0), 7.0, 1.0]), axes=f.dir_to_lps(wing),
                               radii=(24.0, 11.0, 13.0), cortex_mm=1.0))
        parts.append(Ellipsoid(center=f.to_lps([s * (w / 2 + 2.0), 8.0, -h / 2 - 12.0]), axes=axes,
                               radii=(16.0, 12.0, 22.0), cortex_mm=1.0))
        # sacral lamina: closes the sacral canal between the lateral mass and the dorsal plate
        lam_dir = _unit([-s * 0.6, 0.8, 0.0])
        parts.append(Bar(p0=f.to_lps([s * 16.0, d / 2 + 9.0, h / 2 - 3.0]), p1=f.to_lps([s * 16.0, d / 2 + 9.0, -h / 2 - 45.0]),
                         e1=f.dir_to_lps(lam_dir), r1=9.0, r2=3.5, cortex_mm=1.0, round_ends=True))
        sap = sacral_facet_local(sp, "left" if s > 0 else "right")
        parts.append(Bar(p0=f.to_lps([sap[0], sap[1], 0.0]), p1=f.to_lps([sap[0], sap[1], h / 2 + 9.0]),
                         e1=f.dir_to_lps([1.0, 0.0, 0.0]), r1=3.0, r2=5.5, cortex_mm=1.0, round_ends=True))
    # lower sacrum (S2-S4) curving posteriorly
    tilt = np.deg2rad(25.0)
    down = np.array([0.0, np.sin(tilt), -np.cos(tilt)])
    start = np.array([0.0, 0.0, -h / 2 + 2.0])
    parts.append(Bar(p0=f.to_lps(start), p1=f.to_lps(start + 60.0 * down), e1=f.u, r1=w / 2 - 6.0,
                     r2=d / 2 - 3.0, cortex_mm=1.0, t0=0.0, flare1_mm=-7.0, round_ends=True))
    # dorsal plate behind the sacral canal
    parts.append(Bar(p0=f.to_lps([0.0, d / 2 + 17.0, h / 2 - 4.0]), p1=f.to_lps([0.0, d / 2 + 24.0, -h / 2 - 50.0]),
                     e1=f.u, r1=20.0, r2=4.0, cortex_mm=1.0, round_ends=True))
    return s1, parts


def pathology_solids(model: VertebraModel, kind: str, params: dict) -> tuple[list, dict]:
    """Solids (with material names) of a planted lesion and its truth description."""
    f, body = model.frame, model.body
    axes = np.stack([f.u, f.v, f.w])
    a, d, h = body.width_mm / 2, body.depth_mm, body.height_mm
    if kind == "wedge":
        band = EndplateBand(body=body, depth_mm=3.0)
        return [(band, "impaction")], {"impaction_band_mm": 3.0}
    if kind == "lytic":
        r = params["diameter_mm"] / 2
        ang = np.deg2rad(params["angle_from_anterior_deg"]) * (1 if params["side"] == "left" else -1)
        direction = np.array([np.sin(ang), -np.cos(ang), 0.0])
        edge = _section_edge(body, direction)
        centre_local = edge * direction - (r - params["cortex_breach_depth_mm"]) * direction
        centre = f.to_lps(centre_local)
        sphere = Ellipsoid(center=centre, axes=axes, radii=(r, r, r))
        return [(Restricted(sphere, within=body), "lytic")], {"center_lps_mm": _r(centre),
                                                             "center_local_mm": _r(centre_local)}
    if kind == "sclerotic":
        frac = params["extent_fraction"]
        centre = f.to_lps([0.0, 0.05 * d, 0.0])
        ell = Ellipsoid(center=centre, axes=axes, radii=(frac * a, frac * 0.55 * d, frac * h / 2))
        return [(Restricted(ell, within=InnerOf(body)), "sclerotic")], {"center_lps_mm": _r(centre)}
    if kind == "posterior_wall_breach":
        s = 1.0 if params["side"].startswith("left") else -1.0
        uc = s * params["lateral_offset_mm"]
        breach = Breach(frame=f, u0=uc, v0=d / 2, w0=params["center_w_mm"], half_width=params["width_mm"] / 2,
                        depth_in=params["depth_into_body_mm"], protrusion=params["protrusion_mm"],
                        half_height=params["craniocaudal_extent_mm"] / 2)
        centre = f.to_lps([uc, d / 2, params["center_w_mm"]])
        half_z = params["craniocaudal_extent_mm"] / 2 * abs(f.w[2])
        return [(breach, "breach")], {
            "center_lps_mm": _r(centre),
            "lateral_range_mm": [round(uc - params["width_mm"] / 2, 3), round(uc + params["width_mm"] / 2, 3)],
            "wall_gap_z_range_lps_mm": [round(float(centre[2] - half_z), 3), round(float(centre[2] + half_z), 3)],
        }
    raise ValueError(f"unknown pathology {kind!r}")


def _section_edge(body: VertebralBody, direction: np.ndarray) -> float:
    lo, hi = 0.0, body.width_mm
    for _ in range(50):
        m = (lo + hi) / 2
        p = m * direction
        if body.in_section(np.float64(p[0]), np.float64(p[1]), np.float64(0.0)):
            lo = m
        else:
            hi = m
    return lo


def _r(v) -> list[float]:
    return [round(float(x), 4) + 0.0 for x in v]


@dataclass(frozen=True)
class InnerOf:
    """The inner (trabecular) region of a shelled solid, as an ``outer``-only solid."""

    solid: object

    def inside(self, x, y, z):
        return self.solid.inside(x, y, z)[1], None

    def bbox(self):
        return self.solid.bbox()


@dataclass(frozen=True)
class EndplateBand:
    """Impacted (sclerotic) trabecular band under a collapsed superior endplate, anterior two thirds."""

    body: VertebralBody
    depth_mm: float

    def inside(self, x, y, z):
        u, v, w = self.body.frame.local(x, y, z)
        _, inner = self.body.inside_local(u, v, w)
        top = self.body.top_w(u, v) - self.body.endplate_mm
        return inner & (w >= top - self.depth_mm) & (v <= self.body.depth_mm / 6), None

    def bbox(self):
        return self.body.bbox()


@dataclass(frozen=True)
class Breach:
    """Posterior wall breach: soft tissue replacing the wall and bulging into the canal.

    Two half-ellipsoids centred on the posterior wall (local ``v0 = D / 2``): ``depth_in`` into
    the body, ``protrusion`` into the canal; ``half_width`` along u, ``half_height`` along w.
    """

    frame: Frame
    u0: float
    v0: float
    w0: float
    half_width: float
    depth_in: float
    protrusion: float
    half_height: float

    def inside(self, x, y, z):
        u, v, w = self.frame.local(x, y, z)
        dv = v - self.v0
        rv = np.where(dv < 0, self.depth_in, self.protrusion)
        q = ((u - self.u0) / self.half_width) ** 2 + (dv / rv) ** 2 + ((w - self.w0) / self.half_height) ** 2
        return q <= 1.0, None

    def bbox(self):
        f = self.frame
        r = max(self.half_width, self.depth_in, self.protrusion, self.half_height) + 1.0
        c = f.to_lps([self.u0, self.v0, self.w0])
        return c - r, c + r
