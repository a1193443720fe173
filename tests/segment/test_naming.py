"""The sacrum anchor (pvp_plan.segment.naming.sacral_segments) on label maps built by hand.

Three segments stacked along z (1 mm voxels), each a 30 mm section with bone (500 HU) joined to it across a chosen
width: the lowest may be a sliver of sacrum cut by the field of view, reading narrower than the sacrum above it.
"""

from __future__ import annotations

import numpy as np
import pytest

from pvp_plan.segment.naming import sacral_segments

SPACING_MM = (1.0, 1.0, 1.0)
WIDTH_MM = 90.0


def _stack(widths_mm: list[float], slices: int = 6):
    """(HU, segment map, slices per segment) of segments 0, 1, ... from the bottom, each ``slices`` thick, whose
    bone connected to the section spans ``widths_mm`` left to right."""
    nz, ny, nx = slices * len(widths_mm), 60, 160
    hu = np.full((nz, ny, nx), 40.0, np.float32)
    seg = np.full((nz, ny, nx), -1, np.int16)
    for k, width in enumerate(widths_mm):
        z = slice(k * slices, (k + 1) * slices)
        seg[z, 20:40, 65:95] = k
        hu[z, 20:40, 65:95] = 300.0
        half = int(width // 2)
        hu[z, 28:32, 80 - half:80 + half] = 500.0  # transverse processes or alae, joined to the section
    slices_of = {k: np.arange(k * slices, (k + 1) * slices) for k in range(len(widths_mm))}
    return hu, seg, slices_of


@pytest.mark.parametrize(("widths", "lowest_cut", "sacral"), [
    ([110.0, 110.0, 50.0], False, [0, 1]),
    ([84.0, 110.0, 50.0], False, []),  # the lowest segment narrow and whole: no sacrum below it
    ([84.0, 110.0, 50.0], True, [0, 1]),  # a sliver cut by the field of view under a sacral segment
    ([84.0, 50.0, 50.0], True, []),  # cut, but nothing sacral above it
])
def test_the_sacrum_is_the_caudal_run_of_wide_segments(widths, lowest_cut, sacral):
    hu, seg, slices_of = _stack(widths)
    assert sacral_segments(hu, SPACING_MM, seg, slices_of, WIDTH_MM, lowest_cut=lowest_cut) == sacral
