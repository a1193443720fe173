"""Benchmark of the napari planner's re-plan after an edit (no Qt): seconds to recompute the edited level.

Usage::

    .venv/bin/python benchmarks/bench_napari_replan.py

The synthetic phantom (3 x 1.5 x 1.5 mm, as in tests/napari; its ground-truth bodies as the segmentation) is planned once; then
a few voxels are painted onto the middle body, and the model's ``recompute`` of the changed level is timed
(minimum and median of 5 edits). Printed: seconds per re-plan, and the edited level.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))


def main() -> int:
    from pvp_plan_napari._model import PlannerModel, make_options

    from pvp_plan.sample_data import generate_phantom

    ph = generate_phantom(seed=0, spacing_mm=(3.0, 1.5, 1.5))
    model = PlannerModel(ct=ph.ct, options=make_options(gauge="11G"))
    gen = model.compute(segmentation=model.segmentation_from_labels(np.asarray(ph.body_labels, np.uint8),
                                                                    method="truth"))
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        model.accept_run(stop.value)
    body = model.segmentation.bodies[len(model.segmentation.bodies) // 2]
    seconds = []
    for _ in range(5):
        ring = np.argwhere(ndimage.binary_dilation(model.labels == body.label) & (model.labels == 0))[:7]
        model.labels[tuple(ring.T)] = body.label
        update = model.recompute(model.changed_labels())
        model.accept_update(update)
        seconds.append(update.seconds)
    print(f"re-plan of {body.level.value} after painting 7 voxels: min {min(seconds):.2f} s, "
          f"median {statistics.median(seconds):.2f} s (5 edits, {ph.ct.shape} voxels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
