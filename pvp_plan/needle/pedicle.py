"""Find the pedicles of a level on the CT and measure their isthmus (issue 5).

The segmentation labels bodies only, so the posterior elements are found on the CT around each body
(:func:`level_bone`):

1. an adaptive bone threshold per level, ``BONE_EDGE_FRACTION`` of the way from the local soft tissue
   (median HU behind the body) to the local cortex (90th percentile of the bone HU there): at 3 mm the
   pedicle cortex reads 300-800 HU and its cancellous core may read like soft tissue;
2. the cortical shells closed (a ~2 mm closing) and, per axial slice, the holes they enclose filled,
   except the spinal canal: the hole behind the body's posterior wall at the midline. Where the ring is
   open (between the pedicles of two levels), the canal is the non-bone region there, bounded by the
   canal found in the closed slices; canal lateral of bone on its row is dropped;
3. the cancellous core between a pedicle's superior and inferior walls added where it reads above soft
   tissue (``CANCELLOUS_EDGE_FRACTION``), though below the bone threshold (3 mm voxels).

:func:`find_pedicle` then follows the pedicle's medial path: on a 0.5 mm grid, the cheapest route from the
bone touching the body to the bone behind the canal, lateral to the canal, at a cost that keeps it in the
middle of the bone (``1 / depth^4``, depth the distance to the nearest non-bone), so it does not depend
on clean sections at coarse voxels. The pedicle arises from the cranial half of the body: the path is
sought above the body's centroid, and the isthmus centre lies between it and half the smallest pedicle
height below the superior endplate (along the spine axis). Sections perpendicular to the path's
direction are then read every 0.5 mm along it, each on two lines only (a cross-hair, ``+-_CROP_MM``): the centre alternates between the
mid-points of the filled-bone runs along the mediolateral and the cranio-caudal line, so a section that
merges with the transverse process or the facets elsewhere (3 mm voxels) is still read; the centres
refine the axis, and the isthmus is the section of smallest mediolateral width. Widths and heights are
read, cortex included, on interpolated (cubic) HU profiles through the section centre: each outer edge
is the steepest fall of HU near the run's end, a sub-voxel edge that holds for a thin cortex at 0.8 mm
and at 3 mm voxels alike. Each slice's canal is
cut where it leaks into a pedicle core through a cortical gap. Frames: arrays (z, y, x), points LPS
(x, y, z) mm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.graph import MCP_Geometric

from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.rules import needle as R

logger = logging.getLogger(__name__)

SIDE_SIGN = {"left": 1.0, "right": -1.0}  # LPS x grows toward the patient's left
#: Bone threshold of a level: this fraction of the way from the local soft-tissue HU to the local cortex HU.
BONE_EDGE_FRACTION = 0.4
#: Cancellous core of the posterior elements: this fraction of the way from the local soft tissue to the local
#: cortex (about 90-130 HU at 3 mm: above muscle and its noise, below the arch's cancellous bone).
CANCELLOUS_EDGE_FRACTION = 0.15
#: Never threshold bone below this (HU), whatever the local contrast.
MIN_BONE_HU = 150.0
#: Tallest cancellous core filled between a pedicle's superior and inferior walls: the smallest isthmus height less
#: its two cortices (10 - 2 x 1 mm).
_CANCELLOUS_GAP_MM = R.PEDICLE_HEIGHT_MM.low - 2.0 * R.PEDICLE_CORTEX_MM.value
_CANCELLOUS_SMOOTH_MM = 1.0  # Gaussian sigma of the HU that tells cancellous bone from soft tissue
_BODY_CORTEX_MM = 3.0  # the body's cortex and its partial volume, left out of the cancellous HU
_CLOSING_RADIUS_MM = 2.0  # closes a pedicle's cortical ring whose core reads like soft tissue
_CANAL_OPENING_MM = 2.0  # a canal leak through a narrower gap is cut off
_MAX_FILLED_HOLE_MM2 = 400.0  # holes filled as cancellous bone (pedicle and arch cores); the canal stays open
_STEP_MM = 0.25  # in-plane sampling of perpendicular sections
_PROFILE_STEP_MM = 0.1  # sampling of the HU profiles that give widths and heights
_CROP_MM = 12.0  # half-length of the lines that read a section's width and height
_CENTRE_ITERATIONS = 3
_STATION_MM = 0.5
_GRID_MM = 0.5  # grid of the medial path and bone depth
_LATERAL_REACH_MM = 20.0  # the path stays within this distance lateral of the canal (ribs lie beyond)
_PATH_END_MM = 1.0  # the isthmus is not within this arc length of the path's ends
_AXIS_ITERATIONS = 4
_DEFAULT_CANAL_HALF_WIDTH_MM = 8.0  # when no canal is found
_DEFAULT_CANAL_DEPTH_MM = 16.0


@dataclass(frozen=True)
class BodyFrame:
    """Landmarks of one body on its CT (index space and LPS)."""

    z_range: tuple[int, int]
    midline_x: float  # index
    posterior_wall_y: float  # index
    anterior_wall_y: float  # index
    centroid_lps_mm: np.ndarray
    spine_axis_lps: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))  # unit, cranial


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
    cancellous_hu: float | None = None  # median HU of the body's cancellous bone (None: body too small)

    @property
    def soft_edge_hu(self) -> float:
        """Below this HU a sample is soft tissue, not cancellous bone: half-way from the local soft tissue to
        the level's own cancellous bone (``cancellous_hu``), or to the bone threshold when that is unknown."""
        return _soft_edge_hu(self.soft_tissue_hu, self.cancellous_hu, self.bone_hu)

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


