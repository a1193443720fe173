"""Where each body ends along the slice axis: the endplate located by a partial-volume fit, column by column.

Along z the slices are usually thicker than the endplate's cortex (~0.3-1 mm), so the slice holding an
endplate reads bright whether bone fills most of it or only a thin outer part, and a threshold relative to the
local ridge keeps end slices well under half occupied (the ridge is itself a diluted sample). The reference
rule, a voxel is body when its centre is inside, keeps a slice exactly when the surface lies beyond its centre.

Model of one column, outward from the body (``z`` in mm, the current end slice centred at 0): bone of level
``b`` inside the surface ``s``, disc or soft tissue of level ``d`` outside it, and the endplate as a layer of
nominal thickness just inside ``s`` carrying an excess ``m`` (HU mm) over ``b``. A slice reads this profile
through its sensitivity profile (a box one slice thick, blurred by a Gaussian), so for a given ``s`` every
slice's HU is linear in ``b``, ``d`` and ``m``. ``d`` is read just outside the column's end; ``m``, the
endplate's density times thickness, is shared by the columns of one endplate (fitted per column, then its
median over the endplate: a column alone cannot tell a dense layer in a thin part of a slice from a faint one
filling it); ``b`` is fitted with each ``s`` on a fine grid, and the residual gives the surface. The column's end
moves to the last slice whose centre lies inside, where the fit prefers that to the current end by a
likelihood-ratio margin (``ColumnOptions.end_evidence``); columns next to the body's outline, where the end
slice meets the lateral wall rather than the endplate, are left to the in-plane edge rule. No tissue's HU is
assumed: every level is read from the column itself. The slice profile's blur is at least the scanner's
point-spread, more where the scan's noise is correlated between adjacent slices (overlapping, z-filtered or
resampled slices, :func:`blur_for_noise_correlation`).
Arrays (z, y, x) on the CT grid.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from pvp_plan.label_boxes import grown_box
from pvp_plan.segment.body_mask import foreground_box, segment_boxes
from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.working_grid import disk_in_plane

logger = logging.getLogger(__name__)

#: A column's end lying more than ``_SHORT_MM`` (and two slices: one for the tilt, one for a neighbour's partial
#: slice) inside the outermost end within ``_NEIGHBOURS_MM`` in-plane is not an endplate (a tilt of 30 degrees
#: rises 2.9 mm over 5 mm).
_NEIGHBOURS_MM = 5.0
_SHORT_MM = 3.0
#: Step (mm) of the surface positions tried.
_SURFACE_STEP_MM = 0.1
#: Columns sampled (evenly) for an endplate's median excess.
_MASS_SAMPLE = 500


def slice_response(offsets: np.ndarray, surface_mm: np.ndarray, *, spacing_mm: float, psf_sigma_mm: float,
                   cortex_mm: float, width_mm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per surface position and slice: the share of the slice's sensitivity inside, and its weight of the endplate.

    Slice ``j`` of ``offsets`` is centred at ``j * spacing_mm``; ``surface_mm`` runs outward from slice 0's centre.
    Returns ``inside`` and ``layer`` shaped (surface, offset): ``inside`` is the slice profile (a box
    ``width_mm`` wide, the slice thickness, by default the spacing, convolved with a Gaussian of ``psf_sigma_mm``)
    integrated over ``z < s``; ``layer`` its mean over ``[s - cortex_mm, s]`` (1/mm), so an endplate of excess
    ``m`` (HU mm) adds ``m * layer`` to the slice.
    """
    h, sig = float(spacing_mm), max(float(psf_sigma_mm), 1e-3)
    w = max(h, float(width_mm or h))
    lo = np.asarray(offsets, float)[None, :] * h - w / 2
    hi = lo + w

    def seen_inside(s):  # (1/w) * integral over the slice of Phi((s - z) / sig) dz (a blurred ramp: its antiderivative)
        return (_blurred_ramp(s - lo, sig) - _blurred_ramp(s - hi, sig)) / w

    s = np.asarray(surface_mm, float)[:, None]
    t = max(float(cortex_mm), 1e-3)
    inside = seen_inside(s)
    return inside, (inside - seen_inside(s - t)) / t


