"""A small analytic spine for the plan tests: three elliptic-cylinder bodies with a cortex, stacked along z.

Known truth: every body's voxel volume, heights, and the findings planted on the middle body (L2).
Uneven voxel spacing (z 2.0 mm, y/x 0.8 mm) on purpose.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from pvp_plan.io.ct_volume import ct_from_array
from pvp_plan.levels import Level
from pvp_plan.segment.types import Segmentation

SPACING = (2.0, 0.8, 0.8)
SHAPE = (64, 100, 90)
HALF_X, HALF_Y, HEIGHT = 20.0, 15.0, 26.0  # mm
CORTEX_MM, CORTEX_HU, TRAB_HU, SOFT_HU = 1.6, 700.0, 180.0, 30.0
LEVELS = ("L1", "L2", "L3")
DISC_MM = 8.0


def body_centres_mm() -> list[tuple[float, float, float]]:
    """(z, y, x) mm centres of L1, L2, L3 (L1 cranial, i.e. highest z)."""
    zc = SHAPE[0] * SPACING[0] / 2
    step = HEIGHT + DISC_MM
    yc, xc = 40.0, SHAPE[2] * SPACING[2] / 2
    return [(zc + step, yc, xc), (zc, yc, xc), (zc - step, yc, xc)]


def make_spine(*, wedge: float = 0.0, lytic: bool = False, sclerotic: bool = False, breach: bool = False,
               retropulsion: bool = False, trab_hu: float = TRAB_HU, crush: float = 0.0, noise_hu: float = 12.0,
               seed: int = 0, breach_unlabelled: bool = False, breach_height_mm: float = 14.0):
    """CT and Segmentation of the analytic spine; findings are planted on L2 only.

    wedge : anterior height loss fraction of L2 (posterior height kept).
    crush : uniform height loss fraction of L2 (all heights).
    retropulsion : a bone fragment (labelled L2) bulging 6 mm into the canal, left of centre.
    breach_unlabelled : with ``breach``, the tumour is left out of L2's label (as a segmentation that keeps to
        bone does): the body's outline has a 6 mm deep recess where the wall was.
    breach_height_mm : cranio-caudal extent of the breach (the body is 26 mm high).
    """
    z, y, x = (np.arange(n) * s for n, s in zip(SHAPE, SPACING, strict=True))
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    hu = np.full(SHAPE, SOFT_HU, dtype=np.float32)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    for name, (zc, yc, xc) in zip(LEVELS, body_centres_mm(), strict=True):
        r = np.sqrt(((X - xc) / HALF_X) ** 2 + ((Y - yc) / HALF_Y) ** 2)
        h = HEIGHT * (1 - crush) if name == "L2" else HEIGHT
        bottom = zc - h / 2
        top = zc + h / 2
        if name == "L2" and wedge:
            # anterior = small y: the top drops linearly from the posterior edge to the anterior edge
            frac = np.clip((yc + HALF_Y - Y) / (2 * HALF_Y), 0, 1)
            top = top - wedge * h * frac
        inside = (r <= 1.0) & (Z >= bottom) & (Z <= top)
        shell_r = 1.0 - CORTEX_MM / HALF_Y
        trab = inside & (r <= shell_r) & (Z >= bottom + CORTEX_MM) & (Z <= top - CORTEX_MM)
        hu[inside] = CORTEX_HU
        hu[trab] = trab_hu if name == "L2" else TRAB_HU
        labels[inside] = Level(name).label
        if name == "L2":
            if lytic:
                hu[trab & ((Z - zc) ** 2 + (Y - (yc - 4)) ** 2 + (X - (xc - 6)) ** 2 <= 8.0**2)] = 40.0
            if sclerotic:
                hu[trab & ((Z - zc) ** 2 + (Y - (yc - 4)) ** 2 + (X - (xc + 6)) ** 2 <= 8.0**2)] = 900.0
            if breach:
                # tumour replacing the posterior wall right of centre (patient right = smaller x), into the canal
                hole = (np.abs(Z - zc) <= breach_height_mm / 2) & (X >= xc - 14.0) & (X <= xc - 2.0) & (Y >= yc + HALF_Y - 6.0) \
                    & (Y <= yc + HALF_Y + 4.0)
                hu[hole & (inside | (Y > yc))] = 45.0
                if breach_unlabelled:
                    labels[hole & inside] = 0
            if retropulsion:
                frag = (np.abs(Z - (zc + 4.0)) <= 6.0) & (X >= xc + 2.0) & (X <= xc + 14.0) \
                    & (Y > yc) & (Y <= yc + HALF_Y + 6.0) & ~inside
                hu[frag] = 600.0
                labels[frag] = Level(name).label
    rng = np.random.default_rng(seed)
    hu = hu + rng.normal(0.0, noise_hu, SHAPE).astype(np.float32)
    ct = ct_from_array(np.round(hu).astype(np.int16), spacing_mm=SPACING, name="analytic-spine")
    seg = Segmentation.from_label_map(labels, ct, method="analytic truth")
    return ct, seg


@pytest.fixture(scope="session")
def normal_spine():
    return make_spine()


@functools.lru_cache(maxsize=1)
def phantom_with_truth_plan():
    """The default phantom (generated once per session) and its plan on the truth segmentation."""
    sample_data = pytest.importorskip("pvp_plan.sample_data")
    from pvp_plan.pipeline import PlanOptions, plan_case

    ph = sample_data.generate_phantom()
    seg = Segmentation.from_label_map(ph.body_labels, ph.ct, method="phantom truth")
    plan = plan_case(ph.ct, segmentation=seg, options=PlanOptions(plan_needles=False))
    return ph, seg, plan


@pytest.fixture(scope="session")
def phantom_plan():
    return phantom_with_truth_plan()