def body_frame(ct: CTVolume, body: np.ndarray, *, spine_axis_lps=(0.0, 0.0, 1.0)) -> BodyFrame:
    """Posterior / anterior wall and midline of a body mask (index space); ``spine_axis_lps`` is the spine's
    cranio-caudal axis at the body (LPS, unit, cranial: ``BodyInfo.axis_lps``)."""
    idx = np.argwhere(body)
    zc, _, xc = idx.mean(axis=0)
    half_x = max(1, int(round(4.0 / ct.spacing_mm[2])))
    near = idx[(np.abs(idx[:, 2] - xc) <= half_x) & (np.abs(idx[:, 0] - zc) <= max(1, 4.0 / ct.spacing_mm[0]))]
    near = near if len(near) else idx
    return BodyFrame(z_range=(int(idx[:, 0].min()), int(idx[:, 0].max())), midline_x=float(xc),
                     posterior_wall_y=float(near[:, 1].max()), anterior_wall_y=float(near[:, 1].min()),
                     centroid_lps_mm=ct.index_to_lps(idx.mean(axis=0)),
                     spine_axis_lps=np.asarray(spine_axis_lps, float) / np.linalg.norm(spine_axis_lps))


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
    cancellous = _cancellous_hu(hu, body_b, sp)
    if bone_hu is None:  # a threshold set by the caller is taken as it is
        core = _cancellous_core(hu, bone, soft + CANCELLOUS_EDGE_FRACTION * (cortex - soft), spacing_mm=sp)
        filled |= core & ~canal & ~body_b
    return LevelBone(origin_index=lo.astype(float), soft_tissue_hu=soft, cortex_hu=cortex, bone_hu=thr,
                     adaptive=bone_hu is None, filled=filled, canal=canal, ring_closed=closed, body=body_b,
                     hu_spline=ndimage.spline_filter(hu, order=3).astype(np.float32),
                     cancellous_hu=cancellous)


def _cancellous_hu(hu: np.ndarray, body: np.ndarray, spacing_mm) -> float | None:
    """Median HU of the body's cancellous bone: the body mask eroded by ``_BODY_CORTEX_MM`` (its cortex and
    partial volume left out); None when fewer than 50 voxels remain."""
    r = np.maximum(1, np.round(_BODY_CORTEX_MM / np.asarray(spacing_mm, float))).astype(int)
    inner = ndimage.binary_erosion(body, np.ones(2 * r + 1, bool))
    return float(np.median(hu[inner])) if inner.sum() >= 50 else None


def _soft_edge_hu(soft_hu: float, cancellous_hu: float | None, bone_hu: float) -> float:
    """Half-way from the local soft tissue to the level's cancellous bone (or to the bone threshold, if lower or
    unknown): below it a sample is soft tissue."""
    top = bone_hu if cancellous_hu is None else min(cancellous_hu, bone_hu)
    return 0.5 * (soft_hu + top)


