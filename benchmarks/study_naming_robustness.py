"""How the level names hold up when the shared real CT is perturbed (a robustness study, not a timing).

Run: ``.venv/bin/python benchmarks/study_naming_robustness.py`` (needs ../shared/data; under a minute on two cores).
The abdomen (3 mm) and the contrast chest CT (1.5 mm) are segmented after one change each: white noise added (HU),
resampled to another voxel size (linear, x y z in mm), cropped along z (fractions of the slices kept, from the
bottom), or filtered as another reconstruction kernel would (``sharp``: the image plus its difference from a 1 mm
Gaussian blur, edges overshooting as in a bone kernel; ``soft``: a 0.8 mm Gaussian blur). Each body is compared with TotalSegmentator's labels resampled the same way (the abdomen's per-level
bodies; the chest's T12 only). One line per case:

* ``ok``: every body that overlaps a reference level carries its name (and, on the abdomen, overlaps that level's
  reference body at Dice >= ``POOR_DICE``: a body holding half of two levels may carry the right name);
* ``wrong, uncertain``: a name or an outline is wrong, and the tool said so (that body is not plannable: its name
  or its outline is under the planning minimum, :func:`pvp_plan.plan.session.not_plannable_reason`): a loud failure;
* ``WRONG, CONFIDENT``: a wrong name or outline on a body the planner accepts: the failure that matters most.

On the abdomen the line ends with the lowest Dice of a body against its reference level.

Orientation is not varied here: flipping or permuting the axes of the NIfTI gives identical labels (the loader
resamples nothing; it reorders to LPS).
"""

from __future__ import annotations

import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.needle.real_cases

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
REFERENCE = {"abdomen_3mm": "totalseg_vertebral_bodies_per_level.nii.gz",
             "thorax_1p5mm": "totalseg_vertebra_T12.nii.gz"}
RESAMPLED_XYZ_MM = (None, (1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (1.25, 1.25, 2.5), (0.8, 0.8, 1.5), (1.5, 1.5, 2.0))
CROPS = ((0.1, 1.0), (0.2, 1.0), (0.0, 0.8), (0.3, 0.9))
NOISE_HU = (20.0, 45.0)
KERNELS = ("sharp", "soft")
SEED = 3
#: A body whose Dice against the reference level it overlaps most is under this holds the wrong bone (a level's half
#: joined to the next, the sacrum), whatever its name.
POOR_DICE = 0.7


def _case(args) -> str:
    from pvp_plan.io import ct_from_array, load_ct
    from pvp_plan.levels import Level
    from pvp_plan.plan.session import not_plannable_reason
    from pvp_plan.segment import segment_vertebral_bodies
    from tests.needle.real_cases import labels, reference_level, resampled

    case, spacing_xyz, noise_hu, crop, *kernel = args
    ct = load_ct(ROOT / case / "ct.nii.gz")
    ref_img = sitk.GetImageFromArray(labels(ROOT / case / "reference" / REFERENCE[case]).astype(np.uint8))
    ref_img.CopyInformation(ct.to_sitk())
    if spacing_xyz:
        hu = resampled(ct.to_sitk(), spacing_xyz, sitk.sitkLinear, -1024, sitk.sitkInt16).astype(np.float32)
        ref = resampled(ref_img, spacing_xyz, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        spacing = tuple(float(v) for v in spacing_xyz[::-1])
    else:
        hu, ref, spacing = ct.hu.astype(np.float32), sitk.GetArrayFromImage(ref_img), ct.spacing_mm
    origin = list(ct.origin_lps_mm)  # the grid is LPS-aligned with +z superior: slice 0 is the lowest
    if crop:
        lo, hi = int(crop[0] * hu.shape[0]), int(crop[1] * hu.shape[0])
        hu, ref = hu[lo:hi], ref[lo:hi]
        origin[2] += lo * spacing[0]
    if noise_hu:
        hu = hu + np.random.default_rng(SEED).normal(0.0, noise_hu, hu.shape)
    if kernel == ["sharp"]:
        hu = hu + (hu - ndimage.gaussian_filter(hu, [1.0 / s for s in spacing]))
    elif kernel == ["soft"]:
        hu = ndimage.gaussian_filter(hu, [0.8 / s for s in spacing])
    what = f"{case:13s} {str(spacing_xyz or 'native'):18s} noise {noise_hu or 0:3.0f} crop {str(crop or '-'):11s}"
    what += f" kernel {kernel[0] if kernel else '-':5s}"
    t0 = time.perf_counter()
    try:
        seg = segment_vertebral_bodies(ct_from_array(np.round(hu).astype(np.int16), spacing_mm=spacing,
                                                     origin_lps_mm=tuple(origin)))
    except Exception as exc:  # a study: report any failure, whatever it is, and go on
        return f"{what}  ERROR {type(exc).__name__}: {exc}"
    wrong, planned_wrong, dices = [], False, []
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for b in seg.bodies:
        problem = None
        if case == "abdomen_3mm":
            judged = reference_level(seg, b.label, ref)
            if judged is not None:
                truth, score = judged
                dices.append(score)
                if truth is not b.level:
                    problem = f"{b.level.value} is {truth.value}"
                elif score < POOR_DICE:
                    problem = f"{b.level.value} Dice {score:.2f}"
        else:  # the chest: T12 is the only reference level
            on_t12 = np.count_nonzero(ref[seg.labels == b.label]) > 0.5 * b.voxel_count
            if on_t12 and b.level is not Level.T12:
                problem = f"{b.level.value} is T12"
            elif not on_t12 and b.level is Level.T12:
                problem = "T12 is not T12"
        if problem:
            wrong.append(problem)
            planned_wrong |= not_plannable_reason(b, voxel_volume_ml=voxel_ml) is None
    verdict = "ok" if not wrong else ("WRONG, CONFIDENT" if planned_wrong else "wrong, uncertain")
    names = f"{seg.bodies[0].level.value}-{seg.bodies[-1].level.value}"  # cranial to caudal
    dice = f"Dice >= {min(dices):.2f} " if dices else ""
    return (f"{what}  {verdict:16s} {names:8s} confidence {max(b.level_confidence for b in seg.bodies):.2f} "
            f"{dice}{'; '.join(wrong)}  ({time.perf_counter() - t0:.1f} s)")


def main() -> int:
    if not ROOT.exists():
        sys.exit(f"shared data not found: {ROOT}")
    cases = [(c, s, n, None) for c in REFERENCE for s in RESAMPLED_XYZ_MM for n in (0.0, *NOISE_HU[:1])]
    cases += [(c, None, n, None) for c in REFERENCE for n in NOISE_HU[1:]]
    cases += [(c, None, 0.0, crop) for c in REFERENCE for crop in CROPS]
    cases += [(c, None, 0.0, None, kernel) for c in REFERENCE for kernel in KERNELS]
    with Pool(2) as pool:
        for line in pool.imap(_case, cases):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
