"""The end slices along z (pvp_plan.segment.end_slices) on blocks whose surfaces are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pvp_plan.segment.body_mask import cortical_edge_hu, refine_on_ct_grid
from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.end_slices import (
    adjacent_slice_noise_correlation,
    blur_for_noise_correlation,
    refit_end_slices,
)

BOTTOM_MM = 13.3  # flat: at 2 mm slices the slice 12-14 mm is 35 % body and its centre outside


def _top_mm(y_mm: np.ndarray, tilt_deg: float) -> np.ndarray:
    return 32.0 + np.tan(np.radians(tilt_deg)) * (y_mm - 20.0)


def _tilted_block(slice_mm: float, *, tilt_deg: float = 8.0, cortex_mm: float = 0.8, seed: int = 0):
    """A 24 x 34 mm block on 1 mm pixels: trabecular bone (180 HU) inside endplates of cortex (900 HU, ``cortex_mm``)
    in disc (90 HU), soft tissue (40 HU) around. Flat bottom at ``BOTTOM_MM``, top tilted about x. Rendered by
    supersampling (20 sub-slices, 10 sub-rows), blurred by a 0.6 mm Gaussian, 10 HU noise. Returns the HU, the
    reference (voxel centre inside) and the spacing."""
    nz, ny, nx, sub_z, sub_y = int(round(48 / slice_mm)), 40, 30, 20, 10
    zf = (np.arange(nz * sub_z) + 0.5) / sub_z * slice_mm
    top = _top_mm((np.arange(ny * sub_y) + 0.5) / sub_y, tilt_deg)
    inside = (zf[:, None] > BOTTOM_MM) & (zf[:, None] < top[None, :])
    cortex = inside & ((zf[:, None] < BOTTOM_MM + cortex_mm) | (zf[:, None] > top[None, :] - cortex_mm))
    fine = np.where(cortex, 900.0, np.where(inside, 180.0, 90.0))
    section = fine.reshape(nz, sub_z, ny, sub_y).mean(axis=(1, 3))
    hu = np.repeat(section[:, :, None], nx, axis=2).astype(np.float32)
    zc = (np.arange(nz) + 0.5) * slice_mm
    ref = np.repeat(((zc[:, None] > BOTTOM_MM) & (zc[:, None] < _top_mm(np.arange(ny) + 0.5, tilt_deg)))[:, :, None],
                    nx, axis=2)
    for r in (hu, ref):
        r[:, :3] = r[:, -3:] = r[:, :, :3] = r[:, :, -3:] = 40 if r is hu else False
    spacing = (slice_mm, 1.0, 1.0)
    hu = ndimage.gaussian_filter(hu, [0.6 / s for s in spacing])
    hu += np.random.default_rng(seed).normal(0.0, 10.0, hu.shape).astype(np.float32)
    return hu, ref, spacing


def _ridge_rule(hu: np.ndarray, ref: np.ndarray, spacing) -> np.ndarray:
    """What ``refine_on_ct_grid`` draws from a generous coarse mask (the reference grown by a voxel): voxels whose
    lightly smoothed HU reaches 0.6 of the way to the ridge within 2 mm, plus the coarse mask's interior."""
    coarse = ndimage.binary_dilation(ref, np.ones((3, 3, 3), bool))
    grown = ndimage.binary_dilation(coarse, np.ones((3, 3, 3), bool))
    smooth = ndimage.gaussian_filter(hu, [0.5 / s for s in spacing])
    ridge = tuple(2 * max(1, int(round(2.0 / s))) + 1 for s in spacing)
    edge = cortical_edge_hu(smooth, grown, 100.0, 40.0, ridge, ColumnOptions().edge_fraction)
    keep = ((smooth > edge) & grown) | ndimage.binary_erosion(coarse, np.ones((3, 3, 3), bool))
    return np.where(keep, 0, -1).astype(np.int16)


