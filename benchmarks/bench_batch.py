"""Benchmark of ``pvp-plan batch``: throughput, batch-layer overhead, and process pool vs Dask equality.

Usage::

    .venv/bin/python benchmarks/bench_batch.py                 # phantom (1 mm) + shared real CTs, 1 and 2 workers
    .venv/bin/python benchmarks/bench_batch.py --repeat 2      # each study twice (more studies, steadier rates)
    .venv/bin/python benchmarks/bench_batch.py --no-dask --workers 1

The cohort is a manifest CSV in a temporary folder: the synthetic phantom at ~1 mm written as DICOM, and the
shared real CT ``../shared/data/abdomen_3mm/ct.nii.gz`` and ``thorax_1p5mm/ct.nii.gz`` read in place (skipped
when absent; never copied). Printed figures:

* throughput in studies per minute for each worker count;
* the batch layer's overhead: in the worker (task time minus pipeline time, per study) and end to end
  (batch wall time minus the summed pipeline time, over the summed pipeline time, 1 worker);
* whether a Dask ``LocalCluster`` with 2 workers writes tables identical to the 2-worker process pool.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REAL_CT = {"abdomen_3mm": SHARED / "abdomen_3mm" / "ct.nii.gz", "thorax_1p5mm": SHARED / "thorax_1p5mm" / "ct.nii.gz"}
#: Per-level vertebral-body label maps of the shared CTs (VerSe numbering), for --label-maps.
REAL_LABELS = {"abdomen_3mm": SHARED / "abdomen_3mm" / "reference" / "totalseg_vertebral_bodies_per_level.nii.gz"}
#: studies.csv columns that hold timings (allowed to differ between runs).
TIMING_COLUMNS = {"seconds", "compute_seconds"}


def build_cohort(folder: Path, *, repeat: int, spacing_mm: float, label_maps: bool) -> Path:
    """Write the phantom as DICOM under ``folder`` and a manifest naming it and the shared CTs.

    With ``label_maps`` the manifest gives each study a label map (the phantom's truth, TotalSegmentator's
    bodies for the abdomen; the thorax has none and is left out), so the pipeline runs without automatic
    segmentation.
    """
    from pvp_plan.sample_data import generate_phantom

    phantom = generate_phantom(seed=7, spacing_mm=(spacing_mm,) * 3)
    try:
        from pvp_plan.sample_data import write_phantom
    except ImportError:  # older tree: NIfTI through SimpleITK
        import SimpleITK as sitk

        dicom = folder / "phantom.nii.gz"
        folder.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(phantom.ct.to_sitk(), str(dicom))
        truth = folder / "phantom_bodies.nii.gz"
        sitk.WriteImage(phantom.ct.to_sitk(phantom.body_labels), str(truth))
    else:
        written = write_phantom(phantom, folder / "phantom", dicom=True, nifti=False)
        dicom = _dicom_folder(written, folder / "phantom")
        truth = written.get("body_labels") if isinstance(written, dict) else None
    entries = [(f"phantom_{spacing_mm:g}mm", dicom, truth)]
    for name, path in REAL_CT.items():
        if not path.exists():
            print(f"shared CT absent, skipped: {name}")
            continue
        seg = REAL_LABELS.get(name)
        if label_maps and (seg is None or not seg.exists()):
            print(f"{name}: no per-level body label map, left out of the label-map run")
            continue
        entries.append((name, path, seg))
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["study_id", "path", "segmentation"])
        for r in range(repeat):
            for name, path, seg in entries:
                writer.writerow([f"{name}-{r + 1}", str(path), str(seg) if label_maps and seg else ""])
    return manifest


def automatic_segmentation_available() -> bool:
    try:
        from pvp_plan.segment import segment_vertebral_bodies  # noqa: F401
    except ImportError:
        return False
    return True


def _dicom_folder(written, default: Path) -> Path:
    """The DICOM folder among what ``write_phantom`` returned (dict, path or None)."""
    if isinstance(written, dict):
        for key, value in written.items():
            if "dicom" in str(key).lower():
                return Path(value)
    if isinstance(written, (str, Path)) and Path(written).is_dir():
        return Path(written)
    candidates = sorted({p.parent for p in default.rglob("*.dcm")})
    return candidates[0] if candidates else default


def run(label: str, manifest: Path, out: Path, **options) -> dict:
    from pvp_plan.batch import BatchOptions, run_batch

    t0 = time.perf_counter()
    summary = run_batch(manifest, out, BatchOptions(salt="bench", **options))
    wall = time.perf_counter() - t0
    rows = list(csv.DictReader(open(out / "studies.csv", newline="")))
    compute = [float(r["compute_seconds"]) for r in rows if r["compute_seconds"]]
    task = [float(r["seconds"]) for r in rows if r["seconds"] and r["compute_seconds"]]
    in_worker = [(t - c) / c for t, c in zip(task, compute, strict=True) if c > 0]
    res = {
        "label": label, "studies": len(rows), "ok": summary.n_ok, "failed": summary.n_failed, "wall_s": wall,
        "per_min": 60.0 * len(rows) / wall, "compute_s": sum(compute),
        "mean_compute_s": statistics.mean(compute) if compute else float("nan"),
        "in_worker_overhead": statistics.mean(in_worker) if in_worker else float("nan"),
        "end_to_end_overhead": (wall - sum(compute)) / sum(compute) if compute else float("nan"),
    }
    for r in rows:
        if r["status"] != "ok":
            print(f"  {label}: {r['study_id']} {r['status']}: {r['message'][:120]}")
    workers = options.get("workers", 1)
    res["efficiency"] = sum(compute) / (wall * workers) if compute else float("nan")
    tail = (f"end to end {100 * res['end_to_end_overhead']:.1f} % (start-up included)" if workers == 1 else
            f"parallel efficiency {100 * res['efficiency']:.0f} % (pipeline time / (wall x workers))")
    print(f"{label:<28} {res['studies']:>3} studies ({res['ok']} ok) in {wall:6.1f} s = {res['per_min']:5.2f} "
          f"studies/min; pipeline {res['mean_compute_s']:.1f} s/study; overhead in worker "
          f"{100 * res['in_worker_overhead']:.2f} %; {tail}", flush=True)
    return res


def noop_compute(path: str, **kwargs) -> dict:
    """A compute step that does nothing: a batch of it measures the batch layer's fixed start-up cost."""
    return {"levels": []}


