"""write_dicom_exports on a real plan: DICOM loaded by load_ct (normal and flipped series), NIfTI refused."""

from __future__ import annotations

import numpy as np
import pytest

hd = pytest.importorskip("highdicom")

from pvp_plan.errors import ExportError  # noqa: E402
from pvp_plan.export import SEG_FILENAME, SR_FILENAME, write_dicom_exports  # noqa: E402
from pvp_plan.export import codes as pc  # noqa: E402
from pvp_plan.io import ct_from_array, load_ct  # noqa: E402
from pvp_plan.pipeline import PlanOptions, plan_case  # noqa: E402
from pvp_plan.segment.external import load_external_segmentation  # noqa: E402
from pvp_plan.segment.types import Segmentation  # noqa: E402
from tests.export._series import phantom_hu, phantom_labels, write_series  # noqa: E402

OPTIONS = PlanOptions(plan_needles=False)


@pytest.mark.parametrize("layout", ["normal", "flipped"])
def test_plan_exports_round_trip_through_load_ct(tmp_path, layout):
    labels = phantom_labels()
    write_series(tmp_path / "ct", phantom_hu(labels), layout)
    ct = load_ct(tmp_path / "ct")
    assert ct.series.dicom_files, "the loader must list the series' files for the export"
    plan = plan_case(ct, options=OPTIONS, segmentation=Segmentation.from_label_map(labels, ct, method="test"))
    paths = write_dicom_exports(plan, tmp_path / "out")
    assert paths == {"dicom_seg": tmp_path / "out" / SEG_FILENAME, "dicom_sr": tmp_path / "out" / SR_FILENAME}
    # the SEG read back as an external segmentation gives the same bodies, voxel for voxel
    again = load_external_segmentation(paths["dicom_seg"], ct)
    assert np.array_equal(again.labels, labels)
    # the SR holds the plan's volumes; a level not measured (here L1, too small to be plannable) has none
    sr = hd.sr.srread(paths["dicom_sr"])
    groups = {g.tracking_identifier.split()[0]: g for g in sr.content.get_volumetric_roi_measurement_groups()}
    assert set(groups) == {lp.level for lp in plan.levels}
    volumes = {level: [m.value for m in g.get_measurements(name=pc.BODY_VOLUME)] for level, g in groups.items()}
    assert volumes == {lp.level: [] if lp.body_volume_ml is None else [pytest.approx(lp.body_volume_ml)]
                       for lp in plan.levels}


def test_nifti_plan_gets_a_clear_export_error(tmp_path):
    labels = phantom_labels()
    ct = ct_from_array(phantom_hu(labels), spacing_mm=(3.0, 0.7, 0.8), name="ct.nii.gz")
    plan = plan_case(ct, options=OPTIONS, segmentation=Segmentation.from_label_map(labels, ct, method="test"))
    with pytest.raises(ExportError, match="needs a DICOM input"):
        write_dicom_exports(plan, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_require_dicom_input_fails_fast_for_nifti():
    from pvp_plan.export import require_dicom_input

    ct = ct_from_array(np.zeros((3, 4, 5), dtype=np.int16), spacing_mm=(1.0, 1.0, 1.0), name="ct.nii.gz")
    with pytest.raises(ExportError, match=r"ct\.nii\.gz: DICOM SEG/SR export needs a DICOM input"):
        require_dicom_input(ct)
