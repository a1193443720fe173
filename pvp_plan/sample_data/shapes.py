"""Solid primitives of the phantom: inside tests on LPS coordinates.

Each solid has ``bbox()`` (LPS lower and upper corners, mm, conservative) and
``inside(x, y, z)`` taking broadcastable LPS coordinate arrays and returning ``(outer, inner)``
boolean arrays: ``outer`` is the whole solid, ``inner`` the solid minus its cortical shell
(``None`` for solids without a shell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvp_plan.sample_data.anatomy import Frame

_Bool = np.ndarray


def _corners_bbox(points: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    return pts.min(axis=0) - pad, pts.max(axis=0) + pad


def _box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])


@dataclass(frozen=True)
class VertebralBody:
    """A vertebral body: an elliptic cylinder flattened posteriorly, with waist and concave endplates.

    Local frame: ``u`` left, ``v`` posterior, ``w`` cranial, origin at the nominal centre.
    The cross-section is the ellipse centred at ``v = 0.1 D`` with semi-axes ``(a, 0.6 D)``
    clipped at the flat posterior wall ``v = D / 2``; ``a`` narrows by ``waist`` at mid-height.
    Endplates are concave by ``concavity_mm`` at the centre (zero at the anterior and posterior
    mid-sagittal rim). ``wedge_fraction`` lowers the superior endplate anteriorly (posterior wall
    preserved): the anterior height becomes ``(1 - wedge_fraction) * height``.
    """

    frame: Frame
    width_mm: float
    depth_mm: float
    height_mm: float
    cortex_mm: float = 1.0
    endplate_mm: float = 1.0
    concavity_mm: float = 0.8
    waist: float = 0.06
    wedge_fraction: float = 0.0

    def top_w(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Superior endplate position (local w, mm) at (u, v)."""
        a, d, h = self.width_mm / 2, self.depth_mm, self.height_mm
        rho2 = (u / a) ** 2 + (v / (d / 2)) ** 2
        top = h / 2 - self.concavity_mm * np.clip(1.0 - rho2, 0.0, None)
        if self.wedge_fraction:
            top = top - self.wedge_fraction * h * np.clip((d / 2 - v) / d, 0.0, None)
        return top

    def bottom_w(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Inferior endplate position (local w, mm) at (u, v)."""
        a, d, h = self.width_mm / 2, self.depth_mm, self.height_mm
        rho2 = (u / a) ** 2 + (v / (d / 2)) ** 2
        return -h / 2 + self.concavity_mm * np.clip(1.0 - rho2, 0.0, None)

    def in_section(self, u: np.ndarray, v: np.ndarray, w: np.ndarray, shrink: float = 0.0) -> _Bool:
        """Inside the (waisted) cross-section at height w, shrunk inward by ``shrink`` mm."""
        a0, d, h = self.width_mm / 2, self.depth_mm, self.height_mm
        wn = np.clip(2.0 * w / h, -1.0, 1.0)
        a = a0 * (1.0 - self.waist * (1.0 - wn**2)) - shrink
        b = 0.6 * d - shrink
        vc = 0.1 * d
        return ((u / a) ** 2 + ((v - vc) / b) ** 2 <= 1.0) & (v <= d / 2 - shrink)

    def inside_local(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[_Bool, _Bool]:
        top, bot = self.top_w(u, v), self.bottom_w(u, v)
        outer = self.in_section(u, v, w) & (w <= top) & (w >= bot)
        inner = self.in_section(u, v, w, self.cortex_mm) & (w <= top - self.endplate_mm) & (
            w >= bot + self.endplate_mm)
        return outer, inner

    def inside(self, x, y, z) -> tuple[_Bool, _Bool]:
        return self.inside_local(*self.frame.local(x, y, z))

    def local_bbox(self) -> tuple[np.ndarray, np.ndarray]:
        a, d, h = self.width_mm / 2, self.depth_mm, self.height_mm
        return np.array([-a, -d / 2, -h / 2]), np.array([a, d / 2, h / 2])

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.local_bbox()
        return _corners_bbox(self.frame.to_lps(_box_corners(lo, hi)), 1.0)

    def heights_mm(self) -> dict[str, float]:
        """Anterior, middle and posterior heights along the local axis on the mid-sagittal line (rim/centre)."""
        d = self.depth_mm
        out = {}
        for name, v in (("anterior", -d / 2), ("middle", 0.0), ("posterior", d / 2)):
            out[name] = float(self.top_w(np.float64(0.0), np.float64(v)) - self.bottom_w(np.float64(0.0),
                                                                                       np.float64(v)))
        return out


@dataclass(frozen=True)
class Bar:
    """A straight bar from ``p0`` to ``p1`` (LPS mm) with an elliptic cross-section.

    Semi-axes ``r1`` along ``e1`` (unit, perpendicular to the bar) and ``r2`` along
    ``e2 = axis x e1``. The semi-axes grow as ``r + flare * ((t - t0) / half_length)^2`` on
    either side of ``t0`` (the narrowest point, mm from ``p0``), which makes a pedicle's
    isthmus exactly ``2 r1`` wide at ``t0``. ``round_ends`` adds half-ellipsoid caps.
    """

    p0: np.ndarray
    p1: np.ndarray
    e1: np.ndarray
    r1: float
    r2: float
    cortex_mm: float = 1.0
    t0: float = 0.0
    flare0_mm: float = 0.0
    flare1_mm: float = 0.0
    round_ends: bool = False

    def _frame(self):
        axis = np.asarray(self.p1, float) - np.asarray(self.p0, float)
        length = float(np.linalg.norm(axis))
        axis = axis / length
        e1 = np.asarray(self.e1, float)
        e1 = e1 - axis * float(e1 @ axis)
        e1 = e1 / np.linalg.norm(e1)
        e2 = np.cross(axis, e1)
        return axis, e1, e2, length

    def inside(self, x, y, z) -> tuple[_Bool, _Bool]:
        axis, e1, e2, length = self._frame()
        dx, dy, dz = x - self.p0[0], y - self.p0[1], z - self.p0[2]
        t = dx * axis[0] + dy * axis[1] + dz * axis[2]
        q1 = dx * e1[0] + dy * e1[1] + dz * e1[2]
        q2 = dx * e2[0] + dy * e2[1] + dz * e2[2]
        grow = self._grow(t, length)
        r1, r2 = self.r1 + grow, self.r2 + grow
        ell = (q1 / r1) ** 2 + (q2 / r2) ** 2
        ell_in = (q1 / np.maximum(r1 - self.cortex_mm, 0.1)) ** 2 + (q2 / np.maximum(r2 - self.cortex_mm, 0.1)) ** 2
        if self.round_ends:
            rc = min(self.r1, self.r2)
            tt = np.where(t < 0, t, np.where(t > length, t - length, 0.0)) / rc
            outer = ell + tt**2 <= 1.0
            rci = max(rc - self.cortex_mm, 0.1)
            tti = np.where(t < 0, t, np.where(t > length, t - length, 0.0)) / rci
            inner = ell_in + tti**2 <= 1.0
        else:
            in_len = (t >= 0) & (t <= length)
            outer = in_len & (ell <= 1.0)
            inner = in_len & (ell_in <= 1.0)
        return outer, inner

    def _grow(self, t, length):
        if not (self.flare0_mm or self.flare1_mm):
            return 0.0
        t0 = self.t0
        before = np.clip((t0 - t) / max(t0, 1e-6), 0.0, None) ** 2 * self.flare0_mm
        after = np.clip((t - t0) / max(length - t0, 1e-6), 0.0, None) ** 2 * self.flare1_mm
        return before + after

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.r1, self.r2) + max(self.flare0_mm, self.flare1_mm) + 0.5
        return _corners_bbox(np.stack([self.p0, self.p1]), r)


@dataclass(frozen=True)
class Capsule:
    """Points within ``radius`` of the segment ``p0``-``p1`` (LPS mm); ``inner_radius`` for the shell."""

    p0: np.ndarray
    p1: np.ndarray
    radius: float
    inner_radius: float | None = None

    def inside(self, x, y, z) -> tuple[_Bool, _Bool | None]:
        p0 = np.asarray(self.p0, float)
        seg = np.asarray(self.p1, float) - p0
        L2 = float(seg @ seg)
        dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
        t = np.clip((dx * seg[0] + dy * seg[1] + dz * seg[2]) / L2, 0.0, 1.0)
        d2 = (dx - t * seg[0]) ** 2 + (dy - t * seg[1]) ** 2 + (dz - t * seg[2]) ** 2
        outer = d2 <= self.radius**2
        inner = None if self.inner_radius is None else d2 <= self.inner_radius**2
        return outer, inner

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return _corners_bbox(np.stack([self.p0, self.p1]), self.radius + 0.5)


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid with centre (LPS mm), orthonormal axes (rows) and semi-axes (mm); optional shell."""

    center: np.ndarray
    axes: np.ndarray
    radii: tuple[float, float, float]
    cortex_mm: float | None = None

    def inside(self, x, y, z) -> tuple[_Bool, _Bool | None]:
        c = np.asarray(self.center, float)
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        acc = 0.0
        acc_in = 0.0
        for k in range(3):
            ax = self.axes[k]
            q = dx * ax[0] + dy * ax[1] + dz * ax[2]
            acc = acc + (q / self.radii[k]) ** 2
            if self.cortex_mm is not None:
                acc_in = acc_in + (q / max(self.radii[k] - self.cortex_mm, 0.1)) ** 2
        return acc <= 1.0, (acc_in <= 1.0) if self.cortex_mm is not None else None

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        ext = np.sqrt(((np.asarray(self.axes) * np.asarray(self.radii)[:, None]) ** 2).sum(axis=0))
        return np.asarray(self.center) - ext - 0.5, np.asarray(self.center) + ext + 0.5


@dataclass(frozen=True)
class Slab:
    """Region between two planes (points and cranial normals) with a superelliptic cross-section.

    The cross-section is given in ``frame``'s (u, v): ``|(u-u0)/ru|^p + |(v-v0)/rv|^p <= 1``.
    Used to sweep the canal, cord and muscles along the curved spine, one vertebra at a time.
    """

    frame: Frame
    top_point: np.ndarray
    top_normal: np.ndarray
    bottom_point: np.ndarray
    bottom_normal: np.ndarray
    u0: float
    v0: float
    ru: float
    rv: float
    power: float = 2.0
    taper_per_mm: float = 0.0  # ru and rv grow by this fraction per mm of local w (smooth tapers)
    u0_per_mm: float = 0.0  # u0 moves by this many mm per mm of local w

    def inside(self, x, y, z) -> tuple[_Bool, None]:
        u, v, w = self.frame.local(x, y, z)
        if self.taper_per_mm:
            g = 1.0 + self.taper_per_mm * w
            ru, rv = self.ru * np.maximum(g, 0.05), self.rv * np.maximum(g, 0.05)
        else:
            ru, rv = self.ru, self.rv
        u0 = self.u0 + self.u0_per_mm * w if self.u0_per_mm else self.u0
        tp, tn, bp, bn = self.top_point, self.top_normal, self.bottom_point, self.bottom_normal
        below_top = (x - tp[0]) * tn[0] + (y - tp[1]) * tn[1] + (z - tp[2]) * tn[2] <= 0
        above_bot = (x - bp[0]) * bn[0] + (y - bp[1]) * bn[1] + (z - bp[2]) * bn[2] > 0
        sec = np.abs((u - u0) / ru) ** self.power + np.abs((v - self.v0) / rv) ** self.power <= 1.0
        return below_top & above_bot & sec, None

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        f = self.frame
        wt = float((self.top_point - f.center) @ f.w)
        wb = float((self.bottom_point - f.center) @ f.w)
        pad = max(self.ru, self.rv) * 0.3 + 2.0  # tilted planes reach a little beyond
        g = 1.0 + abs(self.taper_per_mm) * max(abs(wt), abs(wb), 1.0) + 0.05
        ru, rv, u0 = self.ru * g, self.rv * g, self.u0
        du = abs(self.u0_per_mm) * (max(abs(wt), abs(wb)) + pad)
        lo = np.array([u0 - ru - du, self.v0 - rv, min(wt, wb) - pad])
        hi = np.array([u0 + ru + du, self.v0 + rv, max(wt, wb) + pad])
        return _corners_bbox(f.to_lps(_box_corners(lo, hi)), 0.5)


@dataclass(frozen=True)
class Disc:
    """An intervertebral disc: fills the gap between two bodies' endplates within an elliptic section.

    ``frame`` is the disc's mid frame; the section uses the mean body dimensions plus ``bulge_mm``.
    ``inner`` is the nucleus (the central part of the section).
    """

    frame: Frame
    upper: VertebralBody
    lower: VertebralBody
    width_mm: float
    depth_mm: float
    half_extent_mm: float
    bulge_mm: float = 0.8

    def inside(self, x, y, z) -> tuple[_Bool, _Bool]:
        u, v, w = self.frame.local(x, y, z)
        a, d = self.width_mm / 2 + self.bulge_mm, self.depth_mm
        b = 0.6 * d + self.bulge_mm
        vc = 0.1 * d
        e = (u / a) ** 2 + ((v - vc) / b) ** 2
        sec = (e <= 1.0) & (v <= d / 2 + self.bulge_mm * 0.5) & (np.abs(w) <= self.half_extent_mm)
        uu, vu, wu = self.upper.frame.local(x, y, z)
        ul, vl, wl = self.lower.frame.local(x, y, z)
        between = (wu < self.upper.bottom_w(uu, vu)) & (wl > self.lower.top_w(ul, vl))
        outer = sec & between
        inner = outer & ((u / (0.55 * a)) ** 2 + ((v - vc + 0.05 * d) / (0.5 * b)) ** 2 <= 1.0)
        return outer, inner

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        a, d = self.width_mm / 2 + self.bulge_mm, self.depth_mm
        lo = np.array([-a, -d / 2 - 1, -self.half_extent_mm])
        hi = np.array([a, d / 2 + 1, self.half_extent_mm])
        return _corners_bbox(self.frame.to_lps(_box_corners(lo, hi)), 1.0)


@dataclass(frozen=True)
class Restricted:
    """``solid`` intersected with another solid's outer region (``within``), optionally excluding one."""

    solid: object
    within: object | None = None
    outside: object | None = None

    def inside(self, x, y, z):
        outer, inner = self.solid.inside(x, y, z)
        keep = np.ones(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=bool)
        if self.within is not None:
            keep &= self.within.inside(x, y, z)[0]
        if self.outside is not None:
            keep &= ~self.outside.inside(x, y, z)[0]
        return outer & keep, (inner & keep) if inner is not None else None

    def bbox(self):
        lo, hi = self.solid.bbox()
        if self.within is not None:
            wlo, whi = self.within.bbox()
            lo, hi = np.maximum(lo, wlo), np.minimum(hi, whi)
        return lo, hi
