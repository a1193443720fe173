"""Regenerate the example notebooks (clean, without outputs): ``python notebooks/make_notebooks.py``.

The notebooks are plain JSON built here with nbformat, so their content is reviewed as Python and a
commit never carries outputs (``tests/notebooks/test_notebooks_clean.py`` checks). CI runs them with
``pytest --nbmake notebooks/``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
          "language_info": {"name": "python"}}

TABLE_HELPER = '''\
def show_table(rows, columns):
    """Show a list of dicts as a Markdown table (empty cell = not measured)."""
    head = "| " + " | ".join(columns) + " |\\n|" + "---|" * len(columns) + "\\n"
    body = "".join("| " + " | ".join("" if r.get(c) is None else str(r[c]) for c in columns) + " |\\n"
                   for r in rows)
    display(Markdown(head + body))'''

SHARED_DATA = '''\
def find_shared_data():
    """../shared/data next to the repository (or $PVP_PLAN_SHARED_DATA); None when absent."""
    if os.environ.get("PVP_PLAN_SHARED_DATA"):
        return Path(os.environ["PVP_PLAN_SHARED_DATA"])
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return None'''


SEGMENT_IMPORT = "from pvp_plan.segment import segment_vertebral_bodies\n"
SEGMENT_CELL = "segmentation = segment_vertebral_bodies(ct)"
MANIFEST_HEADER, MANIFEST_ROW = "study_id,path", "{name},{name}.nii.gz"


def quick_start() -> nbformat.NotebookNode:
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md("# pvp-plan quick start\n\n"
           "Load a CT, segment the vertebral bodies, plan vertebroplasty, look at the result and export it to "
           "DICOM, on the bundled synthetic sample (a thoracolumbar phantom whose exact answers are known).\n\n"
           "Runs top to bottom in under a minute. **Decision support only**: every figure is a measurement on "
           "this CT with its source; the operator decides."),
        code("import json\nimport tempfile\nfrom pathlib import Path\n\n"
             "import matplotlib.pyplot as plt\nimport numpy as np\nfrom IPython.display import Markdown, display\n\n"
             "from pvp_plan import sample_data\nfrom pvp_plan.io import load_ct\n"
             "from pvp_plan.pipeline import PlanOptions, plan_case\n"
             + SEGMENT_IMPORT + "\n"
             "WORK = Path(tempfile.mkdtemp(prefix=\"pvp-plan-quick-start-\"))  # outputs go here, not into the repo\n\n\n"
             + TABLE_HELPER),
        md("## 1. Load the sample CT\n\n"
           "`sample_dicom_dir()` is a DICOM series of the phantom (generated on first use if the repository copy "
           "is absent). `load_ct` reads DICOM folders, NIfTI, NRRD and MetaImage alike and puts the volume on a "
           "grid aligned with the patient LPS frame: array axes `(z, y, x)` = (superior, posterior, left)."),
        code("ct = load_ct(sample_data.sample_dicom_dir())\n"
             "print(ct.shape, \"voxels (z, y, x);\", ct.describe_voxel_size(), \";\", ct.series.source_format)"),
        md("## 2. Segment the vertebral bodies\n\n"
           "Labels follow the VerSe numbering (T12 = 19, L1 = 20 ...). Bodies touching the edge of the scan are "
           "labelled but flagged `cut_by_fov`: their volume is never reported as if whole.\n\n"
           "A label map made elsewhere (TotalSegmentator, VerSe masks, a DICOM SEG, a hand correction) comes in "
           "through `load_external_segmentation(path, ct)`; its convention is detected from the label values "
           "(or given), whole vertebrae are cut to their bodies, and other grids are resampled onto the CT."),
        code(SEGMENT_CELL + "\n"
             "for body in segmentation.bodies:\n"
             "    print(f\"{body.level.value:>4}  {body.voxel_count * ct.voxel_volume_ml:6.1f} mL  \"\n"
             "          f\"level confidence {body.level_confidence:.2f}  cut by FOV: {body.cut_by_fov}\")"),
        md("## 3. Plan\n\n"
           "`plan_case` measures each body and applies the guideline rules (fill guidance 50-70% of the body "
           "volume, the 5 mL caution, posterior wall, density, collapse)."),
        code("plan = plan_case(ct, options=PlanOptions(), segmentation=segmentation)\n"
             "show_table(plan.table_rows(), [\"level\", \"plannable\", \"body_volume_ml\", \"fill_low_ml\", "
             "\"fill_high_ml\",\n"
             "                               \"exceeds_5ml_caution\", \"density_class\", \"hu_median\", "
             "\"wall_breach\", \"flags\"])\n"
             "for notice in plan.notices:\n"
             "    print(\"-\", notice.message)"),
        md("## 4. Look at the images\n\n"
           "A sagittal slice through the spine and an axial slice through L1 (or the middle level), bone window, "
           "with the body labels on top. Axial slices are shown radiologically (patient's right on the left)."),
        code("levels = {b.level.value: b for b in segmentation.bodies}\n"
             "centre = np.mean([ct.lps_to_index(b.centroid_lps_mm) for b in segmentation.bodies], axis=0)\n"
             "iz, iy, ix = np.round(centre).astype(int)\n"
             "axial_level = \"L1\" if \"L1\" in levels else list(levels)[len(levels) // 2]\n"
             "az = int(round(ct.lps_to_index(levels[axial_level].centroid_lps_mm)[0]))\n"
             "overlay = np.ma.masked_equal(segmentation.labels, 0)\n"
             "sz, sy, sx = ct.spacing_mm\n\n"
             "fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 5.5))\n"
             "ax1.imshow(ct.hu[:, :, ix], cmap=\"gray\", vmin=-200, vmax=1000, origin=\"lower\", aspect=sz / sy)\n"
             "ax1.imshow(overlay[:, :, ix], cmap=\"tab20\", alpha=0.45, origin=\"lower\", aspect=sz / sy, "
             "interpolation=\"nearest\")\n"
             "for name, body in levels.items():\n"
             "    z, y, _ = ct.lps_to_index(body.centroid_lps_mm)\n"
             "    ax1.text(y, z, name, color=\"yellow\", fontsize=9, ha=\"center\", va=\"center\")\n"
             "ax1.set_title(\"sagittal (anterior left, superior up)\")\n"
             "ax2.imshow(ct.hu[az], cmap=\"gray\", vmin=-200, vmax=1000, aspect=sy / sx)\n"
             "ax2.imshow(overlay[az], cmap=\"tab20\", alpha=0.45, aspect=sy / sx, interpolation=\"nearest\")\n"
             "ax2.set_title(f\"axial through {axial_level} (anterior up)\")\n"
             "for ax in (ax1, ax2):\n"
             "    ax.set_axis_off()\n"
             "plt.tight_layout()\nplt.show()"),
        md("## 5. Compare with the phantom's exact truth\n\n"
           "The sample knows its true body volumes (`truth.json`, computed from the analytic shapes), so the "
           "measurement can be checked. A few percent come from voxelisation alone (2 mm slices, 0.8 mm pixels)."),
        code("truth = json.loads(sample_data.sample_truth_path().read_text())[\"levels\"]\n"
             "rows = []\n"
             "for lp in plan.levels:\n"
             "    true_ml = truth.get(lp.level, {}).get(\"volume_ml\")\n"
             "    diff = None if lp.body_volume_ml is None or not true_ml else "
             "f\"{100 * (lp.body_volume_ml / true_ml - 1):+.1f}%\"\n"
             "    rows.append({\"level\": lp.level, \"measured_ml\": None if lp.body_volume_ml is None else "
             "round(lp.body_volume_ml, 1),\n"
             "                 \"truth_ml\": true_ml and round(true_ml, 1), \"difference\": diff})\n"
             "show_table(rows, [\"level\", \"measured_ml\", \"truth_ml\", \"difference\"])"),
        md("## 6. Export to DICOM (SEG + SR)\n\n"
           "For a DICOM input, `write_dicom_exports` writes a DICOM Segmentation (one segment per body, SNOMED CT "
           "code of each vertebra) and a TID 1500 measurement report (volumes and fill guidance in mL, flags), "
           "both referencing the source series so a PACS or viewer shows them with the CT. They copy the "
           "patient/study information of the source, as DICOM requires (`pvp-plan plan --dicom-out DIR`)."),
        code("import highdicom as hd\n\n"
             "from pvp_plan.export import write_dicom_exports\n\n"
             "paths = write_dicom_exports(plan, WORK / \"dicom\")\n"
             "seg = hd.seg.segread(paths[\"dicom_seg\"])\n"
             "for item in seg.SegmentSequence:\n"
             "    code = item.SegmentedPropertyTypeCodeSequence[0]\n"
             "    print(f\"segment {item.SegmentNumber}: {item.SegmentLabel:<20} SCT {code.CodeValue} "
             "({code.CodeMeaning}), {item.SegmentAlgorithmType}\")\n"
             "report = hd.sr.srread(paths[\"dicom_sr\"])\n"
             "for group in report.content.get_volumetric_roi_measurement_groups():\n"
             "    values = \", \".join(f\"{m.name.meaning}: {m.value:.1f} {m.unit.value}\" for m in "
             "group.get_measurements())\n"
             "    print(group.tracking_identifier, \"->\", values or \"(not measured)\")"),
        md("Next: `02_cohort_study.ipynb` runs many cases at once (`pvp_plan.batch`) and plots the results."),
    ]
    return new_notebook(cells=cells, metadata=KERNEL)


def cohort_study() -> nbformat.NotebookNode:
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md("# pvp-plan cohort study\n\n"
           "Run the whole pipeline over a folder of CTs with the batch runner, collect one row per study and "
           "level, and plot body volume and bone density by level. The cohort here is four small synthetic "
           "phantoms (different seeds, curvature and pathology) so the notebook runs anywhere in under a minute; "
           "point `COHORT` at your own folder of DICOM series or NIfTI files instead.\n\n"
           "The last section compares pvp-plan with TotalSegmentator's spine report on a real CT when "
           "`../shared/data` is available, and skips otherwise."),
        code("import csv\nimport json\nimport os\nimport tempfile\nfrom pathlib import Path\n\n"
             "import matplotlib.pyplot as plt\nimport numpy as np\nfrom IPython.display import Markdown, display\n\n"
             "from pvp_plan.batch import BatchOptions, run_batch\nfrom pvp_plan.io.atomic import write_image_atomic\n"
             "from pvp_plan.levels import Level\nfrom pvp_plan.sample_data import generate_phantom\n\n"
             "WORK = Path(tempfile.mkdtemp(prefix=\"pvp-plan-cohort-\"))  # outputs go here, not into the repo\n\n\n"
             + TABLE_HELPER + "\n\n\n" + SHARED_DATA),
        md("## 1. A small cohort\n\n"
           "Each phantom is written as a NIfTI file and listed in a manifest CSV (`study_id,path`; optional "
           "columns `series_uid`, `anchor`, and `segmentation` for a label map made elsewhere). Study IDs from a "
           "manifest are yours; for a plain folder tree the batch makes salted, non-reversible IDs. The phantoms' "
           "exact body volumes are kept for comparison."),
        code("COHORT = WORK / \"cohort\"\n"
             "CASES = {\n"
             "    \"case_a\": dict(seed=1, pathology={}),\n"
             "    \"case_b\": dict(seed=2, pathology={\"L1\": \"wedge\"}, curvature=40.0),\n"
             "    \"case_c\": dict(seed=3, pathology={\"L2\": \"lytic\"}),\n"
             "    \"case_d\": dict(seed=4, pathology={\"T12\": \"sclerotic\"}, curvature=20.0),\n"
             "}\n"
             "true_volume_ml = {}\n"
             f"manifest = [\"{MANIFEST_HEADER}\"]\n"
             "for name, kwargs in CASES.items():\n"
             "    phantom = generate_phantom(spacing_mm=(3.0, 1.5, 1.5), **kwargs)  # T10-L5 with the sacrum\n"
             "    write_image_atomic(phantom.ct.to_sitk(), COHORT / f\"{name}.nii.gz\")\n"
             f"    manifest.append(f\"{MANIFEST_ROW}\")\n"
             "    true_volume_ml[name] = {lv: d[\"volume_ml\"] for lv, d in phantom.truth[\"levels\"].items()}\n"
             "(COHORT / \"manifest.csv\").write_text(\"\\n\".join(manifest) + \"\\n\")\n"
             "print((COHORT / \"manifest.csv\").read_text())"),
        md("## 2. Run the batch\n\n"
           "`run_batch` reads the manifest (or walks a folder), runs `pvp_plan.pipeline.run_case` on each study in "
           "worker processes (resumable), and writes `levels.csv` (one row per study and level) and `studies.csv` "
           "(no paths or patient identifiers unless asked). `pvp-plan batch` on the command line does the same."),
        code("summary = run_batch(COHORT / \"manifest.csv\", WORK / \"batch\",\n"
             "                    BatchOptions(workers=1, plan_options={\"plan_needles\": False}))\n"
             "print(f\"{summary.n_ok} ok, {summary.n_failed} failed, {summary.n_skipped} skipped in "
             "{summary.wall_seconds:.1f} s\")\n"
             "with open(WORK / \"batch\" / \"studies.csv\", newline=\"\") as fh:\n"
             "    studies = list(csv.DictReader(fh))\n"
             "with open(WORK / \"batch\" / \"levels.csv\", newline=\"\") as fh:\n"
             "    rows = list(csv.DictReader(fh))\n"
             "show_table(studies, [\"study_id\", \"status\", \"message\", \"n_levels\", \"segmentation_method\", "
             "\"seconds\"])\n"
             "assert rows, \"no study produced levels: see the messages above\""),
        code("show_table(rows[:12], [\"study_id\", \"level\", \"plannable\", \"body_volume_ml\", \"fill_low_ml\", "
             "\"fill_high_ml\",\n"
             "                        \"density_class\", \"hu_median\", \"flags\"])"),
        md("## 3. Body volume and density by level\n\n"
           "Empty cells are levels that were not measured (for example cut by the field of view): they are left "
           "out of the plots, never counted as 0."),
        code("def number(text):\n"
             "    return float(text) if text not in (None, \"\") else None\n\n\n"
             "order = sorted({r[\"level\"] for r in rows}, key=lambda name: Level(name).order)\n"
             "fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))\n"
             "for study in sorted({r[\"study_id\"] for r in rows}):\n"
             "    mine = {r[\"level\"]: r for r in rows if r[\"study_id\"] == study}\n"
             "    xs = [i for i, lv in enumerate(order) if lv in mine]\n"
             "    volume = [number(mine[order[i]][\"body_volume_ml\"]) for i in xs]\n"
             "    hu = [number(mine[order[i]][\"hu_median\"]) for i in xs]\n"
             "    ax1.plot([x for x, v in zip(xs, volume, strict=True) if v is not None], [v for v in volume if v is not None], "
             "\"o-\", label=study)\n"
             "    ax2.plot([x for x, h in zip(xs, hu, strict=True) if h is not None], [h for h in hu if h is not None], \"s-\")\n"
             "for ax, title, unit in ((ax1, \"body volume\", \"mL\"), (ax2, \"median trabecular HU\", \"HU\")):\n"
             "    ax.set_xticks(range(len(order)), order)\n"
             "    ax.set_title(title)\n"
             "    ax.set_ylabel(unit)\n"
             "    ax.grid(alpha=0.3)\n"
             "ax2.axhline(110, color=\"grey\", ls=\"--\", lw=1)\n"
             "ax2.text(0, 112, \"110 HU (Pickhardt 2013, L1)\", fontsize=8, color=\"grey\")\n"
             "ax1.legend(fontsize=8)\n"
             "plt.tight_layout()\nplt.show()"),
        md("Because these are phantoms, each measured volume can be checked against the exact one."),
        code("pairs = [(true_volume_ml[r[\"study_id\"]][r[\"level\"]], number(r[\"body_volume_ml\"]))\n"
             "         for r in rows\n"
             "         if number(r[\"body_volume_ml\"]) is not None and r[\"level\"] in true_volume_ml[r[\"study_id\"]]]\n"
             "truth, measured = np.array(pairs).T\n"
             "error = 100 * (measured / truth - 1)\n"
             "print(f\"{len(truth)} bodies: volume error {error.mean():+.1f}% on average \"\n"
             "      f\"(range {error.min():+.1f}% to {error.max():+.1f}%)\")\n"
             "fig, ax = plt.subplots(figsize=(4, 4))\n"
             "ax.plot(truth, measured, \"o\")\n"
             "lim = [0.9 * min(truth.min(), measured.min()), 1.1 * max(truth.max(), measured.max())]\n"
             "ax.plot(lim, lim, \"k--\", lw=1)\n"
             "ax.set_xlabel(\"true body volume (mL)\")\n"
             "ax.set_ylabel(\"pvp-plan (mL)\")\n"
             "plt.show()"),
        md("## 4. Against TotalSegmentator on a real CT (optional)\n\n"
           "`../shared/data/abdomen_3mm` holds a real abdominal CT with TotalSegmentator's outputs and spine "
           "report (a deep-learning model, not manual ground truth). pvp-plan plans it twice: with its own "
           "segmentation, with TotalSegmentator's per-level body mask imported through "
           "`load_external_segmentation` (then the volumes must agree within 1%), and with the bodies pvp-plan cuts "
           "from TotalSegmentator's whole vertebrae (the part anterior to the spinal canal). Skipped when the data "
           "is absent."),
        code("shared = find_shared_data()\n"
             "case = None if shared is None else shared / \"abdomen_3mm\"\n"
             "if case is None or not (case / \"reference\" / \"totalseg_spine_report.json\").exists():\n"
             "    print(\"../shared/data/abdomen_3mm not found: comparison skipped\")\n"
             "else:\n"
             "    from pvp_plan.errors import PvpPlanError\n"
             "    from pvp_plan.io import load_ct\n"
             "    from pvp_plan.pipeline import PlanOptions, plan_case\n"
             "    from pvp_plan.segment.external import load_external_segmentation\n\n"
             "    report = json.loads((case / \"reference\" / \"totalseg_spine_report.json\").read_text())"
             "[\"results\"]\n"
             "    ct = load_ct(case / \"ct.nii.gz\")\n"
             "    options = PlanOptions(plan_needles=False)\n"
             "    imported = load_external_segmentation(case / \"reference\" / "
             "\"totalseg_vertebral_bodies_per_level.nii.gz\", ct)\n"
             "    on_theirs = {lp.level: lp.body_volume_ml for lp in plan_case(ct, options=options, "
             "segmentation=imported).levels}\n"
             "    whole = load_external_segmentation(case / \"reference\" / \"totalseg_total_vertebrae.nii.gz\", ct)\n"
             "    on_split = {lp.level: lp.body_volume_ml for lp in plan_case(ct, options=options, "
             "segmentation=whole).levels}\n"
             "    try:\n"
             "        on_ours = {lp.level: lp.body_volume_ml for lp in plan_case(ct, options=options).levels}\n"
             "    except PvpPlanError as exc:\n"
             "        print(\"pvp-plan segmentation failed on this CT:\", exc)\n"
             "        on_ours = {}\n"
             "    levels = [lv for lv in (\"L1\", \"L2\", \"L3\", \"L4\", \"L5\") if f\"vertebrae_{lv}_volume_ml\" "
             "in report]\n"
             "    table = [{\"level\": lv, \"TotalSegmentator_ml\": report[f\"vertebrae_{lv}_volume_ml\"],\n"
             "              \"pvp_plan_on_their_mask_ml\": on_theirs.get(lv) and round(on_theirs[lv], 2),\n"
             "              \"pvp_plan_bodies_cut_from_their_vertebrae_ml\": on_split.get(lv) and round(on_split[lv], 2),\n"
             "              \"pvp_plan_own_segmentation_ml\": on_ours.get(lv) and round(on_ours[lv], 2)} for lv in levels]\n"
             "    show_table(table, list(table[0]))\n"
             "    x = np.arange(len(levels))\n"
             "    fig, ax = plt.subplots(figsize=(10, 3.5))\n"
             "    series = ((\"TotalSegmentator_ml\", \"TotalSegmentator report\"),\n"
             "              (\"pvp_plan_on_their_mask_ml\", \"pvp-plan on their body mask\"),\n"
             "              (\"pvp_plan_bodies_cut_from_their_vertebrae_ml\", \"pvp-plan, bodies cut from their vertebrae\"),\n"
             "              (\"pvp_plan_own_segmentation_ml\", \"pvp-plan segmentation\"))\n"
             "    for k, (key, label) in enumerate(series):\n"
             "        ax.bar(x + (k - 1.5) * 0.2, [np.nan if row[key] is None else row[key] for row in table], width=0.2,\n"
             "               label=label)\n"
             "    ax.set_xticks(x, levels)\n"
             "    ax.set_ylabel(\"body volume (mL)\")\n"
             "    ax.legend(fontsize=8, loc=\"upper left\", bbox_to_anchor=(1.01, 1.0))\n"
             "    plt.tight_layout()\n"
             "    plt.show()"),
    ]
    return new_notebook(cells=cells, metadata=KERNEL)


def main() -> None:
    for name, build in (("01_quick_start.ipynb", quick_start), ("02_cohort_study.ipynb", cohort_study)):
        nb = build()
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
