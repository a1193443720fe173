"""Find the pedicles of a level on the CT and measure their isthmus (issue 5).

The segmentation labels bodies only, so the posterior elements are found on the CT around each body
(:func:`level_bone`):

1. an adaptive bone threshold per level, ``BONE_EDGE_FRACTION`` of the way from the local soft tissue
   (median HU behind the body) to the local cortex (90th percentile of the bone HU there): at 3 mm the
   pedicle cortex reads 300-800 HU and its cancellous core may read like soft tissue;
2. the cortical shells closed (a ~2 mm closing) and, per axial slice, the holes they enclose filled,
   except the spinal canal: the hole behind the body's posterior wall at the midline. Where the ring is
   open (between the pedicles of two levels), the canal is the non-bone region there, bounded by the
   canal found in the closed slices.

:func:`find_pedicle` then takes, in coronal sections between the body's posterior wall and the back of
the canal, the filled bone next to the canal; their centres give a first pedicle axis. Sections
perpendicular to the axis are then sampled every 0.5 mm; their centres refine the axis, and the
isthmus is the section of smallest mediolateral width. Widths and heights are read, cortex included,
on interpolated (cubic) HU profiles through the section centre: each outer edge is the steepest fall
of HU near the filled section's border, a sub-voxel edge that holds for a thin cortex at 0.8 mm and
at 3 mm voxels alike. Frames: arrays (z, y, x), points LPS (x, y, z) mm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.io.ct_volume import CTVolume

logger = logging.getLogger(__name__)

SIDE_SIGN = {"left": 1.0, "right": -1.0}  # LPS x grows toward the patient's left
#: Bone threshold of a level: this fraction of the way from the local soft-tissue HU to the local cortex HU.
BONE_EDGE_FRACTION = 0.4
#: Never threshold bone below this (HU), whatever the local contrast.
MIN_BONE_HU = 150.0
_CLOSING_RADIUS_MM = 2.0  # closes a pedicle's cortical ring whose core reads like soft tissue
_MAX_FILLED_HOLE_MM2 = 400.0  # holes filled as cancellous bone (pedicle and arch cores); the canal stays open
_STEP_MM = 0.25  # in-plane sampling of perpendicular sections
_PROFILE_STEP_MM = 0.1  # sampling of the HU profiles that give widths and heights
_HALF_MM = 15.0
_RING_MARGIN_MM = 6.0  # pedicle slices: those where the ring is closed, and this margin
_STATION_MM = 0.5


@dataclass(frozen=True)
class BodyFrame:
    """Landmarks of one body on its CT (index space and LPS)."""

    z_range: tuple[int, int]
    midline_x: float  # index
    posterior_wall_y: float  # index
    anterior_wall_y: float  # index
    centroid_lps_mm: np.ndarray


@dataclass(frozen=True)
class LevelBone:
    """Bone and spinal canal around one level, on a box of the CT grid.

    Arrays are (z, y, x) on the box whose first voxel is ``origin_index`` of the CT grid.
    """

    origin_index: np.ndarray  # (z, y, x)
    soft_tissue_hu: float
    cortex_hu: float
    bone_hu: float
    adaptive: bool
    filled: np.ndarray  # bool: bone, cortical shells closed, enclosed holes filled, canal excluded
    canal: np.ndarray  # bool
    ring_closed: np.ndarray  # bool per box slice (z): the canal is a hole enclosed by bone there
    body: np.ndarray  # bool
    hu_spline: np.ndarray  # float32 cubic B-spline coefficients of the HU in the box

    def sample(self, ct: CTVolume, pts_lps: np.ndarray, array: np.ndarray, *, order: int = 1,
               cval: float = 0.0) -> np.ndarray:
        """Samples of a box array at LPS points (``cval`` outside the box)."""
        idx = (ct.lps_to_index(np.asarray(pts_lps, float).reshape(-1, 3)) - self.origin_index).T
        return ndimage.map_coordinates(array.astype(np.float32, copy=False), idx, order=order, cval=cval)

    def hu_cubic(self, ct: CTVolume, pts_lps: np.ndarray) -> np.ndarray:
        """Cubic-spline HU at LPS points (soft-tissue HU outside the box)."""
        idx = (ct.lps_to_index(np.asarray(pts_lps, float).reshape(-1, 3)) - self.origin_index).T
        return ndimage.map_coordinates(self.hu_spline, idx, order=3, prefilter=False, cval=self.soft_tissue_hu)

    def describe_threshold(self) -> str:
        if not self.adaptive:
            return f"bone > {self.bone_hu:.0f} HU (set by the caller)"
        return (f"bone > {self.bone_hu:.0f} HU ({BONE_EDGE_FRACTION:.0%} of the way from the local soft tissue, "
                f"{self.soft_tissue_hu:.0f} HU, to the local cortex, {self.cortex_hu:.0f} HU)")


@dataclass(frozen=True)
class PedicleFit:
    side: str
    width_mm: float
    height_mm: float
    center_lps_mm: np.ndarray
    axis_lps: np.ndarray  # unit, pointing anteriorly into the body
    lateral_lps: np.ndarray  # unit, in-plane mediolateral direction pointing laterally
    cranial_lps: np.ndarray  # unit, in-plane cranio-caudal direction pointing cranially


def body_frame(ct: CTVolume, body: np.ndarray) -> BodyFrame:
    """Posterior / anterior wall and midline of a body mask (index space)."""
    idx = np.argwhere(body)
    zc, _, xc = idx.mean(axis=0)
    half_x = max(1, int(round(4.0 / ct.spacing_mm[2])))
    near = idx[(np.abs(idx[:, 2] - xc) <= half_x) & (np.abs(idx[:, 0] - zc) <= max(1, 4.0 / ct.spacing_mm[0]))]
    near = near if len(near) else idx
    return BodyFrame(z_range=(int(idx[:, 0].min()), int(idx[:, 0].max())), midline_x=float(xc),
                     posterior_wall_y=float(near[:, 1].max()), anterior_wall_y=float(near[:, 1].min()),
                     centroid_lps_mm=ct.index_to_lps(idx.mean(axis=0)))


def level_bone(ct: CTVolume, body: np.ndarray, frame: BodyFrame, *, bone_hu: float | None = None) -> LevelBone:
    """Filled bone and spinal canal around one body (method in the module docstring).

    Parameters
    ----------
    ct : CTVolume
    body : np.ndarray
        bool (z, y, x) mask of the body on ``ct``'s grid.
    frame : BodyFrame
    bone_hu : float, optional
        Fixed bone threshold in HU; None (default) for the adaptive threshold of the level.
    """
    sp = np.asarray(ct.spacing_mm, float)
    z0, z1 = frame.z_range
    lo = np.array([z0 - 5.0 / sp[0], frame.anterior_wall_y - 5.0 / sp[1], frame.midline_x - 55.0 / sp[2]])
    hi = np.array([z1 + 5.0 / sp[0], frame.posterior_wall_y + 60.0 / sp[1], frame.midline_x + 55.0 / sp[2]])
    lo = np.maximum(np.floor(lo), 0).astype(int)
    hi = np.minimum(np.ceil(hi).astype(int) + 1, ct.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    hu = ct.hu[box].astype(np.float32)
    body_b = body[box].astype(bool)
    xm, ypw = frame.midline_x - lo[2], frame.posterior_wall_y - lo[1]
    soft, cortex = _local_contrast(hu[:, int(np.ceil(ypw)) + 1:])
    thr = max(MIN_BONE_HU, soft + BONE_EDGE_FRACTION * (cortex - soft)) if bone_hu is None else float(bone_hu)
    r = np.maximum(1, np.round(_CLOSING_RADIUS_MM / sp)).astype(int)
    g = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    ball = sum((gi / ri) ** 2 for gi, ri in zip(g, r, strict=True)) <= 1.0
    bone = ndimage.binary_closing(np.pad(hu > thr, [(ri, ri) for ri in r]), ball)
    bone = bone[tuple(slice(ri, -ri) for ri in r)]
    filled, canal, closed = _fill_and_canal(bone, body_b, xm=xm, ypw=ypw, spacing_mm=sp)
    return LevelBone(origin_index=lo.astype(float), soft_tissue_hu=soft, cortex_hu=cortex, bone_hu=thr,
                     adaptive=bone_hu is None, filled=filled, canal=canal, ring_closed=closed, body=body_b,
                     hu_spline=ndimage.spline_filter(hu, order=3).astype(np.float32))


def _local_contrast(hu_posterior: np.ndarray) -> tuple[float, float]:
    """(soft-tissue HU, cortex HU) behind the body: median of [-200, 150] HU, 90th percentile above 150 HU."""
    v = hu_posterior.ravel()
    soft_v, bone_v = v[(v > -200) & (v < 150)], v[v >= 150]
    soft = float(np.median(soft_v)) if soft_v.size else 40.0
    cortex = float(np.percentile(bone_v, 90)) if bone_v.size >= 20 else soft + 500.0
    return soft, cortex


def _fill_and_canal(bone, body, *, xm, ypw, spacing_mm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per axial slice: holes of the bone ring filled, except the canal (hole at the midline behind the body)."""
    sp = spacing_mm
    filled, canal = bone & ~body, np.zeros_like(bone)
    ix = int(round(xm))
    ya, yb = int(np.ceil(ypw)) + 1, int(np.ceil(ypw + 20.0 / sp[1])) + 1
    open_slices = []
    for z in range(bone.shape[0]):
        solid = bone[z] | body[z]
        holes = ndimage.binary_fill_holes(solid) & ~solid
        lab, n = ndimage.label(holes)
        k = 0
        if n:
            on_mid = np.unique(lab[ya:yb, max(ix - 1, 0):ix + 2])
            on_mid = on_mid[on_mid > 0]
            if len(on_mid):
                k = int(on_mid[np.argmax(ndimage.sum(holes, lab, on_mid))])
            areas = np.asarray(ndimage.sum(holes, lab, range(1, n + 1))) * sp[1] * sp[2]
            small = np.isin(lab, 1 + np.nonzero(areas <= _MAX_FILLED_HOLE_MM2)[0]) & (lab != k)
            filled[z] |= small & ~body[z]
        if k:
            canal[z] = lab == k
        else:
            open_slices.append(z)
    closed = canal.any(axis=(1, 2))
    if open_slices:
        _open_canal(canal, bone | body, open_slices, ix=ix, ya=ya, spacing_mm=sp)
    return filled, canal, closed


