"""Anatomy tables and the spine layout of the synthetic phantom.

Every vertebra is a rigid body placed on a smooth sagittal centre line. Its own frame
(``u``, ``v``, ``w``) has ``u`` toward the patient's Left (= LPS +x), ``v`` Posterior in the
vertebra's own sagittal plane and ``w`` along the spine's own cranio-caudal axis, pointing
cranially. With curvature the vertebrae are tilted about the x axis, so disc planes are oblique
to the image z axis.

Dimensions follow published morphometry orders of magnitude (Panjabi et al., Spine 1991/1992;
Zindrick et al., Spine 1987 for pedicles); they are plausible, not patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pvp_plan.levels import Level


@dataclass(frozen=True)
class LevelSpec:
    """Nominal dimensions of one vertebra (mm, degrees)."""

    body_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    disc_below_mm: float
    pedicle_width_mm: float
    pedicle_height_mm: float
    pedicle_medial_deg: float  # medial convergence from the vertebra's sagittal plane
    pedicle_caudal_deg: float  # descent of the axis (going anteriorly) from the vertebra's axial plane
    canal_width_mm: float
    canal_depth_mm: float
    transverse_length_mm: float
    spinous_length_mm: float
    spinous_caudal_deg: float
    spinous_height_mm: float


#: Nominal dimensions, cranial to caudal (width, depth, height of the body; disc below; pedicle...).
LEVEL_SPECS: dict[str, LevelSpec] = {
    name: LevelSpec(*values)
    for name, values in {
        "T8": (24.0, 21.0, 19.5, 7.0, 5.5, 13.0, 8.0, 6.0, 16.0, 15.0, 22.0, 35.0, 50.0, 9.0),
        "T9": (25.0, 21.5, 20.0, 7.5, 6.0, 13.0, 9.0, 6.0, 16.5, 15.0, 21.0, 34.0, 45.0, 10.0),
        "T10": (26.0, 22.0, 21.0, 8.0, 6.5, 13.5, 10.0, 6.0, 17.0, 15.5, 19.0, 33.0, 40.0, 11.0),
        "T11": (28.0, 23.0, 22.0, 8.5, 7.5, 14.5, 10.0, 5.0, 18.0, 16.0, 12.0, 30.0, 30.0, 13.0),
        "T12": (30.0, 24.5, 23.0, 9.0, 8.0, 15.0, 11.0, 4.0, 19.5, 16.5, 7.0, 28.0, 20.0, 15.0),
        "L1": (40.0, 30.0, 25.0, 10.0, 8.5, 15.5, 12.0, 2.0, 22.0, 17.0, 20.0, 28.0, 12.0, 17.0),
        "L2": (42.0, 31.0, 26.0, 11.0, 9.0, 15.0, 14.0, 2.0, 23.0, 16.5, 24.0, 28.0, 10.0, 18.0),
        "L3": (45.0, 32.5, 27.0, 11.5, 10.5, 14.5, 16.0, 2.0, 24.0, 16.0, 28.0, 27.0, 8.0, 18.0),
        "L4": (47.0, 34.0, 28.0, 12.0, 12.5, 14.0, 20.0, 2.0, 24.5, 16.0, 24.0, 25.0, 8.0, 17.0),
        "L5": (49.0, 35.0, 27.0, 11.0, 15.0, 13.0, 25.0, 2.0, 26.0, 16.0, 20.0, 20.0, 5.0, 14.0),
    }.items()
}

#: The S1 segment of the sacrum (width, depth, height of its body).
SACRUM_S1 = (50.0, 33.0, 28.0)

DEFAULT_LEVELS = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")


@dataclass(frozen=True)
class Curvature:
    """Sagittal curvature of the rendered column.

    Attributes
    ----------
    lordosis_deg : float
        Angle between the L1 and S1 axes (lumbar lordosis), spread evenly along the arc from the
        L1 centre to the S1 centre; when only part of L1-S1 is rendered, that part bends at the
        same rate.
    kyphosis_deg : float
        Angle over the T10-T12 arc (thoracic kyphosis), spread evenly at the same rate over
        whatever thoracic levels are rendered.
    """

    lordosis_deg: float = 30.0
    kyphosis_deg: float = 8.0

    def __post_init__(self) -> None:
        for name in ("lordosis_deg", "kyphosis_deg"):
            value = float(getattr(self, name))
            if not -60.0 <= value <= 80.0:
                raise ValueError(f"Curvature.{name} must lie in [-60, 80] degrees, got {value}")
            object.__setattr__(self, name, value)


STRAIGHT = Curvature(0.0, 0.0)


@dataclass(frozen=True)
class Frame:
    """A vertebra's own frame: centre (LPS mm) and unit axes u (left), v (posterior), w (cranial)."""

    center: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray

    @classmethod
    def tilted(cls, center: np.ndarray, beta: float) -> Frame:
        """Frame tilted by ``beta`` radians about x (beta > 0: the caudal direction heads posteriorly)."""
        return cls(
            center=np.asarray(center, dtype=float),
            u=np.array([1.0, 0.0, 0.0]),
            v=np.array([0.0, np.cos(beta), np.sin(beta)]),
            w=np.array([0.0, -np.sin(beta), np.cos(beta)]),
        )

    def to_lps(self, uvw: np.ndarray) -> np.ndarray:
        """LPS points (mm) of local (u, v, w) points, shape (3,) or (N, 3)."""
        p = np.asarray(uvw, dtype=float)
        return self.center + p[..., 0:1] * self.u + p[..., 1:2] * self.v + p[..., 2:3] * self.w

    def dir_to_lps(self, uvw: np.ndarray) -> np.ndarray:
        p = np.asarray(uvw, dtype=float)
        return p[..., 0:1] * self.u + p[..., 1:2] * self.v + p[..., 2:3] * self.w

    def local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local (u, v, w) of broadcastable LPS coordinate arrays."""
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        return dx, dy * self.v[1] + dz * self.v[2], dy * self.w[1] + dz * self.w[2]


@dataclass(frozen=True)
class VertebraLayout:
    """Where one vertebra (or the S1 segment) sits: level name, spec and frame."""

    name: str
    spec: LevelSpec
    frame: Frame
    beta_rad: float
    arc_center_mm: float


@dataclass(frozen=True)
class SpineLayout:
    """All placed vertebrae, cranial to caudal, plus S1 when L5 is rendered."""

    vertebrae: tuple[VertebraLayout, ...]
    sacrum: VertebraLayout | None
    curvature: Curvature
    notes: dict = field(default_factory=dict)


def validate_levels(levels: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Parse level names; they must be contiguous, cranial to caudal, within T8-L5."""
    names = tuple(Level.parse(str(v)).value for v in levels)
    order = list(LEVEL_SPECS)
    if not names:
        raise ValueError("levels must name at least one vertebra, e.g. ('T10', ..., 'L5')")
    unknown = [n for n in names if n not in LEVEL_SPECS]
    if unknown:
        raise ValueError(f"levels {unknown} are outside the phantom's range; choose from {', '.join(order)}")
    idx = [order.index(n) for n in names]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise ValueError(f"levels must be contiguous and cranial to caudal, got {list(names)}")
    return names


