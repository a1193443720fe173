"""Holes of a body filled in the three planes (:func:`pvp_plan.segment.body_mask.fill_holes_in_three_planes`)."""

from __future__ import annotations

import numpy as np

from pvp_plan.segment.body_mask import fill_holes_in_three_planes, fill_holes_per_slice


def test_a_lost_slice_open_through_the_posterior_wall_is_filled_and_concavities_are_not():
    """A body (a box of bone) whose middle slice lost its inside, open to the outside behind through a gap in
    the wall one slice tall (the basivertebral foramen), is whole again, the gap included (the wall lies above
    and below it); a groove down the front wall over the body's whole height (a concavity, open in every plane)
    and the space around the body stay background. (A notch closed above, below and beside is a hole in the
    coronal plane and is filled: a lesion through the cortex is part of the body.)"""
    body = np.zeros((12, 30, 30), bool)
    body[1:11, 5:25, 5:25] = True
    body[6, 7:23, 7:23] = False  # the lost inside of slice 6
    body[6, 23:25, 13:17] = False  # ... open through the posterior wall
    body[1:11, 5:7, 12:18] = False  # a groove down the anterior wall, its whole height: a concavity
    assert np.array_equal(fill_holes_per_slice(body), body)  # neither axial nor 3-D filling closes it
    out = fill_holes_in_three_planes(body)
    assert out[6, 7:23, 7:23].all() and out[6, 23:25, 13:17].all()
    assert not out[1:11, 5:7, 12:18].any()
    assert not out[:, :5].any() and not out[0].any() and not out[11].any()
