"""Intervertebral discs along the spine: where one vertebral level ends and the next begins.

Two signals along the canal, on the body core region (see :func:`pvp_plan.segment.canal.core_region`):

* endplates: slices where a large share of the core is denser than the endplate threshold; two such
  peaks close together (disc + endplates, <= ~12 mm between their facing edges: an endplate tilted in the
  lordosis spreads over several slices) enclose a disc, if some slice between is mostly softer than an endplate;
* the median HU of the core: a disc is a narrow valley between the dense endplates (a dip inside a
  body's trabecular bone is wider, since the endplates are a body height apart).

Candidates are then chained with an anatomical prior on the distance between discs and refined
into oblique planes matched to the image: the tilted, shifted plane that is darkest between two
bony slabs (lordosis, the lumbosacral angle, kyphosis, scoliosis).
Positions are in working-grid millimetres (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks

from pvp_plan.segment.canal import CanalTrack
from pvp_plan.segment.column_options import ColumnOptions

_INVALID = -1000.0
#: An endplate pair and a median-HU valley this close (mm) are the same disc.
_SAME_DISC_MM = 8.0
#: A candidate wider than ``ColumnOptions.disc_pair_max_mm`` plus this (mm) is not a disc (the dip inside a body).
_VALLEY_SLACK_MM = 4.5
#: An endplate's slices: those holding at least this share of its peak's endplate-dense core.
_EDGE_SHARE = 0.5
#: Between two endplates some slice has less than this share of its core endplate-dense (the disc; its median HU
#: under the endplate threshold). Two peaks without one are a dip inside dense bone (a sclerotic body).
_DISC_DENSE_SHARE_MAX = 0.5
#: Score lost per mm a gap between chained discs differs from the spine's pitch.
_IRREGULARITY_WEIGHT = 5.0
#: A disc plane tilted coronally this much (degrees) more than its neighbours' mean is matched again from their
#: tilt: at L5/S1 the canal, lost among the foramina, can start the search 20-30 degrees off.
_CORONAL_JUMP_DEG = 15.0


@dataclass(frozen=True)
class DiscPlane:
    """A disc as a plane: ``point_mm`` (z, y, x) on the working grid and unit ``normal`` pointing cranially."""

    point_mm: np.ndarray
    normal: np.ndarray

    def signed_distance_mm(self, points_mm: np.ndarray) -> np.ndarray:
        return (points_mm - self.point_mm) @ self.normal


@dataclass(frozen=True)
class DiscProfile:
    median_hu: np.ndarray
    endplate_fraction: np.ndarray
    trabecular_hu: float
    endplate_hu: float


def core_profile(hu: np.ndarray, core: np.ndarray, z_range: tuple[int, int], options: ColumnOptions) -> DiscProfile:
    """Per-slice median HU and share of endplate-dense voxels in the body core."""
    nz = hu.shape[0]
    vals = hu[core]
    vals = vals[vals > -50.0]
    trabecular = float(np.median(vals)) if vals.size else 150.0
    endplate = max(options.endplate_min_hu, trabecular + 60.0)
    med = np.full(nz, np.nan)
    frac = np.zeros(nz)
    for z in range(*z_range):
        v = hu[z][core[z]]
        if v.size:
            med[z] = np.median(v)
            frac[z] = np.mean(v > endplate)
    return DiscProfile(median_hu=med, endplate_fraction=frac, trabecular_hu=trabecular, endplate_hu=endplate)


def _endplate_pairs(profile: DiscProfile, z_range, spacing_z: float, options: ColumnOptions):
    """Discs between two endplate peaks: ``[(slice, width mm, weight, rescued)]``; ``rescued`` when the peaks lie
    too far apart and only their facing edges are close enough (a tilted endplate)."""
    z0, z1 = z_range
    peaks, _ = find_peaks(profile.endplate_fraction[z0:z1], height=0.12, prominence=0.08)
    peaks = peaks + z0
    limit = options.disc_pair_max_mm + 1.5 * spacing_z
    frac = profile.endplate_fraction
    out = []
    for a, b in zip(peaks[:-1], peaks[1:]):
        if b - a < 2 or frac[a + 1:b].min() >= _DISC_DENSE_SHARE_MAX:
            continue  # no slice between where most of the core is softer than an endplate: a dip in dense bone
        # a tilted endplate (lordosis) spreads over several slices and its peak may lie at its far side: the disc
        # lies between the two endplates' facing edges, which stop short of the sparsest slice between them
        low = a + 1 + int(np.argmin(frac[a + 1:b]))
        ia = max(a, min(_facing_edge(frac, a, b), low - 1))
        ib = min(b, max(_facing_edge(frac, b, a), low + 1))
        if (ib - ia) * spacing_z <= limit:
            zmin = ia + 1 + int(np.nanargmin(profile.median_hu[ia + 1:ib]))
            rescued = (b - a) * spacing_z > limit  # found by the facing edges only
            out.append((zmin, (ib - ia) * spacing_z, 100.0 + 100.0 * min(frac[a], frac[b]), rescued))
    return out


def _facing_edge(frac: np.ndarray, peak: int, toward: int) -> int:
    """The last slice from ``peak`` toward ``toward`` (exclusive) whose endplate share is at least
    ``_EDGE_SHARE`` of the peak's."""
    step = 1 if toward > peak else -1
    i = peak
    while i + step != toward and frac[i + step] >= _EDGE_SHARE * frac[peak]:
        i += step
    return i