def _cancellous_core(hu: np.ndarray, bone: np.ndarray, low_hu: float, *, spacing_mm) -> np.ndarray:
    """Cancellous bone between a pedicle's superior and inferior walls that the bone threshold leaves out.

    At 3 mm voxels a pedicle's core (100-150 HU) reads below the threshold, and so may its thin lateral wall:
    an axial slice through the pedicle then shows one cortical plate. Its superior and inferior walls lie
    in the slice plane and read fully. A voxel is cancellous bone when bone lies above and below it within
    ``_CANCELLOUS_GAP_MM`` (a 1-D closing along the slice axis z) and its HU, smoothed over
    ``_CANCELLOUS_SMOOTH_MM``, is above ``low_hu`` (soft tissue reads below: the foramen and the joints
    between two levels stay open).
    """
    sp = np.asarray(spacing_mm, float)
    n = int(np.floor(_CANCELLOUS_GAP_MM / sp[0])) + 2  # a line of n voxels bridges gaps of up to n - 2 voxels
    padded = np.pad(bone, [(n, n), (0, 0), (0, 0)])
    between = ndimage.binary_closing(padded, np.ones((n, 1, 1), bool))[n:-n]
    not_soft = ndimage.gaussian_filter(hu, _CANCELLOUS_SMOOTH_MM / sp) > low_hu
    return between & not_soft & ~bone


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
            canal[z] = _canal_without_leaks(lab == k, sp)
            filled[z] |= (lab == k) & ~canal[z] & ~body[z]  # a pedicle core reached through a cortical gap
        else:
            open_slices.append(z)
    closed = canal.any(axis=(1, 2))
    if open_slices:
        _open_canal(canal, bone | body, open_slices, ix=ix, ya=ya, spacing_mm=sp)
    return filled, _canal_within_bone_rows(canal, bone | body, ix), closed


def _canal_within_bone_rows(canal: np.ndarray, solid: np.ndarray, ix: int) -> np.ndarray:
    """The canal less what lies beyond bone along its rows: per slice and row (y), canal voxels with a
    ``solid`` (bone or body) voxel between them and the midline column ``ix`` are dropped. The canal is
    bounded laterally by the pedicles at every depth; canal found lateral of bone on its row (a pedicle
    base's core, or a neighbour slice's recess copied into an open slice) is not canal."""
    out = canal.copy()
    for z, y in zip(*np.nonzero(canal.any(axis=2))):
        hits = np.nonzero(solid[z, y])[0]
        left, right = hits[hits < ix], hits[hits > ix]
        if len(left):
            out[z, y, :left.max()] = False
        if len(right):
            out[z, y, right.min() + 1:] = False
    return out


def _canal_without_leaks(hole: np.ndarray, spacing_mm) -> np.ndarray:
    """The canal hole of a slice less what leaks through a gap narrower than ``2 * _CANAL_OPENING_MM`` (a
    pedicle's cancellous core reached through a break in its medial cortex): opened, its largest part
    kept and grown back by the opening's radius, within the hole."""
    r = np.maximum(1, np.round(_CANAL_OPENING_MM / np.asarray(spacing_mm[1:], float))).astype(int)
    g = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1]
    disk = (g[0] / r[0]) ** 2 + (g[1] / r[1]) ** 2 <= 1.0
    opened = ndimage.binary_opening(hole, disk)
    lab, n = ndimage.label(opened)
    if n == 0:
        return hole
    main = lab == int(np.argmax(ndimage.sum(opened, lab, range(1, n + 1)))) + 1
    return hole & ndimage.binary_dilation(main, disk)


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
    """Find the pedicle on one side and measure its isthmus.

    The pedicle is the bone bridge from the body to the posterior arch lateral to the canal. Its medial
    path (:func:`_medial_path`) runs through the middle of that bridge; the axis is fitted through the
    centres of sections perpendicular to it (:func:`_measure_isthmus`, :func:`_cross_hair`), and the
    isthmus is the section of smallest mediolateral width.
    """
    path = _medial_path(ct, lb, frame, side)
    if path is None:
        return None
    pts, depth_mm = path
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    inner = (arc >= _PATH_END_MM) & (arc <= arc[-1] - _PATH_END_MM)
    if inner.sum() < 3:
        return None
    pts = pts[inner]
    axis = _fit_axis(pts)
    fit = None
    for _ in range(_AXIS_ITERATIONS):  # refine: the axis through the centres of the perpendicular sections
        new_fit, centres = _measure_isthmus(ct, lb, pts, axis, side, frame)
        fit = new_fit or fit
        if len(centres) < 3:
            break
        new = _fit_axis(np.asarray(centres))
        turn_deg = np.degrees(np.arccos(min(1.0, abs(float(new @ axis)))))
        if turn_deg > 25.0:
            break
        axis, pts = new, np.asarray(centres)
        if turn_deg < 0.5:
            fit = _measure_isthmus(ct, lb, pts, axis, side, frame)[0] or fit
            break
    return fit