def _open_canal(canal, solid, slices, *, ix, ya, spacing_mm) -> None:
    """Canal in slices where the ring is open: the nearest closed slice's canal, less this slice's bone.

    Without any closed slice: the non-bone region at the midline within 10 mm of it and 18 mm behind the body.
    """
    closed = np.nonzero(canal.any(axis=(1, 2)))[0]
    for z in slices:
        if len(closed):
            canal[z] = canal[closed[np.argmin(np.abs(closed - z))]] & ~solid[z]
            continue
        y_lo, y_hi = ya, ya + int(round(18.0 / spacing_mm[1]))
        x_lo = max(ix - int(round(10.0 / spacing_mm[2])), 0)
        x_hi = ix + int(round(10.0 / spacing_mm[2])) + 1
        lab, n = ndimage.label(~solid[z, y_lo:y_hi, x_lo:x_hi])
        on_mid = np.unique(lab[:, max(ix - x_lo - 1, 0):ix - x_lo + 2])
        on_mid = on_mid[on_mid > 0]
        if n and len(on_mid):
            canal[z, y_lo:y_hi, x_lo:x_hi] = np.isin(lab, on_mid)


def find_pedicle(ct: CTVolume, lb: LevelBone, frame: BodyFrame, side: str) -> PedicleFit | None:
    """Fit the pedicle axis from coronal sections, then measure sections perpendicular to it.

    In each coronal section the pedicle is first taken as the filled bone nearest the canal (so a rib or
    a transverse process is not mistaken for it); when that gives nothing, as the largest bone section.
    """
    for pick in ("canal", "nearest", "largest"):
        pts = _coronal_centres(ct, lb, frame, side, pick=pick)
        if pts is None:
            continue
        axis = _fit_axis(pts)
        fit = None
        for _ in range(4):  # refine: the axis through the centres of the perpendicular sections
            new_fit, centres = _measure_isthmus(ct, lb, pts, axis, side)
            fit = new_fit or fit
            if len(centres) < 3:
                break
            new = _fit_axis(np.asarray(centres))
            turn_deg = np.degrees(np.arccos(min(1.0, abs(float(new @ axis)))))
            if turn_deg > 25.0:
                break
            axis, pts = new, np.asarray(centres)
            if turn_deg < 0.5:
                fit = _measure_isthmus(ct, lb, pts, axis, side)[0] or fit
                break
        if fit is not None:
            return fit
    return None


