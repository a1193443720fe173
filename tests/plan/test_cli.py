"""The ``pvp-plan plan`` and ``pvp-plan demo`` commands (thin adapters over the pipeline)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pvp_plan.cli import app
from tests.conftest import shared_path

runner = CliRunner()


@pytest.mark.shared_data
def test_plan_command_writes_outputs_and_prints_the_table(tmp_path):
    ct = shared_path("abdomen_3mm", "ct.nii.gz")
    labels = shared_path("abdomen_3mm", "reference", "totalseg_vertebral_bodies_per_level.nii.gz")
    result = runner.invoke(app, ["plan", str(ct), "--out", str(tmp_path), "--segmentation", str(labels),
                                 "--levels", "L1,L2", "--no-needles", "--osteoporosis-hu", "100"])
    assert result.exit_code == 0, result.output
    assert "L1" in result.output and "L2" in result.output and "CQ5" in result.output
    assert "Genant 1993" in result.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [lv["level"] for lv in plan["levels"]] == ["L1", "L2"]
    assert plan["options"]["density_thresholds"]["osteoporosis_hu"] == 100.0
    assert (tmp_path / "report.html").exists() and (tmp_path / "vertebral_bodies.nii.gz").exists()


@pytest.mark.parametrize("args, message", [
    (["--needle", "8G"], "needle gauge"),
    (["--levels", "L9"], "unknown vertebral level"),
    (["--lytic-hu", "300"], "density thresholds"),
])
def test_plan_command_option_errors_exit_2_without_traceback(tmp_path, args, message):
    cmd = [sys.executable, "-c", "from pvp_plan.cli import main; main()", "plan", str(tmp_path / "missing.nii.gz"),
           "--out", str(tmp_path / "out"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pvp-plan: error:" in proc.stderr and message in proc.stderr and "Traceback" not in proc.stderr


def test_demo_runs_the_full_plan_on_the_bundled_sample(tmp_path):
    pytest.importorskip("pvp_plan.sample_data")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--no-needles"])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and (tmp_path / "report.html").exists()
    plan = json.loads((tmp_path / "plan.json").read_text())
    flags = {lv["level"]: lv["flags"] for lv in plan["levels"]}
    assert "sclerotic" in flags["T11"] and "posterior wall breach" in flags["L2"] and "lytic" in flags["L3"]
    assert any(f.startswith("collapse") for f in flags["L1"])
