"""Landmarks of a vertebral body and the bone around its level, read on the CT (issue 5).

The segmentation labels bodies only, so the posterior elements are found on the CT around each body
(:func:`level_bone`):

1. an adaptive bone threshold per level, ``BONE_EDGE_FRACTION`` of the way from the local soft tissue
   (median HU behind the body) to the local cortex (90th percentile of the bone HU there): at 3 mm the
   pedicle cortex reads 300-800 HU and its cancellous core may read like soft tissue;
2. the cortical shells closed (a ~2 mm closing) and, per axial slice, the holes they enclose filled,
   except the spinal canal (:mod:`pvp_plan.needle.canal`);
3. the cancellous core between a pedicle's superior and inferior walls added where it reads above soft
   tissue (``CANCELLOUS_EDGE_FRACTION``), though below the bone threshold (3 mm voxels);
4. the pedicle cores enclosed by their four walls in coronal planes, whatever their HU
   (:func:`_coronal_cores`), where a pedicle may lie (:func:`_pedicle_columns`): a fatty pedicle core reads
   like soft tissue (about -50 to 60 HU at 3 mm). On request (``partial_volume_walls``, the planner's
   second reading when the first finds no pedicle or one that is not a bone bridge), a wall that reads only
   above the cancellous edge closes the ring too (:func:`_above_cancellous_edge`).

Frames: arrays in index order (z, y, x), on the CT grid or on a level's box (``LevelBone.origin_index``);
points LPS (x, y, z) in mm; intensities in HU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.label_boxes import BoxedMask
from pvp_plan.needle.canal import fill_and_canal
from pvp_plan.rules import needle as R

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
#: Largest pedicle core filled in a coronal plane (mm^2): the largest published isthmus height by the largest
#: lumbar width, each less its two cortices ((18 - 2) x (18 - 2) mm). The foramen and the interlaminar space are
#: larger, or open to the canal or the soft tissue around.
_MAX_CORE_MM2 = ((R.PEDICLE_HEIGHT_MM.high - 2.0 * R.PEDICLE_CORTEX_MM.value)
                 * (R.PEDICLE_WIDTH_LUMBAR_MM.high - 2.0 * R.PEDICLE_CORTEX_MM.value))


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
    partial_volume_walls: bool = False  # coronal pedicle rings closed by partial-volume walls too

    @property
    def cancellous_edge_hu(self) -> float:
        """HU above which a voxel may hold cancellous bone or a thin wall under partial volume
        (``CANCELLOUS_EDGE_FRACTION`` of the way from the local soft tissue to the local cortex)."""
        return _cancellous_edge_hu(self.soft_tissue_hu, self.cortex_hu)

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
        """The bone threshold (HU) in words, with how it was set."""
        if not self.adaptive:
            return f"bone > {self.bone_hu:.0f} HU (set by the caller)"
        return (f"bone > {self.bone_hu:.0f} HU ({BONE_EDGE_FRACTION:.0%} of the way from the local soft tissue, "
                f"{self.soft_tissue_hu:.0f} HU, to the local cortex, {self.cortex_hu:.0f} HU)")


def body_frame(ct: CTVolume, body: np.ndarray | BoxedMask, *,
               spine_axis_lps: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 1.0)) -> BodyFrame:
    """Posterior / anterior wall and midline of a body mask on ``ct``'s grid (index space; a full-size boolean
    array or a :class:`~pvp_plan.label_boxes.BoxedMask`); ``spine_axis_lps`` is the spine's cranio-caudal axis at
    the body (LPS, unit, cranial: ``BodyInfo.axis_lps``)."""
    idx = BoxedMask.of(body).argwhere()
    zc, _, xc = idx.mean(axis=0)
    half_x = max(1, int(round(4.0 / ct.spacing_mm[2])))
    near = idx[(np.abs(idx[:, 2] - xc) <= half_x) & (np.abs(idx[:, 0] - zc) <= max(1, 4.0 / ct.spacing_mm[0]))]
    near = near if len(near) else idx
    return BodyFrame(z_range=(int(idx[:, 0].min()), int(idx[:, 0].max())), midline_x=float(xc),
                     posterior_wall_y=float(near[:, 1].max()), anterior_wall_y=float(near[:, 1].min()),
                     centroid_lps_mm=ct.index_to_lps(idx.mean(axis=0)),
                     spine_axis_lps=np.asarray(spine_axis_lps, float) / np.linalg.norm(spine_axis_lps))


def level_bone(ct: CTVolume, body: np.ndarray | BoxedMask, frame: BodyFrame, *, bone_hu: float | None = None,
               partial_volume_walls: bool = False) -> LevelBone:
    """Filled bone and spinal canal around one body (method in the module docstring).

    Parameters
    ----------
    ct : CTVolume
    body : np.ndarray or BoxedMask
        bool (z, y, x) mask of the body on ``ct``'s grid (full size, or boxed).
    frame : BodyFrame
    bone_hu : float, optional
        Fixed bone threshold in HU; None (default) for the adaptive threshold of the level.
    partial_volume_walls : bool
        Close the coronal pedicle rings with walls that read only above the cancellous edge as well
        (:func:`_above_cancellous_edge`; adaptive threshold only). Default False.
    """
    sp = np.asarray(ct.spacing_mm, float)
    z0, z1 = frame.z_range
    lo = np.array([z0 - 5.0 / sp[0], frame.anterior_wall_y - 5.0 / sp[1], frame.midline_x - 55.0 / sp[2]])
    hi = np.array([z1 + 5.0 / sp[0], frame.posterior_wall_y + 60.0 / sp[1], frame.midline_x + 55.0 / sp[2]])
    lo = np.maximum(np.floor(lo), 0).astype(int)
    hi = np.minimum(np.ceil(hi).astype(int) + 1, ct.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    hu = ct.hu[box].astype(np.float32)
    body_b = BoxedMask.of(body).in_box(box)
    xm, ypw = frame.midline_x - lo[2], frame.posterior_wall_y - lo[1]
    soft, cortex = _local_contrast(hu[:, int(np.ceil(ypw)) + 1:])
    thr = max(MIN_BONE_HU, soft + BONE_EDGE_FRACTION * (cortex - soft)) if bone_hu is None else float(bone_hu)
    r = np.maximum(1, np.round(_CLOSING_RADIUS_MM / sp)).astype(int)
    g = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    ball = sum((gi / ri) ** 2 for gi, ri in zip(g, r, strict=True)) <= 1.0
    bone = ndimage.binary_closing(np.pad(hu > thr, [(ri, ri) for ri in r]), ball)
    bone = bone[tuple(slice(ri, -ri) for ri in r)]
    filled, canal, closed = fill_and_canal(bone, body_b, xm=xm, ypw=ypw, spacing_mm=sp)
    cancellous = _cancellous_hu(hu, body_b, sp)
    pv_walls = partial_volume_walls and bone_hu is None
    if bone_hu is None:  # a threshold set by the caller is taken as it is
        above_edge = _above_cancellous_edge(hu, _cancellous_edge_hu(soft, cortex), spacing_mm=sp)
        filled |= _cancellous_core(bone, above_edge, spacing_mm=sp) & ~canal & ~body_b
    walls = filled | body_b
    if pv_walls:  # walls under partial volume close the rings too (their voxels are not added to the bone)
        walls |= above_edge & ~canal
    filled |= _coronal_cores(walls, canal | ~_pedicle_columns(hu.shape, xm, sp),
                             y_range=(int(np.ceil(ypw)), _canal_back_row(canal, ypw, sp)), spacing_mm=sp)
    return LevelBone(origin_index=lo.astype(float), soft_tissue_hu=soft, cortex_hu=cortex, bone_hu=thr,
                     adaptive=bone_hu is None, filled=filled, canal=canal, ring_closed=closed, body=body_b,
                     hu_spline=ndimage.spline_filter(hu, order=3).astype(np.float32),
                     cancellous_hu=cancellous, partial_volume_walls=pv_walls)


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


def _cancellous_edge_hu(soft_hu: float, cortex_hu: float) -> float:
    """HU ``CANCELLOUS_EDGE_FRACTION`` of the way from the local soft tissue to the local cortex: above it a
    voxel may hold cancellous bone or a thin wall under partial volume."""
    return soft_hu + CANCELLOUS_EDGE_FRACTION * (cortex_hu - soft_hu)


def _cancellous_core(bone: np.ndarray, above_edge: np.ndarray, *, spacing_mm) -> np.ndarray:
    """Cancellous bone between a pedicle's superior and inferior walls that the bone threshold leaves out.

    At 3 mm voxels a pedicle's core (100-150 HU) reads below the threshold, and so may its thin lateral wall:
    an axial slice through the pedicle then shows one cortical plate. Its superior and inferior walls lie
    in the slice plane and read fully. A voxel is cancellous bone when bone lies above and below it within
    ``_CANCELLOUS_GAP_MM`` (a 1-D closing along the slice axis z) and it is in ``above_edge``
    (:func:`_above_cancellous_edge`; soft tissue reads below: the foramen and the joints between two levels
    stay open).
    """
    sp = np.asarray(spacing_mm, float)
    n = int(np.floor(_CANCELLOUS_GAP_MM / sp[0])) + 2  # a line of n voxels bridges gaps of up to n - 2 voxels
    padded = np.pad(bone, [(n, n), (0, 0), (0, 0)])
    between = ndimage.binary_closing(padded, np.ones((n, 1, 1), bool))[n:-n]
    return between & above_edge & ~bone


def _above_cancellous_edge(hu: np.ndarray, low_hu: float, *, spacing_mm) -> np.ndarray:
    """Voxels whose HU, smoothed over ``_CANCELLOUS_SMOOTH_MM``, is above ``low_hu`` (the cancellous edge,
    :func:`_cancellous_edge_hu`; about 90-130 HU at 3 mm): cancellous bone, or a pedicle wall seen under
    partial volume. Muscle and fat read below the edge.

    Cancellous bone between two walls is bone (:func:`_cancellous_core`). As walls, these voxels only close
    rings (:func:`_coronal_cores`, the planner's second reading) and are not added to the bone. A pedicle's
    cortex is about 1 mm thick (``PEDICLE_CORTEX_MM``): in a 3 mm voxel beside fatty marrow it reads about a
    third of its contrast, 100-150 HU, under the bone threshold. Its ring then reads open in the coronal plane
    and the fatty core inside it is left out.
    """
    return ndimage.gaussian_filter(hu, _CANCELLOUS_SMOOTH_MM / np.asarray(spacing_mm, float)) > low_hu


def _canal_back_row(canal: np.ndarray, ypw: float, spacing_mm) -> int:
    """Box row (y) of the canal's back: its deepest row, within ``CANAL_DEPTH_MM.high`` of the body's posterior
    wall (row ``ypw``); the plausible depth's low bound when there is no canal."""
    rows = np.nonzero(canal.any(axis=(0, 2)))[0]
    deepest = ypw + R.CANAL_DEPTH_MM.high / spacing_mm[1]
    back = float(rows.max()) if len(rows) else ypw + R.CANAL_DEPTH_MM.low / spacing_mm[1]
    return int(np.floor(min(back, deepest)))


def _pedicle_columns(shape: tuple[int, int, int], xm: float, spacing_mm) -> np.ndarray:
    """bool (1, 1, x) over a box of ``shape``: the columns where a pedicle may lie, from the narrowest canal's
    lateral wall (``CANAL_HALF_WIDTH_MM.low``) to the widest canal's wall plus the widest lumbar pedicle
    (``CANAL_HALF_WIDTH_MM.high`` + ``PEDICLE_WIDTH_LUMBAR_MM.high``) on either side of the midline ``xm``
    (box index): not the notch at the midline of the body's posterior wall, nor the soft tissue between a
    transverse process and the sacral ala."""
    lat_mm = np.abs(np.arange(shape[2]) - xm) * float(spacing_mm[2])
    reach_mm = R.CANAL_HALF_WIDTH_MM.high + R.PEDICLE_WIDTH_LUMBAR_MM.high
    return ((lat_mm >= R.CANAL_HALF_WIDTH_MM.low) & (lat_mm <= reach_mm))[None, None, :]


def _coronal_cores(solid: np.ndarray, outside: np.ndarray, *, y_range: tuple[int, int], spacing_mm) -> np.ndarray:
    """Pedicle cores enclosed by their walls in coronal planes, between the body and the canal's back.

    Lateral to the canal, a pedicle's section in a coronal plane (z, x) is a ring: its superior and inferior
    walls, the medial wall and the thin lateral wall. Its core may be fatty marrow that reads like soft tissue
    at 3 mm voxels (about -50 to 60 HU), below any HU cut that keeps muscle out, so it is found by enclosure:
    per coronal plane of ``y_range`` (box rows, inclusive), the holes of ``solid`` no larger than
    ``_MAX_CORE_MM2`` that do not touch ``outside`` (the canal, and where no pedicle lies). The foramen and
    the facet joints are open (to the canal, to the soft tissue around), and the interlaminar space lies
    behind the canal.

    Parameters
    ----------
    solid, outside : np.ndarray
        bool (z, y, x) on a level's box (``outside`` may broadcast): the filled bone and body; where no
        pedicle core lies (the spinal canal, the midline, far lateral).
    y_range : (int, int)
        First and last box row (y): the body's posterior wall and the canal's back.
    spacing_mm : (z, y, x) in mm
    """
    sp = np.asarray(spacing_mm, float)
    cores = np.zeros_like(solid)
    for y in range(max(y_range[0], 0), min(y_range[1], solid.shape[1] - 1) + 1):
        plane = solid[:, y, :]
        lab, n = ndimage.label(ndimage.binary_fill_holes(plane) & ~plane)
        if not n:
            continue
        areas = np.asarray(ndimage.sum(np.ones_like(plane), lab, range(1, n + 1))) * sp[0] * sp[2]
        keep = 1 + np.nonzero(areas <= _MAX_CORE_MM2)[0]
        keep = keep[~np.isin(keep, np.unique(lab[np.broadcast_to(outside, solid.shape)[:, y, :]]))]
        cores[:, y, :] = np.isin(lab, keep)
    return cores


def _local_contrast(hu_posterior: np.ndarray) -> tuple[float, float]:
    """(soft-tissue HU, cortex HU) behind the body: median of [-200, 150] HU, 90th percentile above 150 HU."""
    v = hu_posterior.ravel()
    soft_v, bone_v = v[(v > -200) & (v < 150)], v[v >= 150]
    soft = float(np.median(soft_v)) if soft_v.size else 40.0
    cortex = float(np.percentile(bone_v, 90)) if bone_v.size >= 20 else soft + 500.0
    return soft, cortex


def _height_mm(pts_lps: np.ndarray, frame: BodyFrame) -> np.ndarray:
    """Heights (mm) of LPS points (mm) along the body's spine axis from its centroid, positive cranially."""
    return (np.asarray(pts_lps, float) - frame.centroid_lps_mm) @ frame.spine_axis_lps


def sample_hu(ct: CTVolume, pts_lps: np.ndarray) -> np.ndarray:
    """Trilinear samples (float32 HU) of the CT at LPS points (mm, shape (n, 3)); -1024 (air) outside the grid."""
    idx = ct.lps_to_index(np.asarray(pts_lps, float).reshape(-1, 3)).T
    # sampled from the stored HU array as it is (no float copy of the whole CT per call), output in float32
    return ndimage.map_coordinates(ct.hu, idx, order=1, cval=-1024.0, output=np.float32)
