"""Trabecular HU statistics inside a vertebral body, away from the cortex."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from pvp_plan.components import largest_component

#: Smallest trabecular region (voxels) for statistics; below it the cortex margin is halved, then dropped.
MIN_TRABECULAR_VOXELS = 20
#: Gaussian smoothing (mm) before thresholding clusters, so single noisy voxels do not count.
SMOOTHING_SIGMA_MM = 1.0
#: Share of an axial section's anterior-posterior extent, from the front, over which the body's outline is taken
#: as convex (:func:`lesion_search_region`): behind it the posterior wall is concave.
CONVEX_FRONT_FRACTION = 0.75


@dataclass(frozen=True)
class TrabecularDensity:
    """HU statistics of the trabecular region and its largest low- and high-density clusters.

    Attributes
    ----------
    hu_mean, hu_median, hu_p05, hu_p95, hu_std : float
        Statistics of the (unsmoothed) HU inside the trabecular region.
    n_voxels : int
        Voxels in the trabecular region.
    margin_mm : float
        Distance from the body surface excluded (cortex), as actually used.
    low_fraction : float
        Share of the lesion-search region (:func:`lesion_search_region`) below ``low_hu`` (after light smoothing).
    low_cluster_fraction : float
        Share of the lesion-search region in the largest connected cluster below ``low_hu``.
    high_fraction, high_cluster_fraction : float
        The same above ``high_hu``.
    smoothed_sd_robust : float
        Robust standard deviation (1.4826 x MAD) of the smoothed HU in the trabecular region (noise + texture).
    low_hu_used, high_hu_used : float
        Cut-offs actually applied: ``low_hu`` is lowered to ``median - noise_sd * sd`` when noise would otherwise
        make the tail of normal or osteoporotic bone count as a lesion (kept when the median itself is below
        ``low_hu``: diffuse replacement); ``high_hu`` is used as given.
    low_cluster_cortex_fraction : float
        Share of the body's surface voxels that soft tissue connected to the largest low cluster reaches
        (cortical destruction; :func:`cortex_breach_fraction`).
    low_cluster_center_zyx : tuple of float or None
        Voxel index (z, y, x) of the largest low cluster's centre (for report images).
    high_cluster_center_zyx : tuple of float or None
        Voxel index (z, y, x) of the largest high cluster's centre.
    """

    hu_mean: float
    hu_median: float
    hu_p05: float
    hu_p95: float
    hu_std: float
    n_voxels: int
    margin_mm: float
    low_fraction: float
    low_cluster_fraction: float
    high_fraction: float
    high_cluster_fraction: float
    low_cluster_center_zyx: tuple[float, float, float] | None = None
    high_cluster_center_zyx: tuple[float, float, float] | None = None
    smoothed_sd_robust: float | None = None
    low_hu_used: float | None = None
    high_hu_used: float | None = None
    low_cluster_cortex_fraction: float = 0.0


def trabecular_region(mask: np.ndarray, *, spacing_mm: tuple[float, float, float], margin_mm: float
                      ) -> tuple[np.ndarray, float]:
    """Voxels of ``mask`` farther than ``margin_mm`` from its surface, and the margin actually used.

    The margin is halved, then dropped, when fewer than :data:`MIN_TRABECULAR_VOXELS` remain.
    """
    return _farther_than(mask, mask, spacing_mm=spacing_mm, margin_mm=margin_mm)


def _farther_than(mask: np.ndarray, outline: np.ndarray, *, spacing_mm, margin_mm: float) -> tuple[np.ndarray, float]:
    """Voxels of ``mask`` farther than ``margin_mm`` (mm) from the surface of ``outline`` (which holds ``mask``), and
    the margin used: halved, then dropped, when fewer than :data:`MIN_TRABECULAR_VOXELS` remain."""
    mask = np.asarray(mask, dtype=bool)
    dist = ndimage.distance_transform_edt(np.pad(outline, 1), sampling=spacing_mm)[1:-1, 1:-1, 1:-1]
    for m in (margin_mm, margin_mm / 2.0, 0.0):
        region = mask & (dist > m)
        if np.count_nonzero(region) >= MIN_TRABECULAR_VOXELS:
            return region, m
    return mask, 0.0


def convex_front_outline(mask: np.ndarray, front_fraction: float = CONVEX_FRONT_FRACTION) -> np.ndarray:
    """``mask`` (z, y, x; +y posterior) with each axial section's bays in front of its posterior part closed.

    A vertebral body's section is convex but for its posterior wall: in the front ``front_fraction`` of the
    section's extent along y, the outline is the section's convex hull. A lytic lesion that has broken the cortex
    leaves a bay there (its soft-tissue rim and the broken cortex outside the mask); this outline closes it.
    """
    out = np.asarray(mask, dtype=bool).copy()
    for z in np.flatnonzero(out.any(axis=(1, 2))):
        ys = np.flatnonzero(out[z].any(axis=1))
        hull = convex_hull_image(out[z])
        hull[int(np.ceil(ys[0] + front_fraction * (ys[-1] - ys[0]))):] = False
        out[z] |= hull
    return out


def lesion_search_region(mask: np.ndarray, *, spacing_mm: tuple[float, float, float], margin_mm: float
                         ) -> np.ndarray:
    """Voxels of ``mask`` farther than ``margin_mm`` from the body's outline (:func:`convex_front_outline`).

    The cortex margin for the soft-tissue (lytic) search: measured from the mask's own surface, a lesion that broke
    the cortex lies within the margin of the bay it opened and goes unseen. Falls back to
    :func:`trabecular_region`'s margins when fewer than :data:`MIN_TRABECULAR_VOXELS` remain.
    """
    return _farther_than(mask, convex_front_outline(mask), spacing_mm=spacing_mm, margin_mm=margin_mm)[0]


def _largest_cluster(sel: np.ndarray) -> tuple[int, tuple[float, float, float] | None, np.ndarray | None]:
    cluster = largest_component(sel)
    size = int(np.count_nonzero(cluster))
    if size == 0:
        return 0, None, None
    center = tuple(float(v) for v in np.argwhere(cluster).mean(axis=0))
    return size, center, cluster


def cortex_breach_fraction(cluster: np.ndarray | None, mask: np.ndarray, smooth: np.ndarray, *, low_hu: float
                           ) -> float:
    """Share of the body's surface voxels reached by soft tissue connected to ``cluster`` (cortical destruction).

    Soft tissue (smoothed HU below ``low_hu``) inside the body that touches the cluster is followed out to the
    outermost voxel layer of the mask; 0 when the cluster stays inside an intact shell.
    """
    if cluster is None:
        return 0.0
    surface = mask & ~ndimage.binary_erosion(mask)
    soft, _ = ndimage.label(mask & ((smooth < low_hu) | cluster))
    grown = np.isin(soft, np.unique(soft[cluster])) & (soft > 0)
    return float(np.count_nonzero(grown & surface)) / max(int(np.count_nonzero(surface)), 1)


def trabecular_density(hu: np.ndarray, mask: np.ndarray, *, spacing_mm: tuple[float, float, float],
                       margin_mm: float, low_hu: float, high_hu: float, noise_sd: float = 3.0) -> TrabecularDensity:
    """HU statistics of a body's trabecular region and its low-/high-density clusters.

    Parameters
    ----------
    hu : np.ndarray
        CT in HU, (z, y, x).
    mask : np.ndarray
        Boolean body mask on the same grid.
    spacing_mm : (z, y, x) voxel spacing in mm.
    margin_mm : float
        Distance from the body surface excluded from the statistics (cortex).
    low_hu, high_hu : float
        Soft-tissue (lytic) and sclerotic cut-offs for the cluster fractions.
    noise_sd : float
        A voxel only counts as low when it also lies ``noise_sd`` robust standard deviations below the median,
        so noise tails of noisy or osteoporotic bone are not read as lesions.
    """
    mask = np.asarray(mask, dtype=bool)
    sl = ndimage.find_objects(mask.astype(np.uint8))[0]
    sl = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in sl)
    m = mask[sl]
    h = hu[sl].astype(np.float32)
    region, used = trabecular_region(m, spacing_mm=spacing_mm, margin_mm=margin_mm)
    vals = h[region]
    sigma = [SMOOTHING_SIGMA_MM / s for s in spacing_mm]
    smooth = ndimage.gaussian_filter(h, sigma)
    n = int(vals.size)
    sm = smooth[region]
    med = float(np.median(sm))
    sd = 1.4826 * float(np.median(np.abs(sm - med)))
    # a diffusely soft-tissue body (median below low_hu) keeps the cut-off; otherwise noise tails must not count
    low_used = low_hu if med < low_hu else min(low_hu, med - noise_sd * sd)
    high_used = high_hu  # sclerotic cut-offs sit many noise SDs above normal trabecular bone
    search = lesion_search_region(m, spacing_mm=spacing_mm, margin_mm=used)
    n_search = np.count_nonzero(search)
    low_sel, high_sel = search & (smooth < low_used), region & (smooth > high_used)
    low_n, low_c, low_cluster = _largest_cluster(low_sel)
    high_n, high_c, _ = _largest_cluster(high_sel)
    breach = cortex_breach_fraction(low_cluster, m, smooth, low_hu=low_used)
    offset = np.array([s.start for s in sl], dtype=float)

    def shift(c: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        return None if c is None else tuple(float(v) for v in np.asarray(c) + offset)

    return TrabecularDensity(
        hu_mean=float(vals.mean()), hu_median=float(np.median(vals)), hu_p05=float(np.percentile(vals, 5)),
        hu_p95=float(np.percentile(vals, 95)), hu_std=float(vals.std()), n_voxels=n, margin_mm=used,
        low_fraction=float(np.count_nonzero(low_sel) / n_search),
        low_cluster_fraction=low_n / n_search,
        high_fraction=float(np.count_nonzero(high_sel) / n),
        high_cluster_fraction=high_n / n,
        low_cluster_center_zyx=shift(low_c), high_cluster_center_zyx=shift(high_c),
        smoothed_sd_robust=sd, low_hu_used=low_used, high_hu_used=high_used, low_cluster_cortex_fraction=breach,
    )
