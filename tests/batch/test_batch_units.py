"""Batch layer on its own (fast stand-in compute step): discovery, manifest, crashes, resume rules, privacy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from pvp_plan.batch import BatchError, BatchOptions, ManifestError, discover, read_manifest, run_batch
from pvp_plan.batch.task import CRASH_MESSAGE, redact
from tests.batch.helpers import IDENTIFIERS, truncate, write_dicom_series

FAKE = "tests.batch.helpers:fake_compute"


def _image(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 5, 6), value, dtype=np.int16)), str(path))
    return path


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    _image(root / "PID998877_Doe" / "ct.nii.gz", 1)
    _image(root / "b" / "scan.nrrd", 2)
    write_dicom_series(root / "c" / "mixed", modality="CT", n_slices=3)
    write_dicom_series(root / "c" / "mixed", modality="CT", n_slices=1, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write_dicom_series(root / "d" / "mr", modality="MR", n_slices=2)
    write_dicom_series(root / "e" / "broken", modality="CT", n_slices=2)
    for f in (root / "e" / "broken").iterdir():
        truncate(f, 200)  # inside the header
    (root / "b" / "notes.txt").write_text("not an image")
    (root / ".hidden.nii.gz").write_bytes(b"ignored")
    return root


def test_tree_discovery_rules(tree: Path) -> None:
    studies = discover(tree, salt="x")
    by_status = {}
    for s in studies:
        by_status.setdefault(s.status, []).append(s)
    assert len(by_status[None]) == 3  # two image files and the CT series
    assert {Path(s.path).name for s in by_status[None]} == {"ct.nii.gz", "scan.nrrd", "mixed"}
    assert sorted(s.message for s in by_status["skipped"]) == ["CT localizer (scout), not a volume",
                                                               "modality MR (not CT)"]
    assert [s.message.split(" (")[0] for s in by_status["failed"]] == ["2 DICOM file(s), none with a readable header"]
    assert [s.study_id for s in studies] == sorted(s.study_id for s in studies)
    assert [s.study_id for s in discover(tree, salt="x")] == [s.study_id for s in studies]  # stable for a salt
    assert {s.study_id for s in discover(tree, salt="y")}.isdisjoint({s.study_id for s in studies})
    ct = next(s for s in by_status[None] if s.series_uid)
    assert IDENTIFIERS["PatientID"] in ct.identifiers and "PID998877_Doe" not in ct.identifiers


def test_tree_batch_records_every_status_and_redacts(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_batch(tree, out, BatchOptions(compute=FAKE, workers=1, salt="s"))
    assert (summary.n_ok, summary.n_failed, summary.n_skipped) == (3, 1, 2)
    studies = _rows(out / "studies.csv")
    assert [r["study_id"] for r in studies] == sorted(r["study_id"] for r in studies)
    assert {r["status"] for r in studies} == {"ok", "failed", "skipped"}
    levels = _rows(out / "levels.csv")
    assert len(levels) == 6 and list(levels[0]) == ["study_id", "level", "body_volume_ml", "plannable", "genant_grade"]
    assert levels[0]["genant_grade"] == ""  # not measured is empty, never 0
    _assert_no_identifiers(out, tree)
    first = (out / "levels.csv").read_bytes()
    run_batch(tree, tmp_path / "out2", BatchOptions(compute=FAKE, workers=2, salt="s"))
    assert (tmp_path / "out2" / "levels.csv").read_bytes() == first


def _assert_no_identifiers(out: Path, tree: Path) -> None:
    forbidden = [*IDENTIFIERS.values(), "PID998877_Doe", str(tree), "Janeqx"]
    for file in out.rglob("*"):
        if file.is_file():
            text = file.read_bytes().decode("latin-1")
            for word in forbidden:
                assert word not in text, f"{word!r} found in {file.relative_to(out)}"


def test_crashed_worker_fails_its_study_only(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for name in ("a", "b", "crash", "c", "raise"):
        _image(root / f"{name}.nii.gz", len(name))
    out = tmp_path / "out"
    summary = run_batch(root, out, BatchOptions(compute=FAKE, workers=2, keep_identifiers=True))
    status = {Path(r["input_path"]).name: r for r in _rows(out / "studies.csv")}
    assert status["crash.nii.gz"]["status"] == "failed"
    assert status["crash.nii.gz"]["message"] == CRASH_MESSAGE
    assert status["raise.nii.gz"]["message"].startswith("internal error ValueError: cannot read")
    assert (out / "studies" / status["raise.nii.gz"]["study_id"] / "traceback.txt").exists()
    assert all(status[n]["status"] == "ok" for n in ("a.nii.gz", "b.nii.gz", "c.nii.gz"))
    assert (summary.n_ok, summary.n_failed) == (3, 2)


def test_resume_rules(tmp_path: Path) -> None:
    root = tmp_path / "in"
    _image(root / "a.nii.gz")
    out = tmp_path / "out"
    run_batch(root, out, BatchOptions(compute=FAKE))
    with pytest.raises(BatchError, match="add --resume"):
        run_batch(root, out, BatchOptions(compute=FAKE))
    with pytest.raises(BatchError, match="plan_options differ"):
        run_batch(root, out, BatchOptions(compute=FAKE, resume=True, plan_options={"levels": ["L1"]}))
    with pytest.raises(BatchError, match="--salt differs"):
        run_batch(root, out, BatchOptions(compute=FAKE, resume=True, salt="other"))
    mtime = next(out.glob("studies/*/result.json")).stat().st_mtime_ns
    summary = run_batch(root, out, BatchOptions(compute=FAKE, resume=True))
    assert (summary.n_reused, summary.n_computed) == (1, 0)
    assert next(out.glob("studies/*/result.json")).stat().st_mtime_ns == mtime


def test_manifest(tmp_path: Path) -> None:
    _image(tmp_path / "imgs" / "one.nii.gz")
    manifest = tmp_path / "m.csv"
    manifest.write_text("study_id,path,anchor\nP-2,imgs/missing.nii.gz,\nP-1,imgs/one.nii.gz,L5\n")
    studies = read_manifest(manifest)
    assert [(s.study_id, Path(s.path).name, s.anchor) for s in studies] == [("P-1", "one.nii.gz", "L5"),
                                                                           ("P-2", "missing.nii.gz", None)]
    summary = run_batch(manifest, tmp_path / "out", BatchOptions(compute=FAKE))
    assert (summary.n_ok, summary.n_failed) == (1, 1)
    rows = {r["study_id"]: r for r in _rows(tmp_path / "out" / "studies.csv")}
    assert "imgs" not in rows["P-2"]["message"] and "missing" not in rows["P-2"]["message"]


@pytest.mark.parametrize("text, match", [
    ("id,file\nA,x.nii\n", "must name study_id and path"),
    ("study_id,path\nA,x.nii\nA,y.nii\n", "repeats line 2"),
    ("study_id,path\n../A,x.nii\n", "not usable as a folder name"),
    ("study_id,path\nA,\n", "has no path"),
])
def test_manifest_errors(tmp_path: Path, text: str, match: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(ManifestError, match=match):
        read_manifest(manifest)


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, "at least 1"),
    ({"scheduler": "tcp://127.0.0.1:1", "dask_local": True}, "not both"),
    ({"max_memory_gb": 0}, "positive"),
])
def test_options_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(BatchError, match=match):
        BatchOptions(**kwargs)


def test_missing_input_and_foreign_output(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no such file or folder"):
        run_batch(tmp_path / "nope", tmp_path / "out", BatchOptions(compute=FAKE))
    (tmp_path / "used" / "studies").mkdir(parents=True)
    with pytest.raises(BatchError, match="no batch_config.json"):
        run_batch(tmp_path, tmp_path / "used", BatchOptions(compute=FAKE))


def test_redact() -> None:
    ids = ("/data/PID1234/scan", "PID1234", "Doe", "Jane")
    text = "/data/PID1234/scan/IM1.dcm: PID1234 Doe^Jane uid 1.2.840.113619.2.55.3 Doetown v0.1.0"
    assert redact(text, ids) == "<input>/IM1.dcm: <redacted> <redacted>^<redacted> uid <uid> Doetown v0.1.0"


def test_keep_identifiers_columns(tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.nii.gz")
    run_batch(tmp_path / "in", tmp_path / "out", BatchOptions(compute=FAKE, keep_identifiers=True))
    row = _rows(tmp_path / "out" / "studies.csv")[0]
    assert row["input_path"] == str(tmp_path / "in" / "a.nii.gz")
    plan = json.loads(next((tmp_path / "out").glob("studies/*/plan.json")).read_text())
    assert plan["source"] == str(tmp_path / "in" / "a.nii.gz")


def test_memory_limit_fails_the_hungry_study(tmp_path: Path) -> None:
    root = tmp_path / "in"
    _image(root / "hungry.nii.gz")
    _image(root / "fine.nii.gz")
    summary = run_batch(root, tmp_path / "out", BatchOptions(compute="tests.batch.helpers:hungry_compute",
                                                             max_memory_gb=2.0, keep_identifiers=True))
    status = {Path(r["input_path"]).name: r for r in _rows(tmp_path / "out" / "studies.csv")}
    assert status["hungry.nii.gz"]["status"] == "failed"
    assert status["hungry.nii.gz"]["message"].startswith("out of memory")
    assert status["fine.nii.gz"]["status"] == "ok" and summary.n_ok == 1


def test_interrupt_keeps_finished_studies_and_resume_completes(tmp_path: Path) -> None:
    from pvp_plan.batch import BatchProgress

    root = tmp_path / "in"
    for name in ("a", "b", "c", "d"):
        _image(root / f"{name}.nii.gz", ord(name))

    class CtrlC(BatchProgress):
        def study_done(self, result: dict) -> None:
            raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first study finished

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt) as info:
        run_batch(root, out, BatchOptions(compute=FAKE, workers=1), progress=CtrlC())
    assert info.value.batch_summary.interrupted
    kept = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("studies/*/result.json")}
    assert 1 <= len(kept) < 4 and len(_rows(out / "studies.csv")) == len(kept)
    summary = run_batch(root, out, BatchOptions(compute=FAKE, workers=1, resume=True))
    assert (summary.n_ok, summary.n_reused, summary.n_computed) == (4, len(kept), 4 - len(kept))
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("studies/*/result.json") if p.parent.name in kept} \
        == kept


def test_one_batch_per_output_folder(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    _image(tmp_path / "in" / "a.nii.gz")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".batch.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another batch holds the folder
        with pytest.raises(BatchError, match="another pvp-plan batch is running"):
            run_batch(tmp_path / "in", out, BatchOptions(compute=FAKE))
    assert not (out / "batch_config.json").exists()
