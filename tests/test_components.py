"""pvp_plan.components: the largest connected part of a mask."""

from __future__ import annotations

import numpy as np

from pvp_plan.components import FULLY_CONNECTED_3D, largest_component


def test_empty_mask_gives_an_empty_part():
    out = largest_component(np.zeros((3, 4, 5), bool))
    assert out.shape == (3, 4, 5) and out.dtype == bool and not out.any()


def test_the_larger_of_two_blocks_is_kept():
    m = np.zeros((6, 6, 6), bool)
    m[0:2, 0:2, 0:2] = True  # 8 voxels
    m[3:6, 3:6, 3:6] = True  # 27 voxels
    out = largest_component(m)
    assert out.sum() == 27 and out[4, 4, 4] and not out[0, 0, 0]


def test_corner_contact_joins_parts_only_when_fully_connected():
    m = np.zeros((4, 4, 4), bool)
    m[0:2, 0:2, 0:2] = True
    m[2:4, 2:4, 2:4] = True
    m[3, 3, 0] = True  # a stray voxel
    assert largest_component(m).sum() == 8
    assert largest_component(m, structure=FULLY_CONNECTED_3D).sum() == 16


def test_two_dimensional_masks_work():
    m = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]], bool)
    assert largest_component(m).sum() == 3