def _pedicle_band_mm(ct, lb: LevelBone, frame: BodyFrame) -> tuple[float, float]:
    """Heights (mm along the spine axis from the body's centroid) between which the pedicle's centre lies: from
    the centroid (the pedicle arises from the body's cranial half) to half the smallest pedicle height
    (``PEDICLE_HEIGHT_MM``) below the body's superior endplate (its top voxel's centre plus half a voxel)."""
    top = float(((ct.index_to_lps(np.argwhere(lb.body) + lb.origin_index) - frame.centroid_lps_mm)
                 @ frame.spine_axis_lps).max()) + 0.5 * float(ct.spacing_mm[0])
    return 0.0, top - 0.5 * R.PEDICLE_HEIGHT_MM.low


def _height_mm(pts_lps: np.ndarray, frame: BodyFrame) -> np.ndarray:
    return (np.asarray(pts_lps, float) - frame.centroid_lps_mm) @ frame.spine_axis_lps


def _medial_path(ct, lb: LevelBone, frame: BodyFrame, side: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The pedicle's medial path on one side: LPS points (n, 3) from the body to the arch, and bone depth (mm).

    The pedicle arises from the cranial half of the body's posterior surface (lumbar and thoracic alike), so
    the path is sought above the body's centroid along the spine axis (``BodyFrame.spine_axis_lps``): below
    it lie the foramen and the facet joints with the next level's articular processes (merged with the
    pedicle at 3 mm voxels).

    On a ``_GRID_MM`` grid over the body's slices, from the midline to ``_LATERAL_REACH_MM`` lateral of
    the canal: the bone (filled bone or body, canal excluded) and its depth (Euclidean distance to the
    nearest non-bone). The path is the cheapest route, at cost ``1 / depth^4`` per mm (so it keeps to
    the middle of the bone), from the bone touching the body to the bone behind the canal, through
    bone that is neither the body nor medial to the canal's lateral wall (the lamina, the other side).
    """
    sp = np.asarray(ct.spacing_mm, float)
    sign = SIDE_SIGN[side]
    o = lb.origin_index
    xm, ypw = frame.midline_x - o[2], frame.posterior_wall_y - o[1]
    wall_mm, back_mm = canal_extent_mm(lb, xm, ypw, sign, sp)
    zz = np.arange(frame.z_range[0] - o[0], frame.z_range[1] - o[0] + 1e-6, _GRID_MM / sp[0])
    back_mm_max = float(np.nanmax(back_mm))
    yy = ypw + np.arange(-6.0, back_mm_max + 12.0, _GRID_MM) / sp[1]
    lat = np.arange(0.0, float(np.nanmax(wall_mm)) + _LATERAL_REACH_MM, _GRID_MM)
    xx = xm + sign * lat / sp[2]
    zb = np.clip(np.round(zz).astype(int), 0, lb.filled.shape[0] - 1)
    g = np.meshgrid(zz, yy, xx, indexing="ij")
    coords = np.stack([a.ravel() for a in g])

    def up(a):
        return ndimage.map_coordinates(a.astype(np.float32), coords, order=1, mode="nearest").reshape(g[0].shape) > 0.5

    body, canal = up(lb.body), up(lb.canal)
    bone = (up(lb.filled) | body) & ~canal
    depth = ndimage.distance_transform_edt(np.pad(bone, 1, mode="edge"), sampling=_GRID_MM)[1:-1, 1:-1, 1:-1]
    behind_mm = (yy - ypw) * sp[1]
    cranial = _height_mm(ct.index_to_lps((coords + o[:, None]).T), frame).reshape(g[0].shape) >= 0.0
    region = bone & ~body & cranial & (lat[None, None, :] >= wall_mm[zb][:, None, None] - 1.0)
    source = region & ndimage.binary_dilation(body, iterations=3)
    sink = region & (behind_mm[None, :, None] >= back_mm[zb][:, None, None] - 2.0)
    if not source.any() or not sink.any():
        return None
    cost = np.where(region, 1.0 / (depth + 0.1) ** 4, np.inf)
    mcp = MCP_Geometric(cost)
    ends = np.argwhere(sink)
    cum, _ = mcp.find_costs(np.argwhere(source), ends, find_all_ends=False)
    reached = cum[tuple(ends.T)]
    if not np.isfinite(reached).any():
        return None
    idx = np.array(mcp.traceback(tuple(ends[int(np.argmin(reached))])))
    box_idx = np.stack([zz[idx[:, 0]], yy[idx[:, 1]], xx[idx[:, 2]]], axis=1)
    return ct.index_to_lps(box_idx + o), depth[tuple(idx.T)]


def canal_extent_mm(lb: LevelBone, xm: float, ypw: float, sign: float, sp) -> tuple[np.ndarray, np.ndarray]:
    """Per box slice (z): the canal's lateral wall on this side (mm lateral of the midline) and its back (mm
    behind the body's posterior wall).

    A slice whose read lies outside the plausible canal (``CANAL_HALF_WIDTH_MM``, ``CANAL_DEPTH_MM``: a canal
    leaked out through an open arch, or a sliver between bones) or has no canal takes the median of the
    others (8 and 16 mm when there is none).
    """
    nz = lb.canal.shape[0]
    wall, back = np.full(nz, np.nan), np.full(nz, np.nan)
    for z in range(nz):
        yi, xi = np.nonzero(lb.canal[z])
        lat = (xi - xm) * sign * sp[2]
        if (lat > 0).any():
            w, b = lat.max(), (yi.max() - ypw) * sp[1]
            if _within(w, R.CANAL_HALF_WIDTH_MM) and _within(b, R.CANAL_DEPTH_MM):
                wall[z], back[z] = w, b
    for a, default in ((wall, _DEFAULT_CANAL_HALF_WIDTH_MM), (back, _DEFAULT_CANAL_DEPTH_MM)):
        a[np.isnan(a)] = np.nanmedian(a) if np.isfinite(a).any() else default
    return wall, back


def _within(v: float, rule) -> bool:
    return rule.low <= v <= rule.high


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


def sample_hu(ct: CTVolume, pts_lps: np.ndarray) -> np.ndarray:
    """Trilinear samples of the CT's HU at LPS points; -1024 (air) outside the grid."""
    idx = ct.lps_to_index(np.asarray(pts_lps, float).reshape(-1, 3)).T
    # sampled from the stored HU array as it is (no float copy of the whole CT per call), output in float32
    return ndimage.map_coordinates(ct.hu, idx, order=1, cval=-1024.0, output=np.float32)


