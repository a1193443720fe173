"""DICOM SR (TID 1500): template identifiers, per-level measurements and units, segment references."""

from __future__ import annotations

import pydicom
import pytest

hd = pytest.importorskip("highdicom")

from pydicom.sr.codedict import codes  # noqa: E402

from pvp_plan.export import codes as pc  # noqa: E402
from pvp_plan.export.dicom_seg import write_dicom_seg  # noqa: E402
from pvp_plan.export.dicom_sr import LevelMeasurements, write_dicom_sr  # noqa: E402
from tests.export._series import phantom_case  # noqa: E402

FIGURES = {
    "L1": LevelMeasurements("L1", 31.25, 15.6, 21.9, True, False, "osteoporotic", True),
    "L2": LevelMeasurements("L2", None, None, None, None, None, "normal", False),  # cut by the field of view
    "L3": LevelMeasurements("L3", 40.5, 20.25, 28.35, True, True, "sclerotic", True),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sr")
    ct, segmentation = phantom_case(tmp, "flipped")
    export = write_dicom_seg(ct, segmentation, tmp / "seg.dcm")
    write_dicom_sr(export, list(FIGURES.values()), tmp / "sr.dcm")
    return export, pydicom.dcmread(tmp / "sr.dcm")


def _content(item, code: str):
    return [c for c in item.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == code]


def test_sr_is_tid1500_comprehensive3d(report):
    export, ds = report
    assert ds.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    template = ds.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "1500")
    assert ds.ConceptNameCodeSequence[0].CodeValue == codes.DCM.ImagingMeasurementReport.value
    assert ds.StudyInstanceUID == export.dataset.StudyInstanceUID
    evidence = {r.ReferencedSOPInstanceUID for s in ds.CurrentRequestedProcedureEvidenceSequence
                for series in s.ReferencedSeriesSequence for r in series.ReferencedSOPSequence}
    assert export.dataset.SOPInstanceUID in evidence
    assert {src.SOPInstanceUID for src in export.source_datasets} <= evidence
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == pc.PVP_SCHEME


def test_one_group_per_level_referencing_its_segment(report):
    export, ds = report
    container = _content(ds, codes.DCM.ImagingMeasurements.value)[0]
    groups = _content(container, codes.DCM.MeasurementGroup.value)
    assert len(groups) == 3
    seen = {}
    for group in groups:
        tracking = _content(group, codes.DCM.TrackingIdentifier.value)[0].TextValue
        level = tracking.split()[0]
        ref = _content(group, codes.DCM.ReferencedSegment.value)[0].ReferencedSOPSequence[0]
        assert ref.ReferencedSOPInstanceUID == export.dataset.SOPInstanceUID
        seen[level] = int(ref.ReferencedSegmentNumber)
    assert seen == export.segment_numbers


def test_measurements_values_units_and_flags_per_level(report):
    export, ds = report
    sr = hd.sr.Comprehensive3DSR.from_dataset(ds)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    by_level = {g.tracking_identifier.split()[0]: g for g in groups}
    for level, fig in FIGURES.items():
        group = by_level[level]
        assert group.referenced_segment.referenced_segment_numbers == [export.segment_numbers[level]]
        assert group.referenced_segment.referenced_sop_instance_uid == export.dataset.SOPInstanceUID
        assert group.finding_type == pc.vertebra_code(level)
        values = {}
        for m in group.get_measurements():
            assert m.unit == pc.UCUM_ML
            values[m.name.value] = m.value
        expected = {pc.BODY_VOLUME.value: fig.body_volume_ml, pc.FILL_GUIDANCE_LOW.value: fig.fill_low_ml,
                    pc.FILL_GUIDANCE_HIGH.value: fig.fill_high_ml}
        assert values == pytest.approx({k: v for k, v in expected.items() if v is not None})  # None: left out
        flags = {e.name.value: e.value for e in group.get_qualitative_evaluations()}
        assert flags[pc.PLANNABLE.value] == pc.yes_no(fig.plannable)
        assert flags[pc.DENSITY_CLASS.value] == pc.density_code(fig.density_class)
        if fig.exceeds_5ml_caution is None:
            assert pc.EXCEEDS_5ML_CAUTION.value not in flags
        else:
            assert flags[pc.EXCEEDS_5ML_CAUTION.value] == pc.yes_no(fig.exceeds_5ml_caution)
            assert flags[pc.POSTERIOR_WALL_BREACH.value] == pc.yes_no(fig.posterior_wall_breach)
