"""How well the needle planner measures the phantom's pedicles (an accuracy study, not a timing).

Run: ``.venv/bin/python benchmarks/study_isthmus_phantom.py [--quick]``. For phantoms at several voxel sizes and
seeds it plans both sides of T11-L5 on the phantom's TRUE bodies (``Segmentation.from_label_map(body_labels)``, so
the segmentation's errors stay out) and prints, per pedicle, the measured isthmus width and height against the
truth (mm, measured - true), how far the fitted pedicle axis lies from the true one (degrees), where the chosen
isthmus centre lies from the true one along the true axis (mm, + anterior) and the path's verdict; then, per
phantom, the range of the width and height errors. Issue 5's target is widths within 0.5 mm (``tests/needle``
asserts it where it holds; the misses there are strict xfails with their causes).

``--quick``: the 1 x 0.6 x 0.6 mm phantom (seed 2) only, the one the tests use.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pvp_plan.needle import plan_level_needle_paths
from pvp_plan.sample_data import generate_phantom
from pvp_plan.segment.types import Segmentation

LEVELS = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")
#: (seed, spacing z y x in mm): thin, 1 mm isotropic, 2 mm (the generator's default) and 3 mm slices.
PHANTOMS = [(2, (1.0, 0.6, 0.6)), (1, (1.0, 1.0, 1.0)), (0, (2.0, 0.8, 0.8)), (1, (2.0, 1.0, 1.0)),
            (1, (3.0, 0.8, 0.8))]


def _rows(seed: int, spacing_mm: tuple[float, float, float]) -> list[dict]:
    """One row per (level, side) of one phantom: errors in mm and degrees, as described in the module docstring."""
    ph = generate_phantom(seed=seed, spacing_mm=spacing_mm)
    seg = Segmentation.from_label_map(ph.body_labels, ph.ct, method="phantom truth")
    rows = []
    for level in LEVELS:
        truth = ph.truth["levels"][level]["pedicles"]
        for p in plan_level_needle_paths(ph.ct, seg, level):
            t, m = truth[p.side], p.pedicle
            row = {"level": level, "side": p.side, "verdict": p.verdict, "width_mm": m.width_mm}
            if m.width_mm is not None:
                axis, centre = np.array(t["axis_lps"]), np.array(t["isthmus_center_lps_mm"])
                row.update(width_err=m.width_mm - t["width_mm"], height_mm=m.height_mm,
                           height_err=m.height_mm - t["height_mm"],
                           axis_deg=float(np.degrees(np.arccos(min(1.0, abs(float(axis @ np.array(m.axis_lps))))))),
                           along_mm=float((np.array(m.isthmus_center_lps_mm) - centre) @ axis))
            rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the 1 x 0.6 x 0.6 mm phantom (seed 2) only")
    phantoms = PHANTOMS[:1] if ap.parse_args().quick else PHANTOMS
    for seed, spacing in phantoms:
        t0 = time.perf_counter()
        rows = _rows(seed, spacing)
        print(f"\nphantom seed {seed}, {' x '.join(f'{s:g}' for s in spacing)} mm ({time.perf_counter() - t0:.0f} s)")
        print("level side   width (err)      height (err)     axis off  centre along  verdict")
        for r in rows:
            if r["width_mm"] is None:
                print(f"{r['level']:5s} {r['side']:6s} no pedicle found{'':37s}{r['verdict']}")
                continue
            print(f"{r['level']:5s} {r['side']:6s} {r['width_mm']:5.2f} ({r['width_err']:+.2f})  "
                  f"{r['height_mm']:5.2f} ({r['height_err']:+.2f})  {r['axis_deg']:5.1f} deg  "
                  f"{r['along_mm']:+5.1f} mm     {r['verdict']}")
        found = [r for r in rows if r["width_mm"] is not None]
        if found:
            we, he = [r["width_err"] for r in found], [r["height_err"] for r in found]
            within = sum(abs(e) <= 0.5 for e in we)
            print(f"widths {min(we):+.2f}..{max(we):+.2f} mm ({within} of {len(rows)} within 0.5 mm); "
                  f"heights {min(he):+.2f}..{max(he):+.2f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
