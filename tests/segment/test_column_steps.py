"""Single steps of the spine-column segmenter on inputs whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pvp_plan.io import load_ct
from pvp_plan.segment.body_mask import (
    column_in_box,
    column_mask,
    column_region_and_vessels,
    cortical_edge_hu,
    detach_pedicle_roots,
    fill_cortical_defects,
    peel_halo,
    restore_endplate_caps,
)
from pvp_plan.segment.canal import CanalTrack, core_region, track_canal
from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.discs import disc_planes
from pvp_plan.segment.working_grid import (
    disk_in_plane,
    in_plane_box_on_ct_grid,
    make_working_grid,
    to_full_grid,
)
from tests.conftest import shared_path


def _track(nz: int, centre_x: np.ndarray, wall_y: np.ndarray) -> CanalTrack:
    centre = np.stack([wall_y + 8.0, centre_x], axis=1)
    return CanalTrack(center_yx=centre, wall_y=wall_y, seen=np.ones(nz, bool), z_range=(0, nz))


def test_disc_plane_axis_ignores_a_few_slices_where_the_canal_centre_jumps():
    """At 3 mm the canal is lost among the foramina at L5-S1 for a few slices: a 6-voxel (18 mm) jump of
    the centre over 4 slices must not tilt the disc plane coronally (the image is blank, so no image match
    moves the plane: what is returned is the axis-based plane itself)."""
    nz, sp = 40, (3.0, 3.0, 3.0)
    centre_x = np.full(nz, 30.0)
    centre_x[21:25] = 36.0
    wall_y = 40.0 - 0.3 * np.arange(nz)  # a straight column leaning 16.7 degrees sagittally
    planes = disc_planes([20], np.zeros((nz, 60, 60), np.float32), sp, _track(nz, centre_x, wall_y),
                         ColumnOptions())
    n = planes[0].normal
    assert abs(np.degrees(np.arctan2(n[2], n[0]))) < 3.0  # coronal tilt
    assert abs(np.degrees(np.arctan2(-n[1], n[0])) - np.degrees(np.arctan(0.3))) < 3.0  # sagittal lean kept


def _blurred_shell(sigma_vox: float = 0.75) -> np.ndarray:
    """A body along x: trabecular bone (200 HU) for x < 20 whose last 1.25 voxels are cortex (1300 HU),
    soft tissue (40 HU) from x = 20 on, blurred by a Gaussian point-spread of ``sigma_vox`` voxels."""
    from scipy import ndimage

    profile = np.where(np.arange(40) < 20, 200.0, 40.0)
    profile[18] += 0.25 * 1100.0  # the cortex covers a quarter of voxel 18 ...
    profile[19] += 1100.0  # ... and all of voxel 19
    hu = ndimage.gaussian_filter1d(profile, sigma_vox)
    return np.broadcast_to(hu, (5, 5, 40)).astype(np.float32)


def test_peel_halo_drops_the_blurred_cortex_outside_the_body_but_keeps_the_ridge():
    hu = _blurred_shell()
    t_edge = 100.0
    seg = np.where(np.broadcast_to(np.arange(40) < 21, hu.shape), 0, -1).astype(np.int16)  # a voxel too wide
    kept = peel_halo(seg, hu, t_edge, 40.0, ColumnOptions().edge_fraction)[2, 2] >= 0  # middle row: inside in y, z
    assert int(np.argmax(hu[2, 2])) == 19
    assert kept[:20].all() and not kept[20:].any()
    assert hu[2, 2, 20] > t_edge  # the global threshold alone would keep this voxel of blurred cortex


def test_cortical_edge_hu_is_the_fraction_of_the_way_to_the_local_ridge_and_never_below_t_edge():
    hu = np.full((3, 3, 9), 40.0, np.float32)
    hu[1, 1, 4] = 840.0
    body = hu > 100
    for fraction, expected in ((0.5, 440.0), (0.6, 520.0)):
        edge = cortical_edge_hu(hu, body, 100.0, 40.0, (3, 3, 3), fraction)
        assert edge[1, 1, 3] == expected and edge[1, 1, 5] == expected
        assert edge[1, 1, 0] == 100.0  # far from any body voxel: the global floor


def test_thin_end_slices_of_a_tilted_body_are_restored_but_a_vessel_beside_it_is_not():
    """1 mm voxels. A 30 x 40 mm body section on slices 2-9; above it, slices 10-11 hold only a 6 mm band at its
    back (a tilted endplate), narrower than the pedicle-cut disk, so the in-plane cut deletes them whole. A 20 mm
    vessel runs up beside the body (its own section survives the cut), and a bridge joins the two on slices 4-5."""
    opts = ColumnOptions()
    sp = (1.0, 1.0, 1.0)
    opened = np.zeros((14, 60, 90), bool)
    opened[2:10, 10:40, 10:50] = True  # the body
    opened[10:12, 34:40, 10:50] = True  # the endplate band
    yy, xx = np.mgrid[:60, :90]
    opened[:, (yy - 37) ** 2 + (xx - 61) ** 2 <= 100] = True  # the vessel, 20 mm across
    opened[4:6, 30:40, 50:52] = True  # the bridge
    sections = detach_pedicle_roots(opened, sp, opts)
    assert not sections[10:12, 34:40, 10:50].any()  # the cut deletes the band ...
    body = sections & (np.arange(90) < 50)[None, None, :]  # ... and the body is the part kept (core-connected)
    restored = restore_endplate_caps(body, sections, opened)
    under = body[9, 34:40, 10:50]  # the body's top slice under the band (its cut corners rounded)
    assert under.mean() > 0.9
    assert (restored[10:12, 34:40, 10:50] == under).all()  # the band is given back where it lies over the body
    assert not restored[:, (yy - 37) ** 2 + (xx - 61) ** 2 <= 100].any()  # the vessel is not attached
    assert not (restored & ~opened).any()


def test_a_lesion_open_through_the_cortex_is_added_but_not_a_shallow_dent_the_posterior_notch_or_an_end_ring():
    """1 mm voxels, a 40 mm round body section on slices 1-8 (soft tissue 40 HU around it). Cut out of it: a lesion
    bay 10 mm wide and 12 mm deep at the front-left, open to the outside; a 2 mm dent on the right; a 6 mm deep notch
    in the middle of the back (the basivertebral foramen's place). Slice 9 is an endplate rim open at the front, with
    the disc (soft tissue) inside it."""
    opts = ColumnOptions()
    yy, xx = np.mgrid[:60, :60]
    disc = (yy - 30) ** 2 + (xx - 30) ** 2 <= 20 ** 2
    bay = (np.abs(xx - 38) <= 5) & (yy <= 21)  # front is small y
    dent = (xx >= 49) & (np.abs(yy - 30) <= 4)
    notch = (np.abs(xx - 30) <= 3) & (yy >= 45)
    labels = np.full((11, 60, 60), -1, np.int16)
    labels[1:9][:, disc & ~bay & ~dent & ~notch] = 0
    labels[9][disc & ((yy - 30) ** 2 + (xx - 30) ** 2 > 14 ** 2) & ~bay] = 0
    hu = np.full(labels.shape, 40.0, np.float32)
    hu[labels >= 0] = 250.0
    out = fill_cortical_defects(labels.copy(), hu, (1.0, 1.0, 1.0), opts)  # in place: keep the input to compare
    mid = out[4]
    assert (mid[disc & bay] == 0).mean() > 0.85  # the lesion is body, up to the chord across its mouth
    assert (mid[disc & dent] < 0).all() and (mid[disc & notch] < 0).all()
    assert (out[9] == labels[9]).all()  # the endplate rim is not filled
    assert not ((out >= 0) & ~(labels >= 0) & (hu >= opts.defect_max_hu)).any()


@pytest.mark.parametrize("factors, shape", [((2, 2, 2), (20, 41, 37)), ((1, 3, 3), (7, 30, 31)), ((1, 1, 1), (5, 9, 8))])
def test_labels_repeated_in_the_in_plane_box_equal_the_whole_grid_cut_to_it(factors, shape):
    # the full-resolution steps run inside this box: it must hold every CT voxel the segments repeat onto,
    # the tail a block average dropped included
    rng = np.random.default_rng(1)
    work_shape = tuple(s // f for s, f in zip(shape, factors))
    seg = np.full(work_shape, -1, np.int16)
    seg[1:3, work_shape[1] - 3:, 2:4] = 0  # reaches the working grid's edge in y
    seg[0, 2, 1] = 1
    seg[rng.random(work_shape) < 0.01] = 2
    whole = to_full_grid(seg, factors, shape, fill=-1)
    for margin in (0, 1, 3):
        work_box, ct_box = in_plane_box_on_ct_grid(seg, factors, shape, margin)
        inside = to_full_grid(seg[work_box], factors, whole[ct_box].shape, fill=-1)
        np.testing.assert_array_equal(inside, whole[ct_box])
        outside = whole.copy()
        outside[ct_box] = -1
        assert not (outside >= 0).any()
    assert in_plane_box_on_ct_grid(np.full(work_shape, -1, np.int16), factors, shape, 1) is None


@pytest.mark.parametrize("case", ["sample", "chest"])
def test_the_column_found_in_the_region_box_equals_the_column_found_on_the_whole_grid(case):
    # column_mask runs its openings, watershed and labelling in the region's box: same answer as on the whole
    # grid (the chest CT has contrast-filled vessels inside the column region)
    from pvp_plan.sample_data.sample import load_sample

    load = {"sample": lambda: load_sample().ct,
            "chest": lambda: load_ct(shared_path("thorax_1p5mm", "ct.nii.gz"))}[case]
    opts = ColumnOptions()
    ct = load()
    grid = make_working_grid(ct.hu, ct.spacing_mm, target_mm=opts.work_spacing_mm, smooth_mm=opts.smooth_mm)
    track = track_canal(grid.hu, grid.spacing_mm, opts)
    core = core_region(grid.hu.shape, grid.spacing_mm, track)
    region, vessels = column_region_and_vessels(grid.hu, grid.spacing_mm, track, core, opts)
    for t_body in (100.0, 200.0):
        boxed = column_mask(grid.hu, grid.spacing_mm, track, core, t_body, opts)
        whole = column_in_box(grid.hu, grid.spacing_mm, region, vessels, core, t_body, opts)
        assert boxed[0].sum() > 500  # bodies found
        for a, b in zip(boxed, whole):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spacing", [(1.5, 1.6, 1.6), (3.0, 3.0, 3.0), (1.2, 1.2, 1.2)])
def test_the_root_cut_gives_back_a_ring_of_at_least_a_voxel_and_detaches_the_pedicle(spacing):
    # a square body section (sharp corners, which the 8 mm root-cut disk rounds) with a pedicle-wide bar behind
    # it. On a working grid coarser than root_regrow_mm (1.6 mm for a 0.8 mm CT, 3 mm CT) the ring given back
    # used to hold only the disk's centre: nothing was given back and the corners stayed rounded
    side, bar = int(round(36 / spacing[1])), max(2, int(round(5 / spacing[1])))
    mask = np.zeros((1, side + 30, side + 10), bool)
    mask[0, 5:5 + side, 5:5 + side] = True
    mask[0, 5 + side:5 + side + 15, 5:5 + bar] = True  # the pedicle, at the left corner
    opts = ColumnOptions()
    opened = ndimage.binary_opening(mask, disk_in_plane(opts.pedicle_root_mm, spacing))
    cross = ndimage.generate_binary_structure(3, 1)
    cross[0] = cross[2] = False
    ring = mask & ndimage.binary_dilation(opened, cross) & ~opened  # the voxels next to the opened section
    out = detach_pedicle_roots(mask, spacing, opts)
    assert ring.sum() >= 4 and out[ring].all()
    assert not out[0, 5 + side + 3:, :].any()  # the pedicle beyond the ring is cut off
