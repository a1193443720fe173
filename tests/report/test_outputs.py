"""plan.json / plan.csv / report.html / label map: content, privacy, atomicity, and a real browser render."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pvp_plan.pipeline import SCHEMA_VERSION, write_case_outputs
from tests.plan.conftest import phantom_with_truth_plan

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
REQUIRED_LEVEL_KEYS = {"level", "label", "body_volume_ml", "fill_guidance_ml", "exceeds_5ml_caution",
                       "posterior_third_stop_ml", "posterior_wall_breach", "density", "collapse", "plannable",
                       "warnings", "needle_paths", "not_plannable_reason"}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    ph, _, plan = phantom_with_truth_plan()
    out = tmp_path_factory.mktemp("plan")
    return plan, write_case_outputs(plan, out), out


def test_all_outputs_written(written):
    _, paths, out = written
    assert set(paths) == {"json", "csv", "html", "label_map"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_plan_json_schema(written):
    plan, paths, _ = written
    d = json.loads(paths["json"].read_text())
    assert d["schema_version"] == SCHEMA_VERSION and d["software"].startswith("pvp-plan ")
    assert d["input"]["series_ref"].startswith("sha256:") and d["voxel_size_mm_zyx"] == [2.0, 0.8, 0.8]
    assert "decision support" in d["disclaimer"].lower()
    assert [lv["level"] for lv in d["levels"]] == [lp.level for lp in plan.levels]
    for lv in d["levels"]:
        assert REQUIRED_LEVEL_KEYS <= set(lv)
        assert {"low", "high"} <= set(lv["fill_guidance_ml"])
        assert {"flag", "side", "missing_fraction", "confidence"} <= set(lv["posterior_wall_breach"])
        assert {"class", "hu", "thresholds"} <= set(lv["density"])
        assert {"heights_mm", "ratio_to_own_posterior", "genant_grade"} <= set(lv["collapse"])
        assert all(w["source"] for w in lv["warnings"])
    assert all(r["source"] for r in d["rules"])


def test_no_identifiers_or_paths_in_outputs(written):
    _, paths, out = written
    for kind in ("json", "csv", "html"):
        text = paths[kind].read_text()
        assert str(out) not in text and "/tmp/" not in text and "series_uid" not in text


def test_plan_csv_one_row_per_level(written):
    plan, paths, _ = written
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["level"] for r in rows] == [lp.level for lp in plan.levels]
    l2 = rows[[r["level"] for r in rows].index("L2")]
    assert l2["wall_breach"] == "True" and float(l2["fill_low_ml"]) > 0


def test_label_map_on_the_input_grid(written):
    import SimpleITK as sitk

    plan, paths, _ = written
    img = sitk.ReadImage(str(paths["label_map"]))
    assert img.GetSize() == plan.ct.source_geometry.size_xyz
    assert np.array_equal(np.unique(sitk.GetArrayFromImage(img)), np.unique(plan.segmentation.labels))


def test_report_html_is_self_contained_and_responsive(written):
    plan, paths, _ = written
    html = paths["html"].read_text()
    assert "name='viewport'" in html and "@media (max-width:600px)" in html
    assert "src=\"http" not in html and "href=\"http" not in html and "<script" not in html
    assert html.count("data:image/png;base64,") >= 1 + sum(1 for lp in plan.levels if lp.flags)
    assert html.count("not a replacement for the operator") >= 2
    for code in ("CQ3", "CQ5", "Genant", "spinal canal", "Molloy"):
        assert code in html
    assert "Context" in html or "context" in html


def test_a_failed_write_leaves_no_output(tmp_path, monkeypatch):
    _, _, plan = phantom_with_truth_plan()
    import pvp_plan.report

    def boom(_plan):
        raise RuntimeError("render failed")

    monkeypatch.setattr(pvp_plan.report, "render_report_html", boom)
    with pytest.raises(RuntimeError, match="render failed"):
        write_case_outputs(plan, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.parametrize("name, width", [("phone", 412), ("desktop", 1280)])
def test_report_renders_in_headless_chromium(written, tmp_path, name, width):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (scripts/install_system_packages.sh)")
    _, paths, _ = written
    png = tmp_path / f"report_{name}.png"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", f"--window-size={width},2000",
           paths["html"].resolve().as_uri()]
    subprocess.run(cmd, check=False, timeout=120, capture_output=True)
    assert png.exists() and png.stat().st_size > 10_000
    from matplotlib.image import imread

    pixels = imread(png)[..., :3]
    assert pixels.shape[1] == width
    assert pixels.std() > 0.05  # not blank
    assert (pixels.mean(axis=2) < 0.2).mean() > 0.02  # the dark CT images are on the page
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(png, ARTIFACTS / png.name)


def test_file_name_is_withheld_unless_identifiers_are_kept():
    from dataclasses import replace

    from pvp_plan.io.ct_volume import ct_from_array
    from pvp_plan.pipeline import PlanOptions, plan_case
    from tests.plan.conftest import make_spine

    ct, seg = make_spine()
    named = ct_from_array(ct.hu, spacing_mm=ct.spacing_mm, name="DOE_JOHN_1970.nii.gz")
    plan = plan_case(named, segmentation=seg, options=PlanOptions(levels=("L2",), plan_needles=False))
    assert "DOE_JOHN" not in json.dumps(plan.to_dict())
    kept = replace(plan, options=PlanOptions(levels=("L2",), plan_needles=False, keep_identifiers=True))
    assert "DOE_JOHN" in json.dumps(kept.to_dict())
