"""``pvp-plan view INPUT`` opens napari with the CT in physical space and the PVP planner docked."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def test_cli_imports_without_napari():
    code = "import sys, pvp_plan.cli; assert 'napari' not in sys.modules and 'qtpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_view_missing_input_is_a_short_error(tmp_path):
    out = subprocess.run([sys.executable, "-c", "from pvp_plan.cli import main; main()", "view",
                          str(tmp_path / "nope.nii.gz")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.napari
def test_view_opens_ct_and_docks_the_planner(make_napari_viewer, monkeypatch, phantom, phantom_nifti):
    napari = pytest.importorskip("napari")
    from typer.testing import CliRunner

    from pvp_plan.cli import app

    viewers = []

    def fake_viewer(**kwargs):
        viewers.append(make_napari_viewer())
        return viewers[-1]

    monkeypatch.setattr(napari, "Viewer", fake_viewer)
    monkeypatch.setattr(napari, "run", lambda *a, **k: None)
    result = CliRunner().invoke(app, ["view", str(phantom_nifti)])
    assert result.exit_code == 0, result.output
    (viewer,) = viewers
    ct, _ = phantom
    (layer,) = viewer.layers
    np.testing.assert_allclose(layer.scale, ct.spacing_mm)
    np.testing.assert_allclose(layer.translate, np.asarray(ct.origin_lps_mm)[::-1])
    assert "PVP planner" in " ".join(viewer.window.dock_widgets.keys())