def _coronal_centres(ct, lb, frame, side, *, pick) -> np.ndarray | None:
    """LPS centres of the pedicle's coronal sections, small sections only.

    In each coronal section (z, x) behind the body, the pedicle is the filled bone lateral to the canal on
    the canal's own rows (``pick="nearest"``: the component whose medial border is closest to the canal's
    lateral wall, within 6 mm), or the largest bone section (``pick="largest"``).
    """
    sz, sy, sx = ct.spacing_mm
    sign = SIDE_SIGN[side]
    oz, oy, ox = lb.origin_index
    xm = frame.midline_x - ox
    y_start = int(np.ceil(frame.posterior_wall_y - oy)) + 1
    y_stop = int(np.nonzero(lb.canal.any(axis=(0, 2)))[0].max()) + 1 if lb.canal.any() else y_start + int(25 / sy)
    lat = (np.arange(lb.filled.shape[2]) - xm) * sign * sx  # mm lateral of the midline on this side
    rows = _pedicle_rows(lb, frame, sz)
    cents, areas = [], []
    for y in range(y_start, min(y_stop, lb.filled.shape[1])):
        sec = lb.filled[:, y, :] & ~lb.body[:, y, :] & (lat >= 2.0)[None, :] & rows[:, None]
        if pick == "canal":
            c = _runs_beside_canal(sec, lb.canal[:, y, :], lat)
            if c is not None:
                cents.append((oz + c[0], oy + y, ox + c[1]))
                areas.append(c[2] * sz * sx)
            continue
        sec = ndimage.binary_fill_holes(sec)
        lab, n = ndimage.label(sec)
        if n == 0:
            continue
        sizes = np.asarray(ndimage.sum(sec, lab, range(1, n + 1)))
        coms = np.array(ndimage.center_of_mass(sec, lab, range(1, n + 1))).reshape(-1, 2)
        key = -sizes.astype(float) if pick == "largest" else _gap_to_canal(lab, n, lb.canal[:, y, :], lat)
        key[sizes * sz * sx < 6.0] = np.inf  # ignore specks
        if not np.isfinite(key).any():
            continue
        k = int(np.argmin(key))
        cents.append((oz + coms[k, 0], oy + y, ox + coms[k, 1]))
        areas.append(sizes[k] * sz * sx)
    if len(cents) < 2:
        return None
    cents, areas = np.array(cents, float), np.array(areas)
    keep = areas <= 2.0 * areas.min() + 1e-9
    if keep.sum() < 2:
        keep[:] = True
    return ct.index_to_lps(cents[keep])


