"""The posterior corners of each whole section redrawn to the level's median section (pedicle stubs, root notches);
the wall between them, a soft-tissue bay and the front left alone."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pvp_plan.segment.column_options import ColumnOptions
from pvp_plan.segment.posterior_sections import redraw_posterior_sections

SPACING = (2.0, 1.0, 1.0)


def _tilted_body(nz: int = 14, tilt_voxels_per_slice: float = 0.5):
    """Label map (segment 0) of a body whose elliptic section, clipped flat behind, moves forward by
    ``tilt_voxels_per_slice`` per slice (a tilted body); the first and last slices are small (endplate rims).
    Returns (labels, the clean sections)."""
    ny, nx = 70, 80
    yy, xx = np.mgrid[:ny, :nx]
    clean = np.zeros((nz, ny, nx), bool)
    for z in range(nz):
        cy = 32 - tilt_voxels_per_slice * (z - nz / 2)
        section = ((yy - cy) / 16.0) ** 2 + ((xx - 40) / 22.0) ** 2 <= 1
        section &= yy <= cy + 10  # the flat posterior wall
        if z in (0, nz - 1):
            section &= ((yy - cy) / 12.0) ** 2 + ((xx - 40) / 17.0) ** 2 <= 1
        clean[z] = section
    labels = np.where(clean, 0, -1).astype(np.int16)
    return labels, clean


def test_stubs_and_notches_at_the_corners_are_redrawn_and_the_rest_is_left_alone():
    labels, clean = _tilted_body()
    nz = labels.shape[0]
    damaged = labels.copy()
    front_bump = np.zeros_like(clean)
    foramen = np.zeros_like(clean)
    for z in range(7, 12):  # the pedicle slices, upper half
        cy = int(round(32 - 0.5 * (z - nz / 2)))
        damaged[z, cy + 8:cy + 16, 16:24] = 0  # a pedicle stub behind the left corner
        damaged[z, cy + 4:cy + 11, 55:62] = -1  # a notch bitten into the right corner
        damaged[z, cy + 8:cy + 11, 36:44] = -1  # the basivertebral foramen: between the corners, left alone
        foramen[z, cy + 8:cy + 11, 36:44] = True
        front_bump[z, cy - 20:cy - 16, 38:42] = True  # an anterior osteophyte: in front, not redrawn
    damaged[front_bump] = 0
    other = np.zeros_like(clean)
    other[9, 60:66, 30:36] = True  # another level's voxels behind: never taken
    damaged[other] = 1
    hu = np.full(clean.shape, 200, np.int16)  # the notches and the foramen read as bone ...
    tumour = np.zeros_like(clean)
    cy = int(round(32 - 0.5 * (4 - nz / 2)))
    tumour[3:6, cy + 6:cy + 11, 44:50] = True  # ... but a tumour through the wall is soft tissue: it stays a bay
    damaged[tumour] = -1
    hu[tumour] = 40

    out = redraw_posterior_sections(damaged.copy(), hu, SPACING, ColumnOptions())

    body = out == 0
    assert not body[tumour].any()
    expected = (clean | front_bump) & ~tumour & ~foramen
    # off by at most the tolerance (1 mm, a voxel) plus a voxel for the rounded tilt shift, from the clean outline
    for z in range(1, nz - 1):
        wrong = body[z] ^ expected[z]
        near = ndimage.distance_transform_edt(~expected[z]) + ndimage.distance_transform_edt(expected[z])
        assert (near[wrong] <= 2.0).all() and wrong.sum() <= 30, (z, wrong.sum())
    assert ((damaged[7:12] == 0) ^ expected[7:12]).sum() > 5 * 80  # the damage was real: ~95 voxels a slice
    assert (out[other] == 1).all()
    assert np.array_equal(body[[0, nz - 1]], clean[[0, nz - 1]])  # the endplate rims are not whole sections


def test_clean_bodies_are_unchanged_and_zero_tolerance_is_off():
    labels, _ = _tilted_body(tilt_voxels_per_slice=0.8)
    hu = np.full(labels.shape, 200, np.int16)
    assert np.array_equal(redraw_posterior_sections(labels.copy(), hu, SPACING, ColumnOptions()), labels)
    damaged = labels.copy()
    damaged[8, 40:46, 18:24] = 0
    off = ColumnOptions(posterior_section_tolerance_mm=0.0)
    assert np.array_equal(redraw_posterior_sections(damaged.copy(), hu, SPACING, off), damaged)


def test_pedicle_roots_in_most_sections_are_cut_at_the_posterior_wall_line():
    # thin slices through a small body: the pedicle roots stand behind both corners in 8 of the 12 whole
    # sections, so the median section holds them too; behind the wall line they are pedicle, not body.
    # Their medial edges reach between the corners (beside the canal): the wall line must not follow them
    labels, clean = _tilted_body()
    nz = labels.shape[0]
    damaged = labels.copy()
    roots = np.zeros_like(clean)
    for z in range(3, 11):
        cy = int(round(32 - 0.5 * (z - nz / 2)))
        roots[z, cy + 8:cy + 18, 16:31] = True  # left root, from the corner to beside the canal
        roots[z, cy + 8:cy + 18, 50:64] = True  # right root
    damaged[roots & ~clean] = 0
    hu = np.full(clean.shape, 200, np.int16)

    out = redraw_posterior_sections(damaged.copy(), hu, SPACING, ColumnOptions())

    behind_line = np.zeros_like(clean)  # more than the tolerance (a voxel) plus a voxel of tilt shift behind it
    for z in range(3, 11):
        cy = int(round(32 - 0.5 * (z - nz / 2)))
        behind_line[z, cy + 10 + 3:] = True
    assert (roots & behind_line).sum() > 8 * 2 * 50  # the roots were there: 110 voxels a slice behind the line
    corners = np.zeros_like(clean)
    # beyond half the half-width (22 voxels) from the midline (x = 40), and the tolerance (a voxel) plus a voxel more
    corners[..., :27] = corners[..., 54:] = True
    # at the corners nothing is left behind the line; between them the wall is left as segmented (the wall check
    # reads it), roots beside the canal included
    assert not ((out == 0) & behind_line & corners).any()
    assert ((out == 0) & clean).sum() >= 0.99 * clean[1:-1].sum()  # the body itself kept
    # (the fillet between a rounded corner and its root, in front of the line, stays: see the module's docstring)
