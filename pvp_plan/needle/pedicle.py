"""Find the pedicles of a level on the CT and measure their isthmus (issue 5).

The segmentation labels bodies only; pedicles are found as bone (``HU > bone_hu``) posterior to the
body's posterior wall, lateral to the spinal canal and anterior to the laminae. Cross-sections are
sampled perpendicular to the fitted pedicle axis; the isthmus is the station of smallest
mediolateral width. Frames: arrays (z, y, x), points LPS (x, y, z) mm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.io.ct_volume import CTVolume

logger = logging.getLogger(__name__)

SIDE_SIGN = {"left": 1.0, "right": -1.0}  # LPS x grows toward the patient's left
_STEP_MM = 0.25
_HALF_MM = 15.0
_SOFT_TISSUE_HU = 40.0


@dataclass(frozen=True)
class BodyFrame:
    """Landmarks of one body on its CT (index space and LPS)."""

    z_range: tuple[int, int]
    midline_x: float  # index
    posterior_wall_y: float  # index
    anterior_wall_y: float  # index
    centroid_lps_mm: np.ndarray


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


def find_pedicle(ct: CTVolume, body: np.ndarray, frame: BodyFrame, side: str, *, bone_hu: float,
                 edge_hu: float) -> PedicleFit | None:
    """Fit the pedicle axis from coronal sections, then measure sections perpendicular to it.

    In each coronal section the pedicle is first taken as the bone nearest the canal (so a rib or a
    transverse process is not mistaken for it); when that gives nothing, as the largest bone section.
    """
    for pick in ("nearest", "largest"):
        fit = _find_pedicle(ct, body, frame, side, bone_hu=bone_hu, edge_hu=edge_hu, pick=pick)
        if fit is not None:
            return fit
    return None


def _find_pedicle(ct, body, frame, side, *, bone_hu, edge_hu, pick) -> PedicleFit | None:
    sz, sy, sx = ct.spacing_mm
    sign = SIDE_SIGN[side]
    z0, z1 = frame.z_range
    y_start = int(np.ceil(frame.posterior_wall_y)) + 1
    y_stop = min(ct.shape[1], y_start + int(40.0 / sy))
    xm = frame.midline_x
    x_lo, x_hi = (xm + 2.0 / sx, xm + 40.0 / sx) if sign > 0 else (xm - 40.0 / sx, xm - 2.0 / sx)
    x_lo, x_hi = max(0, int(np.floor(x_lo))), min(ct.shape[2], int(np.ceil(x_hi)) + 1)
    bone = ct.hu[z0:z1 + 1] > bone_hu
    mid = slice(max(0, int(xm - 3.0 / sx)), int(xm + 3.0 / sx) + 1)
    cents, areas = [], []
    for y in range(y_start, y_stop):
        if bone[:, y, mid].any() and y > y_start + 2:
            break  # lamina / spinous process at the midline: end of the canal
        sec = bone[:, y, x_lo:x_hi] & ~body[z0:z1 + 1, y, x_lo:x_hi]
        lab, n = ndimage.label(sec)
        if n == 0:
            continue
        sizes = np.asarray(ndimage.sum(sec, lab, range(1, n + 1)))
        coms = np.array(ndimage.center_of_mass(sec, lab, range(1, n + 1))).reshape(-1, 2)
        lateral = np.abs(x_lo + coms[:, 1] - xm) * sx
        if pick == "largest":
            lateral = -sizes.astype(float)
        lateral[sizes * sz * sx < 6.0] = np.inf  # ignore specks; the pedicle is the bone next to the canal
        if not np.isfinite(lateral).any():
            continue
        k = int(np.argmin(lateral)) + 1
        c = coms[k - 1]
        cents.append((z0 + c[0], y, x_lo + c[1]))
        areas.append(sizes[k - 1] * sz * sx)
    if len(cents) < 2:
        return None
    cents, areas = np.array(cents, float), np.array(areas)
    keep = areas <= 2.0 * areas.min() + 1e-9
    if keep.sum() < 2:
        keep[:] = True
    pts = ct.index_to_lps(cents[keep])
    axis = _fit_axis(pts)
    fit = None
    for _ in range(3):  # refine: the axis through the centres of the perpendicular sections
        fit, centres = _measure_isthmus(ct, body, pts, axis, sign, bone_hu=bone_hu, edge_hu=edge_hu, side=side)
        if fit is None or len(centres) < 3:
            break
        new = _fit_axis(np.asarray(centres))
        if np.degrees(np.arccos(min(1.0, abs(float(new @ axis))))) > 25.0:
            break
        axis, pts = new, np.asarray(centres)
    return fit


def _fit_axis(pts: np.ndarray) -> np.ndarray:
    c = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - c)
    a = vt[0] if len(pts) > 2 else pts[-1] - pts[0]
    a = a / np.linalg.norm(a)
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


def _measure_isthmus(ct, body, pts, axis, sign, *, bone_hu, edge_hu, side) -> PedicleFit | None:
    u, w = _plane_axes(axis, sign)
    c0 = pts.mean(axis=0)
    t = (pts - c0) @ axis
    s_grid = np.arange(-_HALF_MM, _HALF_MM + 1e-9, _STEP_MM)
    ss, tt = np.meshgrid(s_grid, s_grid, indexing="ij")  # (s along u, t along w)
    best = None
    centres = []
    body_f = body.astype(np.float32)
    for station in np.arange(t.min(), t.max() + 1e-9, 0.5):
        p = c0 + station * axis
        plane = p + ss[..., None] * u + tt[..., None] * w
        hu = sample_hu(ct, plane.reshape(-1, 3)).reshape(ss.shape)
        inb = sample_hu(ct, plane.reshape(-1, 3), body_f, order=0).reshape(ss.shape) > 0.5
        lab, n = ndimage.label((hu > bone_hu) & ~inb)
        if n == 0:
            continue
        d = np.hypot(ss, tt)
        cand = [(d[lab == k].min(), k) for k in range(1, n + 1)]
        dmin, k = min(cand)
        if dmin > 4.0:
            continue
        comp = ndimage.binary_fill_holes(lab == k)
        if comp[0].any() or comp[-1].any() or comp[:, 0].any() or comp[:, -1].any():
            continue
        ci, cj = np.argwhere(comp).mean(axis=0)
        ci, cj = int(round(ci)), int(round(cj))
        if not comp[ci, cj]:  # curved section: use its pixel nearest to the centroid
            pix = np.argwhere(comp)
            ci, cj = pix[np.argmin(np.hypot(pix[:, 0] - ci, pix[:, 1] - cj))]
        width = _edge_extent(comp[:, cj], hu[:, cj], ci, edge_hu) * _STEP_MM
        height = _edge_extent(comp[ci, :], hu[ci, :], cj, edge_hu) * _STEP_MM
        if width < 2.0 or height < 2.0:  # specks are not a pedicle
            continue
        centre = p + s_grid[ci] * u + s_grid[cj] * w
        centres.append(centre)
        if best is None or width < best[0]:
            best = (width, height, centre)
    if best is None:
        return None, centres
    return PedicleFit(side=side, width_mm=float(best[0]), height_mm=float(best[1]), center_lps_mm=best[2],
                      axis_lps=axis, lateral_lps=u, cranial_lps=w), centres


def _edge_extent(line: np.ndarray, hu: np.ndarray, i: int, edge_hu: float) -> int:
    """Samples between the outermost cortex samples (> edge_hu) of the run of ``line`` through ``i``."""
    n = _run_length(line, i)
    if n == 0:
        return 0
    a = i
    while a > 0 and line[a - 1]:
        a -= 1
    run = hu[a:a + n]
    edge = min(edge_hu, 0.5 * (float(run.max()) + _SOFT_TISSUE_HU))  # half-max edge when the cortex is blurred
    strong = np.nonzero(run > edge)[0]
    return int(strong[-1] - strong[0] + 1) if len(strong) >= 2 else n


def _run_length(line: np.ndarray, i: int) -> int:
    if not line[i]:
        return 0
    a = i
    while a > 0 and line[a - 1]:
        a -= 1
    b = i
    while b < len(line) - 1 and line[b + 1]:
        b += 1
    return b - a + 1
