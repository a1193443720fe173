"""Partial-volume rendering of solids on the CT grid by supersampling.

A solid is evaluated on a fine grid (each CT voxel split into ``factor`` sub-voxels per axis)
inside its bounding box only; the fraction of sub-voxels inside is the voxel's occupancy.
Labels are the majority of the fine grid (occupancy > 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fine sub-voxels evaluated per chunk (bounds memory: ~ 40 bytes per point at the peak).
_CHUNK_POINTS = 3_000_000


@dataclass(frozen=True)
class Grid:
    """The CT grid: shape (z, y, x), spacing (z, y, x) mm, origin LPS (x, y, z) mm of voxel (0, 0, 0)."""

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]

    def axis_mm(self, axis: int) -> np.ndarray:
        """LPS coordinate (mm) of voxel centres along array axis 0 (z), 1 (y) or 2 (x)."""
        return self.origin_lps_mm[2 - axis] + np.arange(self.shape[axis]) * self.spacing_mm[axis]

    def supersampling(self, target_mm: float) -> tuple[int, int, int]:
        """Sub-voxels per axis so the fine spacing is at most ``target_mm``; an odd number on every axis.

        With an even count, a boundary through the voxel centre leaves exactly half the sub-voxels inside, and
        the majority rule for labels (occupancy > 0.5) drops every such voxel: the body labels came out 2-9 %
        smaller than the body (2 x 0.8 x 0.8 mm: 2 x 2 x 4 sub-voxels). An odd count has no tie, and its
        centre sub-voxel sits on the voxel centre.
        """
        return tuple(max(1, int(np.ceil(s / target_mm - 1e-9))) | 1 for s in self.spacing_mm)

    def box_slices(self, lo_lps: np.ndarray, hi_lps: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Voxel slices (z, y, x) covering an LPS box, or None when it misses the grid."""
        out = []
        for axis in range(3):
            k = 2 - axis
            o, s, n = self.origin_lps_mm[k], self.spacing_mm[axis], self.shape[axis]
            i0 = int(np.floor((lo_lps[k] - o) / s + 0.5))
            i1 = int(np.ceil((hi_lps[k] - o) / s + 0.5)) + 1
            i0, i1 = max(i0, 0), min(i1, n)
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)

    def fractions(self, solid, factor: tuple[int, int, int]):
        """Occupancy of ``solid`` on the CT grid within its bounding box.

        Returns ``(slices, outer, inner)`` with float32 arrays shaped like the slices, ``inner``
        None for solids without a shell; or None when the solid misses the grid.
        """
        sl = self.box_slices(*solid.bbox())
        if sl is None:
            return None
        fz, fy, fx = factor
        coords = []
        for axis, f in enumerate(factor):
            s = self.spacing_mm[axis]
            o = self.origin_lps_mm[2 - axis]
            m = np.arange(sl[axis].start * f, sl[axis].stop * f)
            coords.append(o + ((m + 0.5) / f - 0.5) * s)
        zf, yf, xf = coords
        nz, ny, nx = (s.stop - s.start for s in sl)
        outer = np.empty((nz, ny, nx), np.float32)
        inner = None
        per_slice = max(1, _CHUNK_POINTS // (len(yf) * len(xf) * fz))
        x = xf[None, None, :]
        y = yf[None, :, None]
        scale = 1.0 / (fz * fy * fx)
        for k0 in range(0, nz, per_slice):
            k1 = min(nz, k0 + per_slice)
            z = zf[k0 * fz:k1 * fz, None, None]
            o_b, i_b = solid.inside(x, y, z)
            o_b = np.broadcast_to(o_b, (len(z), len(yf), len(xf)))
            outer[k0:k1] = _block_sum(o_b, factor) * scale
            if i_b is not None:
                if inner is None:
                    inner = np.zeros((nz, ny, nx), np.float32)
                i_b = np.broadcast_to(i_b, o_b.shape)
                inner[k0:k1] = _block_sum(i_b, factor) * scale
        return sl, outer, inner


def _block_sum(mask: np.ndarray, factor: tuple[int, int, int]) -> np.ndarray:
    fz, fy, fx = factor
    nz, ny, nx = mask.shape[0] // fz, mask.shape[1] // fy, mask.shape[2] // fx
    m = mask.reshape(nz, fz, ny, fy, nx, fx)
    return m.sum(axis=(1, 3, 5), dtype=np.uint16).astype(np.float32)


def composite(hu: np.ndarray, sl, frac: np.ndarray, value) -> None:
    """Blend ``value`` (scalar or array shaped like ``frac``) into ``hu[sl]`` with occupancy ``frac``."""
    view = hu[sl]
    view += frac * (value - view)


def union_into(acc: np.ndarray, sl, frac: np.ndarray) -> None:
    """Accumulate an occupancy into a union occupancy (independent-overlap rule 1 - (1-a)(1-b))."""
    view = acc[sl]
    view += frac * (1.0 - view)