def _runs_beside_canal(sec: np.ndarray, canal: np.ndarray, lat_mm: np.ndarray) -> tuple | None:
    """Centre (z, x index) and size (voxels) of the bone runs that start at the canal's lateral wall.

    Row by row (z) of a coronal section: the run of bone beginning within one voxel lateral of the canal
    and going laterally; its midpoint is the pedicle's centre on that row.
    """
    order = np.argsort(lat_mm)  # medial to lateral on this side
    zs, xs, n = [], [], 0
    for z in np.nonzero(canal.any(axis=1))[0]:
        line_c, line_b = canal[z, order], sec[z, order]
        start = int(np.nonzero(line_c)[0].max()) + 1
        if start < len(line_b) and not line_b[start]:
            start += 1
        if start >= len(line_b) or not line_b[start]:
            continue
        stop = start
        while stop + 1 < len(line_b) and line_b[stop + 1]:
            stop += 1
        zs.append(z)
        xs.append(0.5 * (order[start] + order[stop]))
        n += stop - start + 1
    if not zs:
        return None
    return float(np.mean(zs)), float(np.mean(xs)), n


def _pedicle_rows(lb: LevelBone, frame: BodyFrame, spacing_z_mm: float) -> np.ndarray:
    """Box slices (z) that may hold the pedicles: where the ring around the canal is closed, 6 mm of margin,
    within the body's own slices; all the body's slices when the ring never closes."""
    z = np.arange(lb.filled.shape[0]) + lb.origin_index[0]
    in_body = (z >= frame.z_range[0]) & (z <= frame.z_range[1])
    margin = max(1, int(round(_RING_MARGIN_MM / spacing_z_mm)))
    ring = ndimage.binary_dilation(lb.ring_closed, iterations=margin) & in_body
    return ring if ring.any() else in_body


