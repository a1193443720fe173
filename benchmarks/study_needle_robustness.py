"""How the needle planner's real-CT results move with the body outline it is given (an accuracy study, not a timing).

Run: ``.venv/bin/python benchmarks/study_needle_robustness.py`` (needs ../shared/data). For the abdomen L1-L5 and the
chest T12 it plans both sides on several body segmentations and prints, per segmentation, how many of the 12 sides
meet issue 5's target (a path called safe, at least 95 % of its bone course inside TotalSegmentator's vertebra,
clear of its canal, isthmus width in the published range) and how many paths called safe leave that vertebra, and of
those how many have the verdict "safe" rather than "safe_unverified" (``NeedlePath.verdict``):

* ``reference``: TotalSegmentator's bodies (what ``tests/needle`` checks first);
* ``reference, one slice less / more at each end``: the same bodies with their end slices trimmed or grown, the
  size of an end-slice decision at 3 mm;
* ``reference, convex sections``: each axial section replaced by its convex hull (posterolateral corners filled);
* ``automatic``: pvp-plan's own segmentation (what a user plans on).

A planner that depends on the body only through robust landmarks gives the same count on every row.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.needle.real_cases

from pvp_plan.needle import plan_level_needle_paths  # noqa: E402
from pvp_plan.rules.needle import PEDICLE_WIDTH_LUMBAR_MM, PEDICLE_WIDTH_THORACIC_MM  # noqa: E402
from pvp_plan.segment.types import Segmentation  # noqa: E402

CASES = [("abdomen_3mm", lv) for lv in ("L1", "L2", "L3", "L4", "L5")] + [("thorax_1p5mm", "T12")]


def main() -> int:
    from tests.needle.real_cases import (
        automatic_segmentation,
        convex_sections,
        ends_moved,
        path_against_reference,
        reference,
        reference_canal_distance_mm,
    )

    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not root.exists():
        sys.exit(f"shared data not found: {root}")
    variants = {"reference": None, "reference, one slice less at each end": lambda m: ends_moved(m, -1),
                "reference, one slice more at each end": lambda m: ends_moved(m, 1),
                "reference, convex sections": convex_sections, "automatic": "automatic"}
    for name, change in variants.items():
        met, safe_outside, verified_outside, sides = 0, 0, 0, []
        for case, level in CASES:
            ct, seg, vmask = reference(case, level)
            if change == "automatic":
                seg = automatic_segmentation(case)
            elif change is not None:
                seg = Segmentation.from_label_map(change(seg.labels), ct, method=f"reference, {name}")
            canal_d = reference_canal_distance_mm(vmask, ct.spacing_mm)
            band = PEDICLE_WIDTH_THORACIC_MM if level.startswith("T") else PEDICLE_WIDTH_LUMBAR_MM
            for p in plan_level_needle_paths(ct, seg, level):
                tag = f"{level}{p.side[0]}"
                if p.target_lps_mm is None:
                    sides.append(f"{tag}:none")
                    continue
                inside, canal_mm = path_against_reference(ct, p, vmask, canal_d)
                out_of_reference = inside < 0.95 or canal_mm == 0.0
                ok = p.safe and not out_of_reference and band.low <= p.pedicle.width_mm <= band.high
                met += ok
                safe_outside += p.safe and out_of_reference
                verified_outside += p.verdict == "safe" and out_of_reference
                outside = "SAFE-OUTSIDE" if p.verdict == "safe" else "UNVERIFIED-OUTSIDE"
                sides.append(f"{tag}:{'ok' if ok else outside if p.safe and out_of_reference else 'no'}")
        print(f"{name:40s} target met {met:2d} of 12, safe but outside the reference {safe_outside} "
              f"({verified_outside} with verdict safe)   " + " ".join(sides), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
