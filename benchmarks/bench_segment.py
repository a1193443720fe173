"""Time and peak memory of segment_vertebral_bodies on the real abdomen CT resampled to finer grids.

Run: ``.venv/bin/python benchmarks/bench_segment.py`` (needs ../shared/data). Prints seconds (minimum of
repeats) and peak RSS per grid size.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pvp_plan.io import ct_from_array, load_ct
from pvp_plan.segment import segment_vertebral_bodies

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "abdomen_3mm" / "ct.nii.gz"


def resampled(ct, spacing_zyx):
    img = ct.to_sitk()
    size = [int(round(n * s / t)) for n, s, t in zip(img.GetSize(), img.GetSpacing(), spacing_zyx[::-1])]
    ref = sitk.Image(size, sitk.sitkInt16)
    ref.SetSpacing(spacing_zyx[::-1])
    ref.SetOrigin(img.GetOrigin())
    arr = sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, -1024))
    return ct_from_array(arr.astype(np.int16), spacing_mm=spacing_zyx, origin_lps_mm=ct.origin_lps_mm)


def padded(ct, shape_zyx):
    """``ct`` centred in a grid of ``shape_zyx`` (air outside, cropped where larger): the 512 x 512 x 400 class."""
    out = np.full(shape_zyx, -1024, np.int16)
    src, dst = [], []
    for n, m in zip(ct.shape, shape_zyx):
        off = (m - n) // 2
        src.append(slice(max(0, -off), max(0, -off) + min(n, m)))
        dst.append(slice(max(0, off), max(0, off) + min(n, m)))
    out[tuple(dst)] = ct.hu[tuple(src)]
    origin = np.asarray(ct.origin_lps_mm) - np.array([d.start - s.start for d, s in zip(dst, src)])[::-1] \
        * np.asarray(ct.spacing_mm)[::-1]
    return ct_from_array(out, spacing_mm=ct.spacing_mm, origin_lps_mm=tuple(origin))


def cases(base):
    for spacing in [(3.0, 3.0, 3.0), (2.0, 1.5, 1.5), (1.0, 0.8, 0.8)]:
        yield spacing, resampled(base, spacing)
    yield (1.0, 0.8, 0.8), padded(resampled(base, (1.0, 0.8, 0.8)), (400, 512, 512))


def main() -> None:
    if not DATA.exists():
        sys.exit(f"shared data not found: {DATA}")
    base = load_ct(DATA)
    for spacing, ct in cases(base):
        times = []
        for _ in range(2):
            t = time.perf_counter()
            seg = segment_vertebral_bodies(ct)
            times.append(time.perf_counter() - t)
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"shape {ct.shape} ({np.prod(ct.shape) / 1e6:.1f} Mvox) spacing {spacing}: "
              f"{min(times):.2f} s (min of {len(times)}), peak RSS so far {peak_gb:.2f} GB, "
              f"bodies {[b.level.value for b in seg.bodies]}")


if __name__ == "__main__":
    main()
