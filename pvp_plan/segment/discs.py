"""Intervertebral discs along the spine: where one vertebral level ends and the next begins.

Two signals along the canal, on the body core region (see :func:`pvp_plan.segment.canal.core_region`):

* endplates: slices where a large share of the core is denser than the endplate threshold; two such
  peaks close together (disc + endplates, <= ~12 mm) enclose a disc;
* the median HU of the core: a disc is a narrow valley between the dense endplates (a dip inside a
  body's trabecular bone is wider, since the endplates are a body height apart).

Candidates are then chained with an anatomical prior on the distance between discs and refined
into oblique planes fitted to the disc's own low-HU voxels (lordosis, kyphosis, scoliosis).
Positions are in working-grid millimetres (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from pvp_plan.segment.canal import CanalTrack
from pvp_plan.segment.column_options import ColumnOptions

_INVALID = -1000.0


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
    z0, z1 = z_range
    peaks, _ = find_peaks(profile.endplate_fraction[z0:z1], height=0.12, prominence=0.08)
    peaks = peaks + z0
    limit = options.disc_pair_max_mm + 1.5 * spacing_z
    out = []
    for a, b in zip(peaks[:-1], peaks[1:]):
        if 2 <= b - a and (b - a) * spacing_z <= limit:
            zmin = a + 1 + int(np.nanargmin(profile.median_hu[a + 1:b]))
            out.append((zmin, (b - a) * spacing_z, 100.0 + 100.0 * min(profile.endplate_fraction[a],
                                                                         profile.endplate_fraction[b])))
    return out


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
    """Best-scoring sequence of candidates whose spacing is a plausible vertebral pitch; then prune splits."""
    if not candidates:
        return []
    cands = sorted(candidates)
    z = np.array([c[0] for c in cands], float) * spacing_z
    w = np.array([c[2] if c[1] <= options.disc_pair_max_mm + 4.5 else _INVALID for c in cands])
    chain = _best_chain(cands, z, w, options.body_pitch_mm, pitch_mm=None)
    if len(chain) >= 3:  # second pass: prefer the regular pitch of this spine (neighbouring bodies differ little)
        pitch = float(np.median(np.diff(sorted(z[i] for i in chain))))
        chain = _best_chain(cands, z, w, options.body_pitch_mm, pitch_mm=pitch)
    chain = sorted((cands[i][0], w[i]) for i in chain)
    # a gap far shorter than the others means a body was cut in two: drop the weaker boundary
    while len(chain) >= 4:
        gaps = np.diff([c[0] * spacing_z for c in chain])
        k = int(np.argmin(gaps))
        if gaps[k] >= 0.65 * np.median(gaps):
            break
        chain.pop(k if chain[k][1] < chain[k + 1][1] else k + 1)
    return [int(c[0]) for c in chain]


def _best_chain(cands, z: np.ndarray, w: np.ndarray, pitch_range, *, pitch_mm: float | None,
                irregularity_weight: float = 5.0) -> list[int]:
    """Indices of the highest-scoring candidate chain with gaps in ``pitch_range`` (and close to ``pitch_mm``)."""
    lo, hi = pitch_range
    best, prev = w.copy(), np.full(len(cands), -1)
    for i in range(len(cands)):
        for j in range(i):
            gap = z[i] - z[j]
            if not lo <= gap <= hi:
                continue
            score = best[j] + w[i] - (0.0 if pitch_mm is None else irregularity_weight * abs(gap - pitch_mm))
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
    cands = list(pairs)
    taken = [c[0] for c in pairs]
    for c in _valleys(profile, track.z_range, spacing_mm[0]):
        if all(abs(c[0] - t) * spacing_mm[0] > 8.0 for t in taken):
            cands.append(c)
    return _chain(cands, spacing_mm[0], options), profile


def disc_planes(disc_slices: list[int], hu: np.ndarray, spacing_mm, track: CanalTrack, disc_max_hu: float,
                body_offset_mm: float = 12.0) -> list[DiscPlane]:
    """One plane per disc: through the column's axis at the disc, refitted to the disc's low-HU voxels."""
    nz = hu.shape[0]
    sp = np.asarray(spacing_mm)
    axis_pts = np.stack([np.arange(nz) * sp[0], (track.wall_y - body_offset_mm / sp[1]) * sp[1],
                         track.center_yx[:, 1] * sp[2]], axis=1)
    planes = []
    for zd in disc_slices:
        a, b = max(0, zd - 4), min(nz - 1, zd + 4)
        t = axis_pts[b] - axis_pts[a]
        plane = DiscPlane(point_mm=axis_pts[zd], normal=t / np.linalg.norm(t))
        planes.append(_fit_to_disc(plane, hu, sp, track, disc_max_hu))
    return planes


def _fit_to_disc(plane: DiscPlane, hu: np.ndarray, sp: np.ndarray, track: CanalTrack, disc_max_hu: float,
                 band_mm: float = 9.0) -> DiscPlane:
    """Refit a disc plane by PCA of the low-HU voxels near it in front of the canal (<= 40 deg correction)."""
    nz, ny, nx = hu.shape
    z0 = max(0, int((plane.point_mm[0] - 1.5 * band_mm) / sp[0]))
    z1 = min(nz, int((plane.point_mm[0] + 1.5 * band_mm) / sp[0]) + 1)
    zz, yy, xx = np.mgrid[z0:z1, 0:ny, 0:nx]
    pos = np.stack([zz * sp[0], yy * sp[1], xx * sp[2]], -1)
    wall = track.wall_y[zz] * sp[1]
    xc = track.center_yx[zz, 1] * sp[2]
    sub = hu[z0:z1]
    sel = (np.abs(plane.signed_distance_mm(pos)) < band_mm) & (np.abs(xx * sp[2] - xc) < 12.0) \
        & (yy * sp[1] > wall - 30.0) & (yy * sp[1] < wall - 2.0) & (sub < disc_max_hu) & (sub > 0)
    pts = pos[sel]
    if len(pts) < 15:
        return plane
    centre = pts.mean(axis=0)
    normal = np.linalg.svd(pts - centre, full_matrices=False)[2][-1]
    normal = normal if normal[0] >= 0 else -normal
    if np.degrees(np.arccos(np.clip(normal @ plane.normal, -1.0, 1.0))) > 40.0:
        return plane
    return DiscPlane(point_mm=centre, normal=normal)