def _valleys(profile: DiscProfile, z_range, spacing_z: float):
    """Median-HU valleys with the width (mm) between the flanking dense slices and their prominence."""
    z0, z1 = z_range
    m = np.nan_to_num(profile.median_hu[z0:z1], nan=float(np.nanmedian(profile.median_hu[z0:z1])))
    peaks, props = find_peaks(-m, prominence=20.0, distance=max(1, int(round(10.0 / spacing_z))))
    out = []
    for p, prom in zip(peaks, props["prominences"]):
        level = m[p] + 0.6 * min(prom, 60.0)
        left = next((q for q in range(p - 1, -1, -1) if m[q] > level), None)
        right = next((q for q in range(p + 1, m.size) if m[q] > level), None)
        if left is not None and right is not None:
            out.append((p + z0, (right - left) * spacing_z, float(prom)))
    return out


def _chain(candidates, spacing_z: float, options: ColumnOptions) -> list[int]:
    """Best-scoring sequence of candidates whose spacing is a plausible vertebral pitch, without splits.

    A gap far shorter than the others means a body was cut in two: one of its two boundaries is struck off and the
    chain drawn again from the candidates left, keeping whichever of the two redrawn chains scores better
    (:func:`_chain_score`, at the pitch of the other gaps). Striking off the weaker boundary alone lost the real
    L4/L5 disc to a fake one inside L5 (the canal lost among the foramina, the core read on its posterior wall):
    on the 3 mm abdomen resampled to 2 mm every level was then named one too high.
    """
    if not candidates:
        return []
    cands = sorted(candidates)
    z = np.array([c[0] for c in cands], float) * spacing_z
    w = np.array([c[2] if c[1] <= options.disc_pair_max_mm + _VALLEY_SLACK_MM else _INVALID for c in cands])
    chain = _draw_chain(cands, z, w, options)
    while len(chain) >= 4:
        gaps = np.diff(z[chain])
        k = int(np.argmin(gaps))
        pitch = _pitch_beside(gaps, k)
        if gaps[k] >= 0.65 * pitch:
            break
        redrawn = []
        for drop in sorted((chain[k], chain[k + 1]), key=lambda i: w[i]):  # the weaker first: it wins a tie
            left = w.copy()
            left[drop] = _INVALID
            again = _draw_chain(cands, z, left, options)
            redrawn.append((_chain_score(again, z, left, pitch), again, left))
        _, chain, w = max(redrawn, key=lambda r: r[0])
    return [int(cands[i][0]) for i in chain]


def _pitch_beside(gaps: np.ndarray, k: int) -> float:
    """The spine's pitch (mm) to judge gap ``k`` by: the median of the gaps other than it and its two neighbours
    (either may be the other half of a body cut in two, or lie next to one), of the others when fewer than two
    would be left."""
    others = np.delete(gaps, [j for j in (k - 1, k, k + 1) if 0 <= j < len(gaps)])
    return float(np.median(others if len(others) >= 2 else np.delete(gaps, k)))