def _measure_isthmus(ct, lb, pts, axis, side, frame) -> tuple[PedicleFit | None, list]:
    """Sections perpendicular to ``axis`` every 0.5 mm: their centres, and the narrowest one as the isthmus.

    The isthmus is chosen among sections centred on the axis, clear of the body, not fragments, and whose
    centre lies at a pedicle's height on the body (:func:`_pedicle_band_mm`).
    """
    u, w = _plane_axes(axis, SIDE_SIGN[side])
    c0 = pts.mean(axis=0)
    t = (pts - c0) @ axis
    stations = []
    for station in np.arange(t.min(), t.max() + 1e-9, _STATION_MM):
        p = c0 + station * axis
        st = _cross_hair(ct, lb, p, u, w)
        if st is not None:
            stations.append(st)
    if not stations:
        return None, []
    centres = [st[2] for st in stations]
    widths = np.array([st[0] for st in stations])
    good = [st for st in stations if st[3] <= 3.0 and not st[4] and st[0] >= 0.6 * float(np.median(widths))]
    lo_mm, hi_mm = _pedicle_band_mm(ct, lb, frame)
    good = [st for st in good if lo_mm <= _height_mm(st[2], frame) <= hi_mm]
    if not good:
        return None, centres
    w_good = np.array([st[0] for st in good])
    smooth = ndimage.median_filter(w_good, size=3, mode="nearest") if len(good) >= 3 else w_good
    k = int(np.argmin(smooth))
    fit = PedicleFit(side=side, width_mm=float(smooth[k]), height_mm=float(good[k][1]), center_lps_mm=good[k][2],
                     axis_lps=axis, lateral_lps=u, cranial_lps=w)
    return fit, centres