def _gap_to_canal(lab: np.ndarray, n: int, canal: np.ndarray, lat_mm: np.ndarray) -> np.ndarray:
    """Per component of a coronal section: median gap (mm) from the canal's lateral wall to the component's
    medial border, on the rows (z) both occupy; inf when they share no row, lie medial, or gap > 6 mm."""
    gaps = np.full(n, np.inf)
    wall = np.where(canal, lat_mm[None, :], -np.inf).max(axis=1)  # canal's lateral wall per row
    for k in range(1, n + 1):
        comp = lab == k
        rows = np.nonzero(comp.any(axis=1) & np.isfinite(wall))[0]
        if not len(rows):
            continue
        medial = np.where(comp[rows], lat_mm[None, :], np.inf).min(axis=1)
        g = float(np.median(medial - wall[rows]))
        if -1e-6 <= g <= 6.0:
            gaps[k - 1] = g
    return gaps


def _fit_axis(pts: np.ndarray) -> np.ndarray:
    """Principal direction of section centres, pointing anteriorly; outliers (> 2.5 x median, >= 1.5 mm) dropped."""
    keep = np.ones(len(pts), bool)
    for _ in range(3):
        c = pts[keep].mean(axis=0)
        _, _, vt = np.linalg.svd(pts[keep] - c)
        a = vt[0] if keep.sum() > 2 else pts[keep][-1] - pts[keep][0]
        a = a / np.linalg.norm(a)
        v = pts - c
        off = np.linalg.norm(v - np.outer(v @ a, a), axis=1)
        new = off <= max(1.5, 2.5 * float(np.median(off[keep])))
        if new.sum() < 2 or (new == keep).all():
            break
        keep = new
    return -a if a[1] > 0 else a  # point anteriorly (toward -y)


