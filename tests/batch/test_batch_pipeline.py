"""``pvp-plan batch`` with the real pipeline on small phantoms: statuses, privacy, Dask equality, kill and resume."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pvp_plan.batch import BatchOptions, run_batch
from pvp_plan.batch.task import DEFAULT_COMPUTE
from tests.batch.helpers import (
    COUNTER_ENV,
    IDENTIFIERS,
    TRUTH_ENV,
    truncate,
    truth_key,
    write_ct_dicom,
    write_dicom_series,
)

REPO = Path(__file__).resolve().parents[2]
SALT = "test-salt"
PLAN_OPTIONS = {"plan_needles": False}  # measurements only: keeps the suite fast
TIMING = {"seconds", "compute_seconds"}
#: The real pipeline given the phantoms' ground-truth label maps as external segmentations (loading,
#: measuring, planning, writing all real): these tests are about the batch layer; the automatic
#: segmentation's accuracy is tested in tests/segment, and test_default_compute_segments_by_itself
#: runs one study through the default compute.
COMPUTE = "tests.batch.helpers:plan_with_truth"
COUNTING = "tests.batch.helpers:counting_plan_with_truth"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        yield _cohort(tmp_path_factory, mp)


def _cohort(tmp_path_factory, mp: pytest.MonkeyPatch) -> dict:
    """Two small phantoms (DICOM with identifying headers, NIfTI), a truncated DICOM copy, garbage, an MR series."""
    import SimpleITK as sitk

    from pvp_plan.sample_data.phantom import generate_phantom

    root = tmp_path_factory.mktemp("cohort") / "in"
    uids = {}
    a = generate_phantom(seed=1, spacing_mm=(3.0, 1.5, 1.5), levels=("T12", "L1", "L2"))
    uids["good"] = write_ct_dicom(root / "PID998877_Doe" / "series1", a.ct)
    b = generate_phantom(seed=2, spacing_mm=(3.0, 1.5, 1.5), levels=("L1", "L2", "L3"), pathology={})
    (root / "b").mkdir(parents=True)
    sitk.WriteImage(b.ct.to_sitk(), str(root / "b" / "phantom.nii.gz"))
    shutil.copytree(root / "PID998877_Doe" / "series1", root / "c" / "truncated")
    for f in sorted((root / "c" / "truncated").iterdir()):
        truncate(f, f.stat().st_size - 4000)  # cut inside the pixel data: headers read, pixels do not
    uids["truncated"] = uids["good"]
    (root / "d").mkdir()
    (root / "d" / "garbage.nii.gz").write_bytes(b"\x1f\x8b this is not a NIfTI file")
    uids["mr"] = write_dicom_series(root / "e" / "mr", modality="MR", n_slices=3)
    labels = root.parent / "labels" / "b_bodies.nii.gz"  # outside the tree: a label map is an image file too
    labels.parent.mkdir()
    sitk.WriteImage(b.ct.to_sitk(b.body_labels), str(labels))
    truth_ml = {lv: float((b.body_labels == lab).sum()) * b.ct.voxel_volume_ml
                for lv, lab in (("L1", 20), ("L2", 21), ("L3", 22))}
    truth_dir = root.parent / "truth"  # ground truth per input, for COMPUTE without automatic segmentation
    truth_dir.mkdir()
    sitk.WriteImage(a.ct.to_sitk(a.body_labels), str(truth_dir / truth_key(root / "PID998877_Doe" / "series1")))
    sitk.WriteImage(b.ct.to_sitk(b.body_labels), str(truth_dir / truth_key(root / "b" / "phantom.nii.gz")))
    mp.setenv(TRUTH_ENV, str(truth_dir))  # inherited by worker processes
    return {"root": root, "uids": uids, "labels": labels, "truth_ml": truth_ml}


@pytest.fixture(scope="module")
def pool_run(cohort, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pool") / "out"
    run_batch(cohort["root"], out, BatchOptions(workers=2, salt=SALT, plan_options=PLAN_OPTIONS, compute=COMPUTE))
    return out


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _by_kind(out: Path) -> dict[str, dict]:
    """studies.csv rows by kind of study, told apart by status and message (no paths in the outputs)."""
    rows = _rows(out / "studies.csv")
    kinds = {}
    for r in rows:
        if r["status"] == "ok":
            kinds.setdefault("ok", []).append(r)
        elif "MR" in r["message"]:
            kinds["mr"] = r
        elif "pixel data" in r["message"]:
            kinds["truncated"] = r
        else:
            kinds["garbage"] = r
    return kinds


def test_good_studies_succeed_bad_ones_are_recorded(pool_run: Path) -> None:
    kinds = _by_kind(pool_run)
    assert len(kinds["ok"]) == 2
    assert kinds["mr"]["status"] == "skipped" and kinds["mr"]["message"] == "modality MR (not CT)"
    assert kinds["truncated"]["status"] == "failed" and "<input>" in kinds["truncated"]["message"]
    assert kinds["garbage"]["status"] == "failed" and kinds["garbage"]["message"]
    levels = _rows(pool_run / "levels.csv")
    ok_ids = {r["study_id"] for r in kinds["ok"]}
    assert {r["study_id"] for r in levels} == ok_ids
    for r in kinds["ok"]:
        assert int(r["n_levels"]) >= 1 and float(r["voxel_z_mm"]) == 3.0 and float(r["compute_seconds"]) > 0
    measured = [float(r["body_volume_ml"]) for r in levels if r["body_volume_ml"]]
    assert measured and all(5.0 < v < 80.0 for v in measured)
    for sid in ok_ids:
        assert {p.name for p in (pool_run / "studies" / sid).iterdir()} >= {"plan.json", "result.json",
                                                                           "vertebral_bodies.nii.gz"}


def test_no_identifier_in_any_output(pool_run: Path, cohort: dict) -> None:
    forbidden = [*IDENTIFIERS.values(), "Janeqx", "PID998877_Doe", str(cohort["root"]), cohort["root"].parent.name,
                 *cohort["uids"].values()]
    checked = 0
    for file in pool_run.rglob("*"):
        if not file.is_file():
            continue
        data = file.read_bytes()
        if file.name.endswith(".gz"):
            import gzip

            data = gzip.decompress(data)
        text = data.decode("latin-1")
        for word in forbidden:
            assert word not in text, f"{word!r} found in {file.relative_to(pool_run)}"
        checked += 1
    assert checked >= 10


def _same_tables(a: Path, b: Path) -> None:
    assert (a / "levels.csv").read_bytes() == (b / "levels.csv").read_bytes()
    assert (a / "levels.parquet").read_bytes() == (b / "levels.parquet").read_bytes()
    strip = [{k: v for k, v in r.items() if k not in TIMING} for r in _rows(a / "studies.csv")]
    assert strip == [{k: v for k, v in r.items() if k not in TIMING} for r in _rows(b / "studies.csv")]


def test_manifest_with_external_label_maps(cohort: dict, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("study_id,path,segmentation\n"
                        f"case-b,{cohort['root'] / 'b' / 'phantom.nii.gz'},{cohort['labels']}\n"
                        f"case-missing,{cohort['root'] / 'nope.nii.gz'},\n")
    summary = run_batch(manifest, tmp_path / "out", BatchOptions(workers=1, plan_options=PLAN_OPTIONS))
    assert (summary.n_ok, summary.n_failed) == (1, 1)
    levels = {r["level"]: r for r in _rows(tmp_path / "out" / "levels.csv")}
    assert {r["study_id"] for r in levels.values()} == {"case-b"}
    for level, truth in cohort["truth_ml"].items():  # the truth map's own volume, through the whole pipeline
        if levels[level]["body_volume_ml"]:
            assert float(levels[level]["body_volume_ml"]) == pytest.approx(truth, abs=0.1)
    failed = _rows(tmp_path / "out" / "studies.csv")[1]
    assert failed["study_id"] == "case-missing" and "no such file" in failed["message"]
    assert str(cohort["root"]) not in failed["message"]


def test_dask_local_cluster_gives_identical_tables(pool_run: Path, cohort: dict, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "dask"
    summary = run_batch(cohort["root"], out, BatchOptions(workers=2, dask_local=True, salt=SALT,
                                                          plan_options=PLAN_OPTIONS, compute=COMPUTE))
    assert summary.backend.startswith("dask")
    _same_tables(pool_run, out)


def test_killed_batch_resumes_without_recomputing(pool_run: Path, cohort: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    counter = tmp_path / "computed.txt"
    cmd = [sys.executable, "-c", "from pvp_plan.cli import main; main()", "batch", str(cohort["root"]), "--out",
           str(out), "--workers", "1", "--salt", SALT, "--no-needles", "--no-progress",
           "--task", COUNTING]
    env = {**os.environ, COUNTER_ENV: str(counter),
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    finished = _wait_for_first_ok(out, proc, timeout_s=120)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole batch: coordinator and workers, like a power cut
    proc.wait(timeout=30)
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("studies/*/result.json")}
    assert finished in done_before
    rerun = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr  # the corrupt studies failed (again recorded, not recomputed)
    for sid, mtime in done_before.items():
        assert (out / "studies" / sid / "result.json").stat().st_mtime_ns == mtime, f"{sid} was rewritten"
    computed = counter.read_text().split()
    assert computed.count(finished) == 1
    assert all(computed.count(sid) <= 1 for sid in done_before)
    _same_tables(pool_run, out)


def _wait_for_first_ok(out: Path, proc: subprocess.Popen, *, timeout_s: float) -> str:
    """ID of the first study whose result.json says ok (polled), while the batch still runs."""
    import json

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in out.glob("studies/*/result.json"):
            try:
                if json.loads(path.read_text())["status"] == "ok":
                    return path.parent.name
            except (OSError, ValueError):
                continue
        if proc.poll() is not None:
            pytest.fail("the batch ended before any study finished")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("no study finished in time")


def test_default_compute_segments_by_itself(tmp_path: Path) -> None:
    import SimpleITK as sitk

    """The default task (automatic segmentation) on one lumbosacral phantom: ok, levels named from the sacrum."""
    from pvp_plan.sample_data.phantom import generate_phantom

    ph = generate_phantom(seed=3, spacing_mm=(2.0, 1.0, 1.0))
    src = tmp_path / "in"
    src.mkdir()
    sitk.WriteImage(ph.ct.to_sitk(), str(src / "phantom.nii.gz"))
    out = tmp_path / "out"
    run_batch(src, out, BatchOptions(workers=1, salt=SALT, plan_options=PLAN_OPTIONS, compute=DEFAULT_COMPUTE))
    (study,) = _rows(out / "studies.csv")
    assert study["status"] == "ok", study["message"]
    levels = {r["level"]: r for r in _rows(out / "levels.csv")}
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(levels)
    assert all(float(levels[lv]["body_volume_ml"]) > 10.0 for lv in ("L2", "L4", "L5"))