def _cross_hair(ct, lb, p, u, w) -> tuple[float, float, np.ndarray, float, bool] | None:
    """Width and height (mm) of the bone section through ``p`` perpendicular to the axis, read on two lines.

    The section is never isolated as a whole (at 3 mm voxels it merges with the transverse process and the
    facets): its centre is found by alternating the mid-points of the filled-bone run through it along
    ``u`` (mediolateral) and along ``w`` (cranio-caudal), each line sampled within ``_CROP_MM``; the width
    is the run along ``u`` through that centre (mid-height), the height the run along ``w``.

    Returns (width, height, centre LPS, centre's offset from ``p`` in mm, cut by the body) or None when a
    run reaches the crop (bone merged on the line) or is a speck (< 2 mm).
    """
    s = np.arange(-_CROP_MM, _CROP_MM + 1e-9, _STEP_MM)
    c = np.asarray(p, float)
    runs = {}
    for _ in range(_CENTRE_ITERATIONS):
        for d in (u, w):
            line = lb.sample(ct, c + s[:, None] * d, lb.filled) > 0.5
            run = _run_through(line, len(s) // 2)
            if run is None:
                return None
            a, b = run
            c = c + d * (0.5 * (a + b) - len(s) // 2) * _STEP_MM
    for key, d in (("u", u), ("w", w)):
        runs[key] = lb.sample(ct, c + s[:, None] * d, lb.filled) > 0.5
        if _run_through(runs[key], len(s) // 2) is None:
            return None
    width = _extent_mm(ct, lb, c, u, runs["u"], 0.0)
    height = _extent_mm(ct, lb, c, w, runs["w"], 0.0)
    if width is None or height is None or width < 2.0 or height < 2.0:
        return None
    a, b = _run_through(runs["u"], len(s) // 2)
    ends = c + ((np.array([a - 4, b + 4]) - len(s) // 2) * _STEP_MM)[:, None] * u  # 1 mm beyond the run
    on_body = bool((lb.sample(ct, ends, lb.body, order=0) > 0.5).any())
    return width, height, c, float(np.linalg.norm(c - p)), on_body


def _run_around(line: np.ndarray, i: int, max_gap_mm: float | None = None) -> tuple[int, int] | None:
    """(first, last) index of the True run of ``line`` at ``i``, or at the nearest True sample (no farther
    than ``max_gap_mm`` when given); None if there is none."""
    if not line[i]:
        hits = np.nonzero(line)[0]
        if not len(hits):
            return None
        j = int(hits[np.argmin(np.abs(hits - i))])
        if max_gap_mm is not None and abs(j - i) * _STEP_MM > max_gap_mm:
            return None
        i = j
    a, b = i, i
    while a > 0 and line[a - 1]:
        a -= 1
    while b < len(line) - 1 and line[b + 1]:
        b += 1
    return a, b


def _run_through(line: np.ndarray, i: int) -> tuple[int, int] | None:
    """(first, last) index of the True run of ``line`` at ``i`` (or the nearest within 2 mm); None if the run
    touches either end of the line (bone merged beyond the crop) or there is none."""
    run = _run_around(line, i, max_gap_mm=2.0)
    if run is None or run[0] == 0 or run[1] == len(line) - 1:
        return None
    return run


def _extent_mm(ct, lb, centre, direction, run_line, c_mm) -> float | None:
    """Outer-edge to outer-edge extent (mm) of a section along ``direction`` through ``centre``.

    ``run_line`` is the section's mask on the line (plane samples, ``_STEP_MM`` apart) and ``c_mm`` the
    centre's offset on it. Each edge is the steepest HU fall (outward) on a cubic profile within
    ``max(2 mm, 0.75 voxel)`` of the mask's border; the mask border itself when the profile has no fall.
    """
    run = _run_around(run_line, int(round(c_mm / _STEP_MM)) + len(run_line) // 2)
    if run is None:
        return None
    a, b = run
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