def _draw_chain(cands, z: np.ndarray, w: np.ndarray, options: ColumnOptions) -> list[int]:
    """:func:`_best_chain` (sorted), drawn a second time at its own median pitch when it has three or more discs
    (neighbouring bodies differ little)."""
    chain = _best_chain(cands, z, w, options.body_pitch_mm, pitch_mm=None)
    if len(chain) >= 3:
        pitch = float(np.median(np.diff(sorted(z[i] for i in chain))))
        chain = _best_chain(cands, z, w, options.body_pitch_mm, pitch_mm=pitch)
    return sorted(chain)


def _chain_score(chain: list[int], z: np.ndarray, w: np.ndarray, pitch_mm: float) -> float:
    """What :func:`_best_chain` maximises, for one chain at a given pitch: its weights less the irregularity."""
    return float(w[chain].sum() - _IRREGULARITY_WEIGHT * np.abs(np.diff(z[chain]) - pitch_mm).sum())


def _best_chain(cands, z: np.ndarray, w: np.ndarray, pitch_range, *, pitch_mm: float | None) -> list[int]:
    """Indices of the highest-scoring candidate chain with gaps in ``pitch_range`` (and close to ``pitch_mm``)."""
    lo, hi = pitch_range
    best, prev = w.copy(), np.full(len(cands), -1)
    for i in range(len(cands)):
        for j in range(i):
            gap = z[i] - z[j]
            if not lo <= gap <= hi:
                continue
            score = best[j] + w[i] - (0.0 if pitch_mm is None else _IRREGULARITY_WEIGHT * abs(gap - pitch_mm))
            if score > best[i]:
                best[i], prev[i] = score, j
    i = int(np.argmax(best))
    chain = []
    while i >= 0:
        if w[i] > _INVALID:
            chain.append(i)
        i = prev[i]
    return chain


def find_disc_slices(hu: np.ndarray, spacing_mm, core: np.ndarray, track: CanalTrack,
                     options: ColumnOptions) -> tuple[list[int], DiscProfile]:
    """Working-grid slice index of each disc, caudal to cranial, and the core profile they came from."""
    profile = core_profile(hu, core, track.z_range, options)
    pairs = _endplate_pairs(profile, track.z_range, spacing_mm[0], options)
    valleys = _valleys(profile, track.z_range, spacing_mm[0])

    def near(a: int, b: int) -> bool:
        return abs(a - b) * spacing_mm[0] <= _SAME_DISC_MM

    # a disc seen by both signals weighs what the stronger says: a pair's weight (100-200) under a deep valley
    # lost the L1/L2 and T12/L1 discs around a wedge fracture to the valley inside the collapsed body (3 mm)
    narrow = [(v, p) for v, width, p in valleys if width <= options.disc_pair_max_mm + _VALLEY_SLACK_MM]
    cands = []
    for z, width, w, rescued in pairs:
        same = [(v, p) for v, p in narrow if near(v, z)]
        if rescued and same:  # between smeared endplates the darkest slice places the disc better
            z = max(same, key=lambda vp: vp[1])[0]
        cands.append((z, width, max([w] + [p for _, p in same])))
    cands += [c for c in valleys if not any(near(c[0], z) for z, *_ in pairs)]
    return _chain(cands, spacing_mm[0], options), profile