def _nominal_arc(specs: dict[str, LevelSpec], first: str, last: str) -> float:
    """Arc length (mm) from the centre of ``first`` to the centre of ``last`` (``"S1"`` allowed)."""
    order = list(specs) + ["S1"]
    i0, i1 = order.index(first), order.index(last)
    arc = 0.0
    for name in order[i0:i1]:
        sp = specs[name]
        arc += sp.body_height_mm + sp.disc_below_mm
    first_h = specs[first].body_height_mm
    last_h = SACRUM_S1[2] if last == "S1" else specs[last].body_height_mm
    return arc - first_h / 2 + last_h / 2


def build_layout(levels: tuple[str, ...], curvature: Curvature, specs: dict[str, LevelSpec]) -> SpineLayout:
    """Place the vertebrae along a sagittal centre line with the requested curvature.

    The centre line is integrated along its arc length ``s`` (mm, increasing caudally). The
    caudal direction is ``(0, sin b, -cos b)`` in LPS; lordosis makes ``b`` grow caudally.
    The middle level (L2 for T10-L5) is vertical (``b = 0``) and centred at x = y = 0; z is the
    arc position's projection (the column's top body centre near z = 0, z decreasing caudally).
    """
    names = list(levels)
    with_sacrum = names[-1] == "L5"
    segs = [(n, specs[n]) for n in names]
    # arc position of each body centre
    centers_s = []
    s = 0.0
    for _i, (_, sp) in enumerate(segs):
        s += sp.body_height_mm / 2
        centers_s.append(s)
        s += sp.body_height_mm / 2 + sp.disc_below_mm
    s1_center_s = s + SACRUM_S1[2] / 2 if with_sacrum else None
    kyph_rate = np.deg2rad(curvature.kyphosis_deg) / _nominal_arc(specs, "T10", "T12")
    lord_rate = np.deg2rad(curvature.lordosis_deg) / _nominal_arc(specs, "L1", "S1")
    thoracic = [c for (n, _), c in zip(segs, centers_s, strict=True) if n.startswith("T")]
    lumbar = [c for (n, _), c in zip(segs, centers_s, strict=True) if n.startswith("L")]
    lumbar_end = s1_center_s if with_sacrum else (lumbar[-1] if lumbar else None)

    def curvature_at(sv: np.ndarray) -> np.ndarray:
        k = np.zeros_like(sv)
        if thoracic:
            k = np.where((sv >= thoracic[0]) & (sv < thoracic[-1]), -kyph_rate, k)
        if lumbar and lumbar_end is not None:
            k = np.where((sv >= lumbar[0]) & (sv < lumbar_end), lord_rate, k)
        return k

    end = (s1_center_s or centers_s[-1]) + 40.0
    ds = 0.05
    grid_s = np.arange(0.0, end + ds, ds)
    beta = np.concatenate([[0.0], np.cumsum(curvature_at(grid_s[:-1]) * ds)])
    # make the middle of the column vertical: beta = 0 at the middle body
    mid = centers_s[len(centers_s) // 2]
    beta = beta - np.interp(mid, grid_s, beta)
    step = np.stack([np.zeros_like(beta), np.sin(beta), -np.cos(beta)], axis=1) * ds
    pos = np.concatenate([[np.zeros(3)], np.cumsum(step[:-1], axis=0)])

    def place(name: str, spec: LevelSpec, sc: float) -> VertebraLayout:
        p = np.array([np.interp(sc, grid_s, pos[:, k]) for k in range(3)])
        b = float(np.interp(sc, grid_s, beta))
        return VertebraLayout(name=name, spec=spec, frame=Frame.tilted(p, b), beta_rad=b, arc_center_mm=sc)

    placed = [place(n, sp, c) for (n, sp), c in zip(segs, centers_s, strict=True)]
    sacrum = None
    if with_sacrum:
        w, d, h = SACRUM_S1
        s1_spec = LevelSpec(w, d, h, 0.0, 0.0, 0.0, 0.0, 0.0, 24.0, 13.0, 0.0, 12.0, 10.0, 10.0)
        sacrum = place("S1", s1_spec, s1_center_s)
    # shift: middle body at y = 0, x = 0
    shift = -placed[len(placed) // 2].frame.center.copy()
    shift[2] = 0.0

    def shifted(v: VertebraLayout) -> VertebraLayout:
        f = v.frame
        return VertebraLayout(v.name, v.spec, Frame(f.center + shift, f.u, f.v, f.w), v.beta_rad, v.arc_center_mm)

    return SpineLayout(
        vertebrae=tuple(shifted(v) for v in placed),
        sacrum=shifted(sacrum) if sacrum is not None else None,
        curvature=curvature,
    )
