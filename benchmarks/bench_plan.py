"""Time of a plan (measurements and rules, then with needle paths) on a 512 x 512 x 400 CT, after its segmentation.

Run: ``.venv/bin/python benchmarks/bench_plan.py`` (needs ../shared/data). The CT is the real abdomen resampled to
1 x 0.8 x 0.8 mm and padded to 512 x 512 x 400 (as in ``bench_segment.py``). Prints seconds for the segmentation, for
the plan without and with the needle paths (given that segmentation; each of 3 runs), and the peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time

from bench_segment import DATA, padded, resampled

from pvp_plan.io import load_ct
from pvp_plan.pipeline import PlanOptions, plan_case
from pvp_plan.segment import segment_vertebral_bodies

REPEATS = 3


def main() -> None:
    if not DATA.exists():
        sys.exit(f"shared data not found: {DATA}")
    ct = padded(resampled(load_ct(DATA), (1.0, 0.8, 0.8)), (400, 512, 512))
    t = time.perf_counter()
    seg = segment_vertebral_bodies(ct)
    t_seg = time.perf_counter() - t
    for needles in (False, True):
        seconds = []
        for _ in range(REPEATS):  # this machine's timings vary by ~20 % from run to run: print each
            t = time.perf_counter()
            plan = plan_case(ct, segmentation=seg, options=PlanOptions(plan_needles=needles))
            seconds.append(time.perf_counter() - t)
        print(f"plan of {ct.shape} at {ct.spacing_mm} mm, {len(plan.levels)} levels, needle paths {needles}: "
              f"{' / '.join(f'{s:.1f}' for s in seconds)} s ({REPEATS} runs) after a {t_seg:.1f} s segmentation",
              flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
