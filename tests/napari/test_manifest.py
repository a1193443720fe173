"""The npe2 manifest is valid and discovered, and the reader accepts exactly the CT inputs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("npe2")

from pvp_plan_napari._reader import get_reader, read_ct  # noqa: E402

MANIFEST = Path(__file__).resolve().parents[2] / "plugins" / "pvp_plan_napari" / "napari.yaml"


def test_manifest_validates_and_is_discovered():
    from npe2 import PluginManifest

    mf = PluginManifest.from_distribution("pvp-plan")  # what napari finds after pip install
    assert mf.name == "pvp-plan" and mf.display_name == "PVP planner"
    assert [w.display_name for w in mf.contributions.widgets] == ["PVP planner"]
    assert mf.contributions.readers[0].accepts_directories
    assert [s.key for s in mf.contributions.sample_data] == ["spine_phantom"]
    npe2 = shutil.which("npe2", path=str(Path(sys.executable).parent)) or "npe2"
    for target in ("pvp-plan", str(MANIFEST)):
        out = subprocess.run([npe2, "validate", target], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "valid" in out.stdout, out.stdout + out.stderr


def test_manifest_commands_import():
    from npe2 import PluginManifest

    mf = PluginManifest.from_file(MANIFEST)
    for cmd in mf.contributions.commands:
        module, _, attr = cmd.python_name.partition(":")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr)), cmd.python_name


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha", "ct.mhd", "IM0001.dcm", "DICOMDIR"])
def test_reader_claims_ct_files(tmp_path, name):
    assert get_reader(str(tmp_path / name)) is read_ct


def test_reader_claims_folders_and_declines_the_rest(tmp_path):
    assert get_reader(str(tmp_path)) is read_ct
    assert get_reader([str(tmp_path)]) is read_ct
    assert get_reader(str(tmp_path / "photo.png")) is None
    assert get_reader([str(tmp_path / "a.nii"), str(tmp_path / "b.nii")]) is None  # not a stack of CTs


def test_reader_reports_pvp_plan_errors_as_notifications(tmp_path, monkeypatch):
    pytest.importorskip("napari")
    import pvp_plan_napari._reader as reader

    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    assert reader.read_ct(str(bad)) == [(None,)]  # napari's "nothing to add": no traceback dialog
    missing = reader.read_ct(str(tmp_path / "missing.nii.gz"))
    assert missing == [(None,)]
    assert len(shown) == 2 and all(m.startswith("pvp-plan: ") for m in shown)
    assert "no such file" in shown[1]
