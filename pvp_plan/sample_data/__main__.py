"""Generate a phantom on demand: ``python -m pvp_plan.sample_data --out DIR [--spacing 1,0.8,0.8] [--seed N]``.

``--sample`` rebuilds the committed sample (``sample_data/phantom/``) with :data:`SAMPLE_KWARGS`.
The 1 mm class: ``--spacing 1,0.8,0.8 --fov 409.6,409.6`` (about 310 x 512 x 512 voxels).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pvp_plan.sample_data.phantom import generate_phantom
from pvp_plan.sample_data.write import write_phantom


def _floats(text: str, n: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated numbers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pvp_plan.sample_data", description=__doc__)
    p.add_argument("--out", type=Path, help="output folder (default with --sample: sample_data/phantom)")
    p.add_argument("--sample", action="store_true", help="rebuild the committed sample (SAMPLE_KWARGS)")
    p.add_argument("--spacing", default="2.0,0.8,0.8", type=lambda t: _floats(t, 3), help="z,y,x mm")
    p.add_argument("--fov", default="200,180", type=lambda t: _floats(t, 2),
                   help="in-plane field of view x,y mm (409.6,409.6 for the whole torso)")
    p.add_argument("--seed", default=0, type=int)
    p.add_argument("--levels", default=None, help="e.g. T10,T11,T12,L1,L2,L3,L4,L5")
    p.add_argument("--no-pathology", action="store_true", help="render every level normal")
    p.add_argument("--narrow-pedicle", default=None, help="level with ~4 mm pedicles, e.g. T11")
    p.add_argument("--flip", default="", help="store DICOM pixels mirrored: x, y or xy (orientation tests)")
    p.add_argument("--no-dicom", action="store_true")
    p.add_argument("--no-nifti", action="store_true")
    args = p.parse_args(argv)
    if args.out is None and not args.sample:
        p.error("--out is required (or --sample)")
    if args.sample:
        from pvp_plan.sample_data.sample import _REPO_SAMPLE, SAMPLE_KWARGS

        args.out = args.out or _REPO_SAMPLE
        t0 = time.perf_counter()
        paths = write_phantom(generate_phantom(**SAMPLE_KWARGS), args.out)
        print(json.dumps({"seconds": round(time.perf_counter() - t0, 1),
                          "files": {k: str(v) for k, v in paths.items()}}, indent=1))
        return 0
    kwargs = {"seed": args.seed, "spacing_mm": args.spacing, "fov_mm": args.fov,
              "narrow_pedicle_level": args.narrow_pedicle}
    if args.levels:
        kwargs["levels"] = tuple(args.levels.split(","))
    if args.no_pathology:
        kwargs["pathology"] = {}
    t0 = time.perf_counter()
    try:
        phantom = generate_phantom(**kwargs)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t1 = time.perf_counter()
    paths = write_phantom(phantom, args.out, dicom=not args.no_dicom, nifti=not args.no_nifti, dicom_flip=args.flip)
    t2 = time.perf_counter()
    print(json.dumps({"shape_zyx": list(phantom.ct.shape), "generate_s": round(t1 - t0, 1),
                      "write_s": round(t2 - t1, 1), "files": {k: str(v) for k, v in paths.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