def disc_planes(disc_slices: list[int], hu: np.ndarray, spacing_mm, track: CanalTrack, options: ColumnOptions,
                body_offset_mm: float = 12.0, axis_window_mm: float = 15.0) -> list[DiscPlane]:
    """One plane per disc: through the column's axis at the disc, then matched to the disc in the image.

    The axis direction at a disc is the least-squares line through the track's points within
    ``axis_window_mm`` of it, after a median filter over ``2 * axis_window_mm`` has removed the canal
    centre's jumps (at 3 mm the canal is lost among the foramina at L5-S1 for a few slices, and a
    two-point tangent there tilted the L5/S1 plane 23 degrees coronally through the L5 body).

    The search may shift a plane by at most ``options.disc_shift_fraction`` of the distance to the
    nearest neighbouring disc, so a dark band inside a body (basivertebral veins) is never taken
    for the disc.
    """
    nz = hu.shape[0]
    sp = np.asarray(spacing_mm)
    size = max(3, int(round(2.0 * axis_window_mm / sp[0])) | 1)
    wall = ndimage.median_filter(track.wall_y, size=size, mode="nearest")
    centre_x = ndimage.median_filter(track.center_yx[:, 1], size=size, mode="nearest")
    axis_pts = np.stack([np.arange(nz) * sp[0], (wall - body_offset_mm / sp[1]) * sp[1], centre_x * sp[2]], axis=1)
    half = max(2, int(round(axis_window_mm / sp[0])))
    planes, starts = [], []
    for i, zd in enumerate(disc_slices):
        window = axis_pts[max(0, zd - half): zd + half + 1]
        direction = np.linalg.svd(window - window.mean(axis=0), full_matrices=False)[2][0]
        plane = DiscPlane(point_mm=axis_pts[zd], normal=direction if direction[0] > 0 else -direction)
        gaps = [abs(disc_slices[j] - zd) * sp[0] for j in (i - 1, i + 1) if 0 <= j < len(disc_slices)]
        shift = options.disc_shift_fraction * (min(gaps) if gaps else options.body_pitch_mm[0])
        planes.append(match_disc_plane(plane, hu, sp, track, sagittal_deg=options.disc_tilt_search_deg,
                                       max_shift_mm=shift))
        starts.append((plane, shift))
    for i, (plane, shift) in enumerate(starts):
        beside = [coronal_tilt_deg(planes[j].normal) for j in (i - 1, i + 1) if 0 <= j < len(planes)]
        if beside and abs(coronal_tilt_deg(planes[i].normal) - np.mean(beside)) > _CORONAL_JUMP_DEG:
            planes[i] = match_disc_plane(DiscPlane(plane.point_mm, _with_coronal_tilt(plane.normal, np.mean(beside))),
                                         hu, sp, track, sagittal_deg=options.disc_tilt_search_deg,
                                         max_shift_mm=shift)
    return planes


def coronal_tilt_deg(normal: np.ndarray) -> float:
    """A plane's tilt (degrees) in the coronal (z-x) plane, from its unit normal (z, y, x)."""
    return float(np.degrees(np.arctan2(normal[2], normal[0])))


def _with_coronal_tilt(normal: np.ndarray, degrees: float) -> np.ndarray:
    """``normal`` (z, y, x) with its coronal tilt set to ``degrees`` and its sagittal tilt kept."""
    v = np.array([1.0, normal[1] / normal[0], np.tan(np.radians(degrees))])
    return v / np.linalg.norm(v)


