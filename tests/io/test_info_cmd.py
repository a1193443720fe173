"""``pvp-plan info``: what it prints, without patient identifiers; errors without traceback."""

from __future__ import annotations

import sys

import pytest

from pvp_plan.cli import main
from tests.conftest import shared_path
from tests.io.conftest import axial_positions, ramp_volume, write_ct_series


def _run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["pvp-plan", "info", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_synthetic_no_identifiers(tmp_path, monkeypatch, capsys):
    write_ct_series(tmp_path, ramp_volume(3, 6, 6), positions_lps_mm=axial_positions(3), description="thin body")
    code, out, err = _run(monkeypatch, capsys, tmp_path)
    assert code == 0, err
    for expected in ("format: dicom", "chosen series:", "thin body", "grid: 6 x 6 x 3", "HU range:",
                     "resampled from source: no", "gantry tilt: none"):
        assert expected in out
    for secret in ("SECRET", "ID-0000", "19010101", "20200101"):
        assert secret not in out + err


def test_info_error_is_one_line(tmp_path, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, tmp_path / "missing")
    assert code == 2
    assert "no such file or folder" in err and "Traceback" not in err


@pytest.mark.shared_data
def test_info_philips_tilt(monkeypatch, capsys):
    folder = shared_path("dicom_edge_cases", "philips_head_tilt_with_localizer")
    code, out, err = _run(monkeypatch, capsys, folder)
    assert code == 0, err
    assert "why: 2 CT image stacks" in out and "other series:" in out and "--series" in out
    assert "ignored: S1000/I10: localizer" in out
    assert "gantry tilt: detected and corrected" in out and "warning: gantry tilt" in out