noop_compute.preload = ("pvp_plan.pipeline", "pvp_plan.segment", "pvp_plan.needle", "pvp_plan.io")


def startup_seconds(folder: Path) -> float:
    """Wall time of a one-study batch whose compute does nothing (discovery, pool spawn, imports, tables)."""
    from pvp_plan.batch import BatchOptions, run_batch

    manifest = folder / "noop.csv"
    manifest.write_text(f"study_id,path\nnoop,{manifest}\n")
    t0 = time.perf_counter()
    run_batch(manifest, folder / "noop_out", BatchOptions(compute="bench_batch:noop_compute", workers=1))
    return time.perf_counter() - t0


def same_tables(a: Path, b: Path) -> tuple[bool, str]:
    """levels.csv / levels.parquet byte-identical and studies.csv identical apart from timing columns."""
    for name in ("levels.csv", "levels.parquet"):
        if (a / name).exists() != (b / name).exists() or ((a / name).exists() and
                                                          (a / name).read_bytes() != (b / name).read_bytes()):
            return False, f"{name} differs"

    def strip(path: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in csv.DictReader(open(path, newline=""))]

    if strip(a / "studies.csv") != strip(b / "studies.csv"):
        return False, "studies.csv differs outside the timing columns"
    return True, "levels.csv, levels.parquet and studies.csv (timings aside) identical"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="copies of each study in the cohort (default 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--spacing", type=float, default=1.0, help="phantom voxel size in mm (default 1.0)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster comparison")
    parser.add_argument("--keep", type=Path, default=None, help="write the cohort and outputs here (kept)")
    parser.add_argument("--label-maps", action="store_true", help="give the studies label maps instead of automatic "
                        "segmentation (the default when pvp_plan.segment has no segment_vertebral_bodies)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="pvp-bench-batch-") as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        label_maps = args.label_maps or not automatic_segmentation_available()
        print(f"segmentation: {'label maps from the manifest' if label_maps else 'automatic'}")
        manifest = build_cohort(base / "cohort", repeat=args.repeat, spacing_mm=args.spacing, label_maps=label_maps)
        results = {w: run(f"process pool, {w} worker(s)", manifest, base / f"pool{w}", workers=w) for w in args.workers}
        if not args.no_dask:
            w = max(args.workers)
            run(f"Dask LocalCluster, {w} workers", manifest, base / "dask", workers=w, dask_local=True)
            ok, detail = same_tables(base / f"pool{w}", base / "dask")
            print(f"Dask vs process pool ({w} workers): {'IDENTICAL' if ok else 'DIFFERENT'}: {detail}")
        if 1 in results:
            r = results[1]
            startup = startup_seconds(base)
            steady = (r["wall_s"] - startup - r["compute_s"]) / r["compute_s"]
            verdict = "meets" if steady < 0.05 else "misses"
            print(f"batch-layer overhead (1 worker): {100 * r['in_worker_overhead']:.2f} % per study in the worker; "
                  f"{100 * steady:.1f} % per study end to end after a one-off start-up of {startup:.1f} s "
                  f"(discovery, worker spawn and imports, tables); {verdict} the 5 % target; "
                  f"{100 * r['end_to_end_overhead']:.1f} % with the start-up spread over {r['studies']} studies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
