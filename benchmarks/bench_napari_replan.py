"""Benchmark of the napari planner's re-plan after an edit (no Qt): seconds from a paint stroke to its new plan.

Usage::

    .venv/bin/python benchmarks/bench_napari_replan.py

Each case is planned once; then a few voxels are painted onto its middle body five times, and each edit's cycle is
timed as the widget runs it: ``changed_labels`` (which labels changed), ``recompute`` of those levels (the level
checks, the body's measures and needle paths) and ``accept_update``. Printed per case: the cycle's minimum and
median, and the median of its ``recompute`` alone.

Cases: the synthetic phantom (3 x 1.5 x 1.5 mm, as in tests/napari; its ground-truth bodies as the segmentation) and,
when ``../shared/data`` is present, the abdomen CT resampled to 1 x 0.8 x 0.8 mm and padded to 512 x 512 x 400 voxels
(``bench_segment.padded``; pvp-plan's own segmentation), the size of a clinical CT, where whole-map passes show.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))


def _planned_model(ct, segmentation=None, labels=None):
    """A napari model planned on ``segmentation``, or on a VerSe ``labels`` map of ``ct``'s grid."""
    from pvp_plan_napari._model import PlannerModel, make_options

    model = PlannerModel(ct=ct, options=make_options(gauge="11G"))
    if labels is not None:
        segmentation = model.segmentation_from_labels(np.asarray(labels, np.uint8), method="truth")
    gen = model.compute(segmentation=segmentation)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        model.accept_run(stop.value)
    return model


def _time_edits(name: str, model, n: int = 5) -> None:
    """Paint 7 voxels onto the middle body ``n`` times; print the edit cycle's timings."""
    body = model.segmentation.bodies[len(model.segmentation.bodies) // 2]
    cycles, recomputes = [], []
    for _ in range(n):
        ring = np.argwhere(ndimage.binary_dilation(model.labels == body.label) & (model.labels == 0))[:7]
        model.labels[tuple(ring.T)] = body.label
        t0 = time.perf_counter()
        update = model.recompute(model.changed_labels())
        model.accept_update(update)
        cycles.append(time.perf_counter() - t0)
        recomputes.append(update.seconds)
    print(f"{name} ({model.ct.shape} voxels): edit of {body.level.value} re-planned in min {min(cycles):.2f} s, "
          f"median {statistics.median(cycles):.2f} s ({n} edits; recompute alone median "
          f"{statistics.median(recomputes):.2f} s)", flush=True)


def main() -> int:
    from pvp_plan.sample_data import generate_phantom

    ph = generate_phantom(seed=0, spacing_mm=(3.0, 1.5, 1.5))
    _time_edits("phantom 3 x 1.5 x 1.5 mm, true bodies", _planned_model(ph.ct, labels=ph.body_labels))

    from bench_segment import DATA, padded, resampled

    if not DATA.exists():
        print(f"shared data not found ({DATA}): the 512 x 512 x 400 case is skipped")
        return 0
    from pvp_plan.io import load_ct
    from pvp_plan.segment import segment_vertebral_bodies

    ct = padded(resampled(load_ct(DATA), (1.0, 0.8, 0.8)), (400, 512, 512))
    _time_edits("abdomen CT at 1 x 0.8 x 0.8 mm, 512 x 512 x 400, pvp-plan's bodies",
                _planned_model(ct, segment_vertebral_bodies(ct)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
