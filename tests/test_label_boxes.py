"""pvp_plan.label_boxes: bounding boxes of label maps from max projections, against ndimage.find_objects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pvp_plan.label_boxes import label_boxes, label_counts, occupied_box


def _sparse_map(rng, shape, n_labels, dtype):
    out = np.zeros(shape, dtype)
    for lab in rng.choice(np.arange(1, 30), size=n_labels, replace=False):
        lo = [int(rng.integers(0, s - 2)) for s in shape]
        hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape)]
        out[tuple(slice(a, b) for a, b in zip(lo, hi))] = lab
    return out


@pytest.mark.parametrize("seed", range(6))
def test_label_boxes_equal_find_objects_on_the_whole_map(seed):
    rng = np.random.default_rng(seed)
    labels = _sparse_map(rng, (17, 23, 29), n_labels=int(rng.integers(1, 5)), dtype=np.uint8)
    assert label_boxes(labels) == ndimage.find_objects(labels)


def test_occupied_box_holds_every_voxel_above_the_background_and_is_tight():
    seg = np.full((9, 10, 11), -1, np.int16)
    seg[2, 3, 4] = 0  # segment 0 is foreground on a -1 background
    seg[6, 8, 1] = 3
    box = occupied_box(seg, background=-1)
    assert box == (slice(2, 7), slice(3, 9), slice(1, 5))
    assert occupied_box(seg, background=0) == (slice(6, 7), slice(8, 9), slice(1, 2))


def test_an_empty_map_has_no_box_and_no_labels():
    assert occupied_box(np.zeros((4, 5, 6), np.uint8)) is None
    assert label_boxes(np.zeros((4, 5, 6), np.uint8)) == []


@pytest.mark.parametrize("seed", range(4))
def test_boxed_mask_reads_as_the_full_size_mask(seed):
    """A body kept in its box (the needle planner's body) gives the full-size mask's voxels and its crop to any
    box, including boxes reaching past the mask's own box or the grid's edge, and boxes missing it."""
    from pvp_plan.label_boxes import BoxedMask

    rng = np.random.default_rng(seed)
    labels = _sparse_map(rng, (17, 23, 29), n_labels=3, dtype=np.uint8)
    boxes = label_boxes(labels)
    for lab in np.unique(labels[labels > 0]):
        full = labels == lab
        for boxed in (BoxedMask.from_labels(labels, int(lab), boxes[lab - 1]), BoxedMask.of(full)):
            assert np.array_equal(boxed.argwhere(), np.argwhere(full))
            for _ in range(5):
                lo = [int(rng.integers(0, s)) for s in full.shape]
                box = tuple(slice(a, int(rng.integers(a + 1, s + 1))) for a, s in zip(lo, full.shape))
                assert np.array_equal(boxed.in_box(box), full[box])
    assert not BoxedMask.of(np.zeros((3, 4, 5), bool)).any()


@pytest.mark.parametrize("seed", range(4))
def test_label_counts_equal_bincount_of_the_whole_map(seed):
    rng = np.random.default_rng(seed)
    labels = _sparse_map(rng, (17, 23, 29), n_labels=int(rng.integers(1, 5)), dtype=np.uint8)
    labels[0, 0, 0], labels[-1, -1, -1] = 255, 7  # values at the map's corners, whatever the boxes
    assert np.array_equal(label_counts(labels), np.bincount(labels.ravel(), minlength=256))
    empty = np.zeros((3, 4, 5), np.uint8)
    assert np.array_equal(label_counts(empty), np.bincount(empty.ravel(), minlength=256))


def test_label_counts_refuse_a_map_that_is_not_uint8():
    with pytest.raises(TypeError, match="uint8"):
        label_counts(np.zeros((2, 2, 2), np.int16))