def fit_surface(profiles: np.ndarray, *, spacing_mm: float, search: int, psf_sigma_mm: float, cortex_mm: float,
                width_mm: float | None = None, mass: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the endplate surface to each column's HU profile around its current end.

    Parameters
    ----------
    profiles : (columns, 2 * search + 3) array
        HU at slice offsets ``-(search + 1) ... search + 1`` from the current end slice, outward positive; the
        outer level is the darker of the last two (clear of a next endplate across a thin disc).
    spacing_mm : float
        Slice spacing.
    search : int
        The end may move by up to this many slices either way.
    psf_sigma_mm, cortex_mm, width_mm : float
        See :func:`slice_response`.
    mass : array, optional
        Endplate excess (HU mm) per column, held fixed; fitted (non-negative) when omitted.

    Returns
    -------
    surface_mm, mass, sse
        Best surface (mm outward from the end slice's centre) and endplate excess per column, and the residual
        sum of squares (columns, surface grid) over the grid ``surface_grid(spacing_mm, search)``.

    Notes
    -----
    For each surface position the bone's level (over the outer level) and, unless given, the endplate's
    excess are solved by least squares: the bone next to an endplate is often denser than mid-body
    (subchondral bone, sclerosis, an impacted fracture), so it is not read further in.
    """
    h = float(spacing_mm)
    outer = profiles[:, -2:].min(axis=1)
    grid = surface_grid(h, search)
    inside, layer = slice_response(np.arange(-search - 1, search + 2), grid, spacing_mm=h,
                                   psf_sigma_mm=psf_sigma_mm, cortex_mm=cortex_mm, width_mm=width_mm)
    # u = step * inside + m * layer (u = profile - outer) by least squares for each surface, the sums of squares
    # expanded into products over the slices so that no (columns, surfaces, slices) array is formed
    u = (profiles - outer[:, None]).astype(np.float32)
    inside, layer = inside.astype(np.float32), layer.astype(np.float32)
    u_in, u_layer = u @ inside.T, u @ layer.T
    in_in, in_layer, layer_layer = (inside * inside).sum(1), (inside * layer).sum(1), (layer * layer).sum(1)
    if mass is None:
        det = in_in * layer_layer - in_layer ** 2
        m = (in_in * u_layer - in_layer * u_in) / det
        step = (layer_layer * u_in - in_layer * u_layer) / det
        bare = m < 0  # no endplate excess: the step alone
        m = np.where(bare, 0.0, m)
        step = np.where(bare, u_in / in_in, step)
    else:
        m = np.broadcast_to(np.asarray(mass, np.float32)[:, None], u_in.shape)
        step = (u_in - m * in_layer) / in_in
    sse = (u * u).sum(1)[:, None] - step * (2 * u_in - step * in_in) - m * (2 * u_layer - 2 * step * in_layer
                                                                          - m * layer_layer)
    best = np.argmin(sse, axis=1)
    return grid[best], m[np.arange(len(best)), best], sse


def steps_per_slice(spacing_mm: float) -> int:
    """Surface positions tried per slice: about ``_SURFACE_STEP_MM`` apart."""
    return max(4, int(np.ceil(float(spacing_mm) / _SURFACE_STEP_MM)))


def surface_grid(spacing_mm: float, search: int) -> np.ndarray:
    """Surface positions tried (mm from the end slice's centre): the end slice may move ``search`` slices either way."""
    k = steps_per_slice(spacing_mm)
    return ((np.arange(k * (2 * search + 1)) + 0.5) / k - search) * float(spacing_mm)


def adjacent_slice_noise_correlation(hu: np.ndarray, *, soft_tissue_hu: tuple[float, float] = (-150.0, 150.0),
                                     max_pairs: int = 20, min_voxels: int = 10000) -> float | None:
    """Correlation of the image noise between adjacent slices, read in homogeneous soft tissue; None if too little.

    The noise is the in-plane high-pass (HU minus its 3 x 3 in-plane mean), kept where the local mean is soft
    tissue and the local high-pass SD is under 1.5 times its median there (no edges, which continue across
    slices whatever the noise does). Slices reconstructed thicker than their spacing, z-filtered or resampled
    share noise with their neighbours; independent reconstructions of abutting slabs do not. Read on at most
    ``max_pairs`` pairs of slices, evenly spread.
    """
    if hu.shape[0] < 2:
        return None
    first = np.unique(np.linspace(0, hu.shape[0] - 2, min(hu.shape[0] - 1, max_pairs)).astype(int))
    noise, calm = [], []
    for zs in (first, first + 1):
        sl = hu[zs].astype(np.float32)
        local = ndimage.uniform_filter(sl, (1, 3, 3))
        n = sl - local
        noise.append(n)
        calm.append((local > soft_tissue_hu[0]) & (local < soft_tissue_hu[1]))
    sd = [np.sqrt(ndimage.uniform_filter(n * n, (1, 5, 5))) for n in noise]
    soft = calm[0] | calm[1]
    if soft.sum() < min_voxels:
        return None
    limit = 1.5 * float(np.median(np.concatenate([sd[0][calm[0]], sd[1][calm[1]]])))
    pair = calm[0] & calm[1] & (sd[0] < limit) & (sd[1] < limit)
    if pair.sum() < min_voxels:
        return None
    return float(np.corrcoef(noise[0][pair], noise[1][pair])[0, 1])


def blur_for_noise_correlation(rho: float, *, spacing_mm: float, width_mm: float | None = None) -> float:
    """Gaussian sigma (mm) of a box-and-Gaussian slice profile whose white-noise correlation at one spacing is ``rho``.

    The profile's autocorrelation is a triangle (base twice the box width) blurred by ``sqrt(2) * sigma``;
    0 when ``rho`` is at or below the box's own overlap, and at most three slice spacings.
    """
    h = float(spacing_mm)
    w = max(h, float(width_mm or h))

    def corr(sig):  # triangle = ramp(z + w) - 2 ramp(z) + ramp(z - w); a blurred ramp is _blurred_ramp
        s2 = np.sqrt(2.0) * sig

        def tri(z):
            return _blurred_ramp(z + w, s2) - 2 * _blurred_ramp(z, s2) + _blurred_ramp(z - w, s2)
        return float(tri(h) / tri(0.0))

    lo, hi = 0.0, 3 * h
    if not np.isfinite(rho) or rho <= corr(lo):
        return 0.0
    if rho >= corr(hi):
        return hi
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if corr(mid) < rho else (lo, mid)
    return (lo + hi) / 2


def _blurred_ramp(u, sigma: float):
    """``max(u, 0)`` convolved with a Gaussian of ``sigma``: ``u Phi(u / sigma) + sigma phi(u / sigma)``."""
    sig = max(float(sigma), 1e-9)
    return u * ndtr(u / sig) + sig * np.exp(-0.5 * (u / sig) ** 2) / np.sqrt(2 * np.pi)


class Endplate(NamedTuple):
    """One end of one level: its columns (in-plane indices into ``region``), their end slices and profiles."""

    region: np.ndarray  # view of the labels around the level
    segment: int
    sign: int  # +1: the top end (outward is +z); -1: the bottom end
    y: np.ndarray
    x: np.ndarray
    end: np.ndarray
    profiles: np.ndarray
    rim: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # y, x, end of rim columns; their nearest column


def end_moves(profiles: np.ndarray, *, spacing_mm: float, search: int, psf_sigma_mm: float, options: ColumnOptions,
              width_mm: float | None = None) -> np.ndarray:
    """Slices by which each column of one endplate should move its end (outward positive).

    ``profiles`` as in :func:`fit_surface`. The endplate's excess is the median of the columns' own fits (at
    most ``_MASS_SAMPLE`` of them); a column moves where the fit there beats the best fit at its current end by
    ``options.end_evidence`` times the residual variance (a likelihood-ratio test).
    """
    kw = dict(spacing_mm=spacing_mm, search=search, psf_sigma_mm=psf_sigma_mm, cortex_mm=options.endplate_mm,
              width_mm=width_mm)
    _, mass, _ = fit_surface(profiles[::max(1, len(profiles) // _MASS_SAMPLE)], **kw)
    surface, _, sse = fit_surface(profiles, mass=np.full(len(profiles), np.median(mass)), **kw)
    move = np.floor(surface / spacing_mm).astype(int)
    best = sse.min(axis=1)
    k = steps_per_slice(spacing_mm)
    here = sse[:, k * search:k * (search + 1)].min(axis=1)  # surfaces that keep the current end
    variance = max(float(np.median(best)) / (2 * search + 1), 1e-6)  # 2 * search + 3 samples, 2 parameters
    move[here - best < options.end_evidence * variance] = 0
    return move


def refit_end_slices(labels: np.ndarray, hu: np.ndarray, spacing_mm, options: ColumnOptions, *,
                     slice_thickness_mm: float | None = None) -> np.ndarray:
    """Move each level's end slices, column by column, to the fitted endplate surface (:func:`end_moves`).

    ``labels``: segment index per voxel (-1 = background) on the grid of ``hu``, ``spacing_mm`` (z, y, x);
    changed in place and returned. ``slice_thickness_mm``: the reconstructed slice thickness when known
    (overlapping slices are thicker than their spacing), else the spacing. The slice profile's blur is
    ``options.slice_psf_sigma_mm``, or more where the scan's noise is correlated between adjacent slices
    (:func:`blur_for_noise_correlation`). A slice is added only where it is background. Columns whose profile
    would leave the image (a body cut by the field of view) or that are too short to read bone inside are left
    alone.
    """
    h = float(spacing_mm[0])
    if options.end_search_mm <= 0:
        return labels
    search = max(1, int(round(options.end_search_mm / h)))
    endplates = _endplates(labels, hu, spacing_mm, search, options)
    if not endplates:
        return labels
    sigma = options.slice_psf_sigma_mm
    rho = adjacent_slice_noise_correlation(hu[_around(labels, spacing_mm, options.end_noise_margin_mm)])
    if rho is not None:
        sigma = max(sigma, blur_for_noise_correlation(rho, spacing_mm=h, width_mm=slice_thickness_mm))
    logger.debug("end slices: noise correlation between slices %s, slice blur sigma %.2f mm", rho, sigma)
    for e in endplates:
        move = end_moves(e.profiles, spacing_mm=h, search=search, psf_sigma_mm=sigma, options=options,
                         width_mm=slice_thickness_mm)
        region, sign, y, x, end = e.region, e.sign, e.y, e.x, e.end
        # a rim column drops the slices its nearest fitted column drops, where it ends at the same slice (its
        # end slice meets the wall; kept, it leaves a lip around the endplate)
        ry, rx, rend, near = e.rim
        rmove = np.where(rend == end[near], np.minimum(move[near], 0), 0)
        y, x, end, move = np.r_[y, ry], np.r_[x, rx], np.r_[end, rend], np.r_[move, rmove]
        growing = move > 0
        for step in range(1, search + 1):
            drop = move <= -step
            region[end[drop] - sign * (step - 1), y[drop], x[drop]] = -1
            beyond = end + sign * step
            # a rim column may end on the image's last slice (its fitted neighbour ends inside): never read past it
            growing &= (move >= step) & (beyond >= 0) & (beyond < region.shape[0])
            growing[growing] = region[beyond[growing], y[growing], x[growing]] < 0
            region[beyond[growing], y[growing], x[growing]] = e.segment
    return labels


def _around(labels: np.ndarray, spacing_mm, margin_mm: float) -> tuple[slice, slice, slice]:
    """The bodies' bounding box grown in-plane by ``margin_mm`` (soft tissue beside the column)."""
    grow = [0] + [int(round(margin_mm / float(v))) for v in spacing_mm[1:]]
    return grown_box(foreground_box(labels), grow, labels.shape)


def _endplates(labels: np.ndarray, hu: np.ndarray, spacing_mm, search: int, options: ColumnOptions) -> list[Endplate]:
    """Both ends of every level, with the columns that can be fitted: long enough, their profile in the image,
    ``options.end_rim_mm`` inside the level's outline (projected along z), and ending near their neighbours."""
    reach = search + 1  # slices read inside and outside the current end
    offsets = np.arange(-reach, reach + 1)
    rim = ndimage.generate_binary_structure(2, 1)
    rim_iter = max(1, int(round(options.end_rim_mm / min(spacing_mm[1:]))))
    near = disk_in_plane(_NEIGHBOURS_MM, spacing_mm)[0]
    short = max(2, int(round(_SHORT_MM / float(spacing_mm[0]))))
    out: list[Endplate] = []
    for k, box in enumerate(segment_boxes(labels)):
        if box is None:
            continue
        box = grown_box(box, (reach, 0, 0), labels.shape)
        region = labels[box]
        body = region == k
        smooth = ndimage.gaussian_filter(hu[box].astype(np.float32),
                                         (0.0, options.end_smooth_mm / spacing_mm[1],
                                          options.end_smooth_mm / spacing_mm[2]))
        n = body.shape[0]
        has = body.any(axis=0)
        top_map = np.where(has, n - 1 - np.argmax(body[::-1], axis=0), -1)
        bottom_map = np.where(has, np.argmax(body, axis=0), n)
        yy, xx = np.nonzero(has)
        top, bottom = top_map[yy, xx], bottom_map[yy, xx]
        tall = top - bottom >= reach
        inner = ndimage.binary_erosion(has, rim, iterations=rim_iter)[yy, xx]  # away from the walls
        for end, sign, outermost in ((top, 1, ndimage.maximum_filter(top_map, footprint=near)),
                                     (bottom, -1, -ndimage.maximum_filter(-bottom_map, footprint=near))):
            idx = end[:, None] + sign * offsets[None, :]
            ok = tall & inner & (idx.min(axis=1) >= 0) & (idx.max(axis=1) < n)  # the region ends where the image does
            # an end of the body, not of a column stopped short inside it (by a lesion open to the outside)
            ok &= sign * (outermost[yy, xx] - end) <= short
            if ok.sum() < 10:
                continue
            cols = np.flatnonzero(ok)
            y, x = yy[cols], xx[cols]
            fitted = np.full(has.shape, -1)
            fitted[y, x] = np.arange(len(cols))
            dist, (ny, nx) = ndimage.distance_transform_edt(fitted < 0, sampling=spacing_mm[1:], return_indices=True)
            rim_cols = np.flatnonzero(~inner & (dist[yy, xx] <= options.end_rim_mm + max(spacing_mm[1:])))
            ry, rx = yy[rim_cols], xx[rim_cols]
            out.append(Endplate(region, k, sign, y, x, end[cols], smooth[idx[cols], y[:, None], x[:, None]],
                                (ry, rx, end[rim_cols], fitted[ny[ry, rx], nx[ry, rx]])))
    return out