def _ends(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0), np.argmax(mask, axis=0)


def _agreement(labels: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Share of the columns (2 voxels inside the block's outline) whose top / bottom slice is the reference's."""
    inner = ndimage.binary_erosion(ref.any(axis=0), iterations=2)
    (ts, bs), (tr, br) = _ends(labels >= 0), _ends(ref)
    return float((ts == tr)[inner].mean()), float((bs == br)[inner].mean())


@pytest.mark.parametrize("slice_mm", [2.0, 3.0])
def test_end_slices_of_a_tilted_block_follow_the_analytic_surface(slice_mm):
    """The ridge rule keeps end slices that are less than half body (the ridge along z is itself a slice diluted by
    the thin endplate): at 2 mm it is one slice too long on 29 % of the columns under the tilted top and on all of
    them at the flat bottom. The partial-volume fit puts the end where the surface crosses the slice's centre."""
    hu, ref, spacing = _tilted_block(slice_mm)
    old = _ridge_rule(hu, ref, spacing)
    assert _agreement(old, ref)[0] <= 0.75  # the problem: whole slices kept at the endplate
    new = refit_end_slices(old.copy(), hu, spacing, ColumnOptions())
    top, bottom = _agreement(new, ref)
    assert top >= 0.85 and bottom >= 0.95, (top, bottom)
    assert ((new >= 0) <= ndimage.binary_dilation(ref, np.ones((3, 1, 1), bool))).all()  # within a slice of it


def test_end_slices_of_the_flat_bottom_at_2mm_are_dropped_whole():
    hu, ref, spacing = _tilted_block(2.0)
    old = _ridge_rule(hu, ref, spacing)
    assert _agreement(old, ref)[1] == 0.0  # the slice 12-14 mm (35 % body) kept everywhere
    assert _agreement(refit_end_slices(old, hu, spacing, ColumnOptions()), ref)[1] >= 0.95


def test_full_resolution_redraw_keeps_an_end_slice_of_cancellous_bone_under_the_endplate():
    """``refine_on_ct_grid`` with the working grid on the CT's 3 mm slices (factor 1 along z). The body's end
    slices are cancellous bone (180 HU); each endplate (900 HU, 0.8 mm) lies wholly in the next slice out, whose
    centre is outside the body. The edge rule reads its ridge in 3-D, i.e. on that endplate slice: the end slices
    are the end-slice fit's to move, not the edge rule's to hollow (the phantom's L1 at 3 mm lost 316 of the 564
    voxels of its end section that way)."""
    spacing, nz, sub = (3.0, 1.0, 1.0), 16, 30
    bottom, top = 8.2, 33.8  # endplates 8.2-9.0 and 33.0-33.8 mm: in slices 2 (6-9 mm) and 11 (33-36 mm)
    zf = (np.arange(nz * sub) + 0.5) / sub * spacing[0]
    body = (zf > bottom) & (zf < top)
    column = np.where(body, np.where((zf < bottom + 0.8) | (zf > top - 0.8), 900.0, 180.0), 90.0)
    hu = np.full((nz, 40, 40), 40.0, np.float32)
    hu[:, 5:35, 5:35] = column.reshape(nz, sub).mean(axis=1)[:, None, None]
    hu = ndimage.gaussian_filter(hu, [0.6 / s for s in spacing])
    zc = (np.arange(nz) + 0.5) * spacing[0]
    ref = np.zeros(hu.shape, bool)
    ref[(zc > bottom) & (zc < top), 5:35, 5:35] = True
    out = refine_on_ct_grid(np.where(ref, 0, -1).astype(np.int16), hu, spacing, (1, 2, 2), 100.0, 40.0, 2.0,
                            ColumnOptions().edge_fraction)
    ends = np.flatnonzero(ref.any(axis=(1, 2)))[[0, -1]]
    assert list(ends) == [3, 10]
    for z in ends:
        inner = ndimage.binary_erosion(ref[z], iterations=3)
        assert (out[z][inner] == 0).all(), (z, int((out[z][inner] == 0).sum()), int(inner.sum()))


def test_end_slices_of_a_body_whose_rim_reaches_the_last_slice():
    """A rim column (beside the fitted columns, which need their profile inside the image) may end on the image's
    last slice: the fit must not read past it. Found on the 3 mm abdomen with 45 HU of noise added (IndexError
    from ``refit_end_slices``, session 13)."""
    hu, ref, spacing = _tilted_block(3.0, tilt_deg=0.0)
    old = _ridge_rule(hu, ref, spacing)
    top = int(np.flatnonzero((old >= 0).any(axis=(1, 2))).max())
    n = top + 3  # the top's profile (two slices out at 3 mm) just inside the image
    old, hu = old[:n].copy(), hu[:n]
    ys, xs = np.nonzero((old >= 0).any(axis=0))
    old[top:, ys.min():ys.max() + 1, xs.min()] = 0  # one side of the outline runs up to the last slice
    new = refit_end_slices(old.copy(), hu, spacing, ColumnOptions())
    assert (new[top:, ys.min():ys.max() + 1, xs.min()] == 0).all()  # that rim is left as it was
    assert _agreement(new, ref[:n])[0] >= 0.85  # and the top is still fitted


def test_end_slice_fit_can_be_turned_off():
    hu, ref, spacing = _tilted_block(2.0)
    old = _ridge_rule(hu, ref, spacing)
    assert (refit_end_slices(old.copy(), hu, spacing, ColumnOptions(end_search_mm=0.0)) == old).all()


def test_end_slice_options_are_checked():
    with pytest.raises(ValueError, match="endplate_mm"):
        ColumnOptions(endplate_mm=0.0)
    with pytest.raises(ValueError, match="end_search_mm"):
        ColumnOptions(end_search_mm=-1.0)


@pytest.mark.parametrize("slice_mm,sigma_mm", [(3.0, 1.2), (1.5, 0.9), (2.0, 0.0)])
def test_slice_blur_is_read_back_from_the_noise_correlation(slice_mm, sigma_mm):
    """White noise on a 0.05 mm grid, averaged over 'slices' (a box one spacing wide) and blurred by a Gaussian:
    the correlation between adjacent slices gives the blur back."""
    rng = np.random.default_rng(1)
    fine = 0.05
    n_box = int(round(slice_mm / fine))
    noise = rng.standard_normal((200, 40 * n_box))
    if sigma_mm:
        noise = ndimage.gaussian_filter1d(noise, sigma_mm / fine, axis=1)
    slices = noise.reshape(200, 40, n_box).mean(axis=2)
    rho = np.mean([np.corrcoef(slices[:, j], slices[:, j + 1])[0, 1] for j in range(5, 34)])
    assert blur_for_noise_correlation(rho, spacing_mm=slice_mm) == pytest.approx(sigma_mm, abs=0.15)


def test_noise_correlation_between_slices_is_read_in_soft_tissue_only():
    """Independent slices read ~0; z-smoothed noise reads its correlation, whatever sharp bone edges run through
    the slices (a bone bar crossing every slice would look perfectly correlated)."""
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, 15.0, (30, 120, 120)).astype(np.float32)
    hu = 40.0 + noise
    hu[:, 50:70, 20:100] = 700.0  # bone, identical in every slice
    assert abs(adjacent_slice_noise_correlation(hu)) < 0.05
    smoothed = 40.0 + ndimage.gaussian_filter1d(noise, 1.0, axis=0)
    smoothed[:, 50:70, 20:100] = 700.0
    expected = np.exp(-1.0 / 4.0)  # Gaussian smoothing of sigma 1 slice: correlation exp(-1 / (4 sigma^2))
    assert adjacent_slice_noise_correlation(smoothed) == pytest.approx(expected, abs=0.05)