def _plane_axes(axis: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    u = np.cross(axis, (0.0, 0.0, 1.0))
    u /= np.linalg.norm(u)
    u = u if u[0] * sign > 0 else -u
    w = np.cross(u, axis)
    w /= np.linalg.norm(w)
    return u, (w if w[2] > 0 else -w)


def sample_hu(ct: CTVolume, pts_lps: np.ndarray, array: np.ndarray | None = None, order: int = 1) -> np.ndarray:
    """Trilinear samples of the HU (or ``array``) at LPS points; -1024 / 0 outside the grid."""
    arr = ct.hu if array is None else array
    idx = ct.lps_to_index(np.asarray(pts_lps, float).reshape(-1, 3)).T
    cval = -1024.0 if array is None else 0.0
    return ndimage.map_coordinates(arr.astype(np.float32, copy=False), idx, order=order, cval=cval)


def _measure_isthmus(ct, lb, pts, axis, side) -> tuple[PedicleFit | None, list]:
    """Sections perpendicular to ``axis`` every 0.5 mm: their centres, and the narrowest one as the isthmus."""
    u, w = _plane_axes(axis, SIDE_SIGN[side])
    c0 = pts.mean(axis=0)
    t = (pts - c0) @ axis
    s_grid = np.arange(-_HALF_MM, _HALF_MM + 1e-9, _STEP_MM)
    ss, tt = np.meshgrid(s_grid, s_grid, indexing="ij")  # (s along u, t along w)
    dist = np.hypot(ss, tt)
    closing_mm = max(0.5, 0.75 * float(max(ct.spacing_mm)))
    stations = []
    for station in np.arange(t.min(), t.max() + 1e-9, _STATION_MM):
        p = c0 + station * axis
        plane = p + ss[..., None] * u + tt[..., None] * w
        sec = lb.sample(ct, plane.reshape(-1, 3), lb.filled).reshape(ss.shape) > 0.5
        inb = lb.sample(ct, plane.reshape(-1, 3), lb.body, order=0).reshape(ss.shape) > 0.5
        comp = _section_component(sec & ~inb, dist, closing_mm)
        if comp is None:
            continue
        ci, cj = (np.argwhere(comp).mean(axis=0) - len(s_grid) // 2) * _STEP_MM
        centre = p + ci * u + cj * w
        width = _extent_mm(ct, lb, centre, u, comp[:, int(round(cj / _STEP_MM)) + len(s_grid) // 2], ci)
        height = _extent_mm(ct, lb, centre, w, comp[int(round(ci / _STEP_MM)) + len(s_grid) // 2, :], cj)
        if width is None or height is None or width < 2.0 or height < 2.0:  # specks are not a pedicle
            continue
        on_body = bool((ndimage.binary_dilation(comp, iterations=4) & inb).any())  # 1 mm: cut by the body
        stations.append((width, height, centre, float(np.hypot(ci, cj)), on_body))
    if not stations:
        return None, []
    centres = [st[2] for st in stations]
    widths = np.array([st[0] for st in stations])
    # the isthmus among sections centred on the axis, clear of the body, and not fragments (< 60 % of the median)
    good = [st for st in stations if st[3] <= 3.0 and not st[4] and st[0] >= 0.6 * float(np.median(widths))]
    if not good:
        return None, centres
    w_good = np.array([st[0] for st in good])
    smooth = ndimage.median_filter(w_good, size=3, mode="nearest") if len(good) >= 3 else w_good
    k = int(np.argmin(smooth))
    fit = PedicleFit(side=side, width_mm=float(smooth[k]), height_mm=float(good[k][1]), center_lps_mm=good[k][2],
                     axis_lps=axis, lateral_lps=u, cranial_lps=w)
    return fit, centres


def _section_component(sec: np.ndarray, dist: np.ndarray, closing_mm: float) -> np.ndarray | None:
    """The filled section component nearest the axis (within 4 mm), closed (``closing_mm``, so that a cortical
    ring broken at coarse voxels closes) and its holes filled; None if cut by the plane."""
    lab, n = ndimage.label(sec)
    if n == 0:
        return None
    dmin = ndimage.minimum(dist, lab, range(1, n + 1))
    k = int(np.argmin(dmin)) + 1
    if dmin[k - 1] > 4.0:
        return None
    n_it = max(1, int(round(closing_mm / _STEP_MM)))
    comp = np.pad(lab == k, n_it + 1)
    comp = ndimage.binary_fill_holes(ndimage.binary_closing(comp, iterations=n_it) | comp)[n_it + 1:-n_it - 1,
                                                                                           n_it + 1:-n_it - 1]
    if comp[0].any() or comp[-1].any() or comp[:, 0].any() or comp[:, -1].any():
        return None
    return comp


def _extent_mm(ct, lb, centre, direction, run_line, c_mm) -> float | None:
    """Outer-edge to outer-edge extent (mm) of a section along ``direction`` through ``centre``.

    ``run_line`` is the section's mask on the line (plane samples, ``_STEP_MM`` apart) and ``c_mm`` the
    centre's offset on it. Each edge is the steepest HU fall (outward) on a cubic profile within
    ``max(2 mm, 0.75 voxel)`` of the mask's border; the mask border itself when the profile has no fall.
    """
    i = int(round(c_mm / _STEP_MM)) + len(run_line) // 2
    if not run_line[i]:
        hits = np.nonzero(run_line)[0]
        if not len(hits):
            return None
        i = int(hits[np.argmin(np.abs(hits - i))])
    a, b = i, i
    while a > 0 and run_line[a - 1]:
        a -= 1
    while b < len(run_line) - 1 and run_line[b + 1]:
        b += 1
    half = (len(run_line) // 2) * _STEP_MM
    lo_mm, hi_mm = a * _STEP_MM - half - c_mm, b * _STEP_MM - half - c_mm  # borders, signed from the centre
    win = max(2.0, 0.75 * float(max(ct.spacing_mm)))
    mid = 0.5 * (lo_mm + hi_mm)
    edges = []
    for border, sgn in ((lo_mm, 1.0), (hi_mm, -1.0)):  # sgn: HU rises going +direction at the low border
        x = np.arange(border - win, border + win + 1e-9, _PROFILE_STEP_MM)
        x = x[(x <= mid) if sgn > 0 else (x >= mid)]
        if len(x) < 3:
            edges.append(border)
            continue
        grad = sgn * np.gradient(lb.hu_cubic(ct, centre + x[:, None] * direction), _PROFILE_STEP_MM)
        j = int(np.argmax(grad))
        edges.append(float(x[j]) if grad[j] > 0 else border)
    return edges[1] - edges[0]
