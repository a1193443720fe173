"""``pvp-plan segment INPUT --out DIR`` (issue 3): the label map on the input's own grid, the per-level table in
JSON and CSV with provenance, and a clear error, with nothing written, when there is no spine to segment."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from pvp_plan.cli import app
from pvp_plan.io import load_ct
from pvp_plan.levels import Level
from pvp_plan.sample_data import generate_phantom
from pvp_plan.sample_data.write import write_phantom
from tests.conftest import dice

runner = CliRunner()


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """The 3 x 1 x 1 mm phantom written as NIfTI (stored RAS, as NIfTI files are) and segmented by the command."""
    root = tmp_path_factory.mktemp("segment_cli")
    ph = generate_phantom(seed=1, spacing_mm=(3.0, 1.0, 1.0))
    nifti = write_phantom(ph, root / "phantom", dicom=False)["ct_nifti"]
    result = runner.invoke(app, ["segment", str(nifti), "--out", str(root / "out")])
    return ph, nifti, root / "out", result


def _written_labels(out) -> np.ndarray:
    """The written label map on the internal (LPS, z y x) grid, as the CT loader puts the CT."""
    from pvp_plan.io.load import volume_from_image

    path = out / "vertebral_bodies.nii.gz"
    return volume_from_image(sitk.ReadImage(str(path)), source_path=str(path), source_format="nifti").hu


def test_the_label_map_is_written_on_the_input_grid(segmented):
    ph, nifti, out, result = segmented
    assert result.exit_code == 0, result.output
    source, written = sitk.ReadImage(str(nifti)), sitk.ReadImage(str(out / "vertebral_bodies.nii.gz"))
    assert written.GetSize() == source.GetSize()
    np.testing.assert_allclose(written.GetSpacing(), source.GetSpacing())
    np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(written.GetDirection(), source.GetDirection(), atol=1e-6)
    labels = _written_labels(out)  # read back onto the internal grid: each level lies on its true body
    for level in ("T12", "L1", "L3", "L5"):
        assert dice(labels == Level(level).label, ph.body_labels == Level(level).label) >= 0.9, level


def test_the_table_gives_volume_voxels_and_hu_per_level_with_provenance(segmented):
    ph, nifti, out, result = segmented
    doc = json.loads((out / "bodies.json").read_text())
    ct = load_ct(nifti)
    rows = {r["level"]: r for r in doc["bodies"]}
    assert list(rows) == ph.truth["level_order"]
    for level, row in rows.items():
        if row["cut_by_fov"]:
            assert row["volume_ml"] is None and row["not_plannable_reason"].startswith("cut by the field of view")
            continue
        assert row["volume_ml"] == pytest.approx(row["voxel_count"] * ct.voxel_volume_ml, abs=0.01)
        assert row["volume_ml"] == pytest.approx(ph.truth["levels"][level]["volume_ml"], rel=0.05), level
        assert row["not_plannable_reason"] is None
    labels = _written_labels(out)
    for level, row in rows.items():  # the HU figures are the CT's own over the written body
        hu = ct.hu[labels == Level(level).label]
        assert row["voxel_count"] == hu.size
        assert row["hu_median"] == pytest.approx(float(np.median(hu)), abs=0.1), level
        assert row["hu_mean"] == pytest.approx(float(hu.mean()), abs=0.1), level
    assert doc["provenance"]["software"].startswith("pvp-plan") and doc["provenance"]["series_ref"]
    assert doc["provenance"]["voxel_size_mm_zyx"] == pytest.approx([3.0, 1.0, 1.0])
    with open(out / "bodies.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["level"] for r in table] == list(rows) and "volume_ml" in table[0]
    assert "Vertebral bodies" in result.output and "L5" in result.output


def test_no_spine_in_view_is_a_clear_error_and_writes_nothing(tmp_path):
    """A CT of soft tissue only (40 HU): exit status 2, a message naming the problem, no traceback, no output."""
    img = sitk.GetImageFromArray(np.full((40, 64, 64), 40, np.int16))
    img.SetSpacing((1.0, 1.0, 2.0))
    path = tmp_path / "soft_tissue.nii.gz"
    sitk.WriteImage(img, str(path))
    cmd = [sys.executable, "-c", "from pvp_plan.cli import main; main()", "segment", str(path),
           "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pvp-plan: error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "vertebral_bodies.nii.gz").exists()
    assert not (tmp_path / "out" / "bodies.json").exists()