def _slab_mean(cum_hu: np.ndarray, cum_n: np.ndarray, reach_mm: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean HU of voxels whose signed distance lies in [lo, hi] mm, from cumulative 1 mm bin sums."""
    nb = len(cum_hu)
    i = np.clip((lo + reach_mm).astype(int) - 1, -1, nb - 1)
    j = np.clip((hi + reach_mm).astype(int), 0, nb - 1)
    total = cum_hu[j] - np.where(i >= 0, cum_hu[np.maximum(i, 0)], 0.0)
    count = cum_n[j] - np.where(i >= 0, cum_n[np.maximum(i, 0)], 0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _tilted_normals(normal: np.ndarray, sagittal_deg: float, coronal_deg: float, step_deg: float) -> np.ndarray:
    """Unit normals (z, y, x) around ``normal``: tilted in the sagittal (z-y) and coronal (z-x) planes."""
    base_sag = np.degrees(np.arctan2(normal[1], normal[0]))
    base_cor = np.degrees(np.arctan2(normal[2], normal[0]))
    out = []
    for a in np.arange(-sagittal_deg, sagittal_deg + 1e-6, step_deg):
        for b in np.arange(-coronal_deg, coronal_deg + 1e-6, step_deg):
            v = np.array([1.0, np.tan(np.radians(base_sag + a)), np.tan(np.radians(base_cor + b))])
            out.append(v / np.linalg.norm(v))
    return np.array(out)


def match_disc_plane(plane: DiscPlane, hu: np.ndarray, sp: np.ndarray, track: CanalTrack, *,
                     reach_mm: float = 22.0, disc_half_mm: float = 2.0, bone_mm: tuple[float, float] = (5.0, 12.0),
                     sagittal_deg: float = 35.0, coronal_deg: float = 15.0, step_deg: float = 2.5,
                     min_contrast_hu: float = 25.0, max_shift_mm: float = 11.0, depth_mm: float = 22.0,
                     half_width_mm: float = 12.0) -> DiscPlane:
    """The oblique plane through the body column that best looks like a disc: dark between two bony slabs.

    Every candidate plane (tilted up to ``sagittal_deg`` / ``coronal_deg`` from ``plane`` and shifted
    up to ``max_shift_mm`` along its normal) is scored on the voxels in front of the canal (2 to ``depth_mm``
    in front of its wall, within ``half_width_mm`` of its centre) by the
    mean HU of a ``2 * disc_half_mm`` slab on the plane against the darker of the two bony slabs
    ``bone_mm`` above and below it. The best candidate wins if its contrast reaches ``min_contrast_hu``;
    otherwise ``plane`` is returned unchanged. Positions are working-grid mm (z, y, x).

    ``depth_mm`` keeps the scored voxels inside the body: mid-thoracic bodies are about 20-27 mm deep. At 30 mm
    the window reached past the front of the real chest CT's T4-T7 into prevertebral fat and the contrast-filled
    aorta, whose bands scored better than the disc on planes tilted 23-31 degrees: T5 took a wedge of T6
    (T6 read 40 % of its neighbours' mean volume).
    """
    nz, ny, nx = hu.shape
    z0 = max(0, int((plane.point_mm[0] - reach_mm) / sp[0]))
    z1 = min(nz, int((plane.point_mm[0] + reach_mm) / sp[0]) + 1)
    zz, yy, xx = np.nonzero(np.ones((z1 - z0, ny, nx), bool))
    zz = zz + z0
    wall = track.wall_y[zz] * sp[1]
    keep = (np.abs(xx * sp[2] - track.center_yx[zz, 1] * sp[2]) < half_width_mm) & (yy * sp[1] > wall - depth_mm) \
        & (yy * sp[1] < wall - 2.0)
    pos = np.stack([zz[keep] * sp[0], yy[keep] * sp[1], xx[keep] * sp[2]], axis=1) - plane.point_mm
    vals = hu[zz[keep], yy[keep], xx[keep]].astype(np.float64)
    if len(vals) < 50:
        return plane
    nb = int(np.ceil(2.0 * reach_mm + 1.0))  # 1 mm bins of signed distance from -reach_mm
    half = min(reach_mm / 2.0, max_shift_mm)
    offs = np.arange(-half, half + 1.0)
    best = (min_contrast_hu, None)
    for normal in _tilted_normals(plane.normal, sagittal_deg, coronal_deg, step_deg):
        b = np.clip(np.round(pos @ normal + reach_mm).astype(int), 0, nb - 1)
        total = np.bincount(b, vals, nb)
        count = np.bincount(b, minlength=nb)
        cum_hu, cum_n = np.cumsum(total), np.cumsum(count)
        slab_mean = partial(_slab_mean, cum_hu, cum_n, reach_mm)
        disc = slab_mean(offs - disc_half_mm, offs + disc_half_mm)
        above = slab_mean(offs + bone_mm[0], offs + bone_mm[1])
        below = slab_mean(offs - bone_mm[1], offs - bone_mm[0])
        contrast = np.fmin(above, below) - disc
        if np.all(np.isnan(contrast)):
            continue
        i = int(np.nanargmax(contrast))
        if contrast[i] > best[0]:
            best = (float(contrast[i]), plane.point_mm + offs[i] * normal, normal)
    if best[1] is None:
        return plane
    return DiscPlane(point_mm=best[1], normal=best[2])
