"""DICOM SEG export: codes, references, and a voxel-exact round trip on a normal and a flipped series."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

hd = pytest.importorskip("highdicom")

from pydicom.sr.codedict import codes  # noqa: E402

from pvp_plan.errors import ExportError  # noqa: E402
from pvp_plan.export.dicom_seg import read_source_headers, seg_to_label_map, write_dicom_seg  # noqa: E402
from pvp_plan.io.ct_volume import ct_from_array  # noqa: E402
from pvp_plan.levels import Level  # noqa: E402
from tests.export._series import ORIGIN_LPS_MM, SPACING_MM, phantom_case, stored_frame  # noqa: E402

LAYOUTS = ["normal", "flipped"]


@pytest.fixture(params=LAYOUTS)
def written(request, tmp_path):
    ct, segmentation = phantom_case(tmp_path, request.param)
    export = write_dicom_seg(ct, segmentation, tmp_path / "out" / "seg.dcm")
    return request.param, ct, segmentation, export, hd.seg.segread(export.path)


def test_segments_carry_vertebra_codes_and_algorithm(written):
    _, _, _, export, seg = written
    assert export.segment_numbers == {"L1": 1, "L2": 2, "L3": 3}  # cranial to caudal
    expected = {1: codes.SCT.L1Vertebra, 2: codes.SCT.L2Vertebra, 3: codes.SCT.L3Vertebra}
    for item in seg.SegmentSequence:
        n = int(item.SegmentNumber)
        prop = item.SegmentedPropertyTypeCodeSequence[0]
        assert (prop.CodeValue, prop.CodingSchemeDesignator) == (expected[n].value, "SCT")
        category = item.SegmentedPropertyCategoryCodeSequence[0]
        assert (category.CodeValue, category.CodingSchemeDesignator) == ("91723000", "SCT")
        assert item.SegmentLabel == f"L{n} vertebral body"
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        algorithm = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algorithm.AlgorithmName == "pvp-plan"
        assert algorithm.AlgorithmVersion
    assert seg.SegmentationType == "BINARY"


def test_seg_references_source_instances_and_study(written):
    _, ct, _, _, seg = written
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in ct.series.dicom_files]
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert seg.PatientID == sources[0].PatientID  # copied: the SEG must belong to the same patient and study
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == ct.series.series_uid
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources}


def test_pixels_by_source_instance_match_each_stored_frame(written):
    """Frames in source order equal the label map as each instance stores it (flips included)."""
    layout, ct, segmentation, export, seg = written
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in ct.series.dicom_files]
    for level, number in export.segment_numbers.items():
        pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[number],
                                                   assert_missing_frames_are_empty=True)[..., 0]
        mask = segmentation.labels == Level(level).label
        expected = np.stack([stored_frame(mask, z, layout) for z in range(ct.shape[0])])
        assert np.array_equal(pixels.astype(bool), expected), f"{layout}: {level} frames differ"


def test_frames_placed_by_plane_position_equal_label_map(written):
    """Each SEG frame placed on the CT grid by its own Plane Position / Orientation: voxel-for-voxel equal."""
    _, ct, segmentation, export, seg = written
    orientation = np.array(seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient)
    rebuilt = np.zeros(ct.shape, dtype=np.uint8)
    label_of = {n: Level(lv).label for lv, n in export.segment_numbers.items()}
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    for item, frame in zip(seg.PerFrameFunctionalGroupsSequence, frames, strict=True):
        position = np.array(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        z = (position[2] - ORIGIN_LPS_MM[2]) / SPACING_MM[0]
        assert abs(z - round(z)) < 1e-6
        # axis-aligned orientations only: +1 keeps the axis, -1 reverses it
        if orientation[0] < 0:
            frame = frame[:, ::-1]
        if orientation[4] < 0:
            frame = frame[::-1, :]
        rebuilt[int(round(z))][frame.astype(bool)] = label_of[number]
    assert np.array_equal(rebuilt, segmentation.labels)
    # the library's reader does the same for any orientation
    masks = seg_to_label_map(seg, ct)
    library = np.zeros(ct.shape, dtype=np.uint8)
    for number, mask in masks.items():
        library[mask] = label_of[number]
    assert np.array_equal(library, segmentation.labels)


def test_edited_segmentation_is_manual(tmp_path):
    ct, segmentation = phantom_case(tmp_path, "flipped")
    export = write_dicom_seg(ct, replace(segmentation, edited=True), tmp_path / "seg.dcm", levels=["L2"])
    seg = hd.seg.segread(export.path)
    assert export.segment_numbers == {"L2": 1}
    assert [item.SegmentAlgorithmType for item in seg.SegmentSequence] == ["MANUAL"]


def test_nifti_input_is_refused_with_export_error():
    ct = ct_from_array(np.zeros((4, 5, 6), dtype=np.int16), spacing_mm=(1.0, 1.0, 1.0), name="ct.nii.gz")
    with pytest.raises(ExportError, match="needs a DICOM input"):
        read_source_headers(ct)


def test_missing_source_files_are_reported(tmp_path):
    ct, segmentation = phantom_case(tmp_path, "normal")
    Path(ct.series.dicom_files[0]).unlink()
    with pytest.raises(ExportError, match="source DICOM files are gone"):
        write_dicom_seg(ct, segmentation, tmp_path / "seg.dcm")


def test_unknown_levels_give_export_error(tmp_path):
    ct, segmentation = phantom_case(tmp_path, "normal")
    with pytest.raises(ExportError, match="no vertebral body"):
        write_dicom_seg(ct, segmentation, tmp_path / "seg.dcm", levels=["T4"])


@pytest.mark.shared_data
def test_enhanced_ct_multiframe_source_round_trip(tmp_path):
    """A multi-frame (Enhanced CT) source: frames follow its per-frame positions; one segment (shared groups)."""
    from pvp_plan.io import load_ct
    from pvp_plan.segment.types import Segmentation
    from tests.conftest import shared_path

    ct = load_ct(shared_path("dicom_codecs", "pydicom-data", "eCT_Supplemental.dcm"))
    labels = np.zeros(ct.shape, dtype=np.uint8)
    _, ny, nx = ct.shape
    labels[:, ny // 3:ny // 2, nx // 3:nx // 2] = 20
    labels[0, ny // 3:ny // 2, nx // 3:nx // 3 + 5] = 0  # differs between the two frames
    export = write_dicom_seg(ct, Segmentation.from_label_map(labels, ct, method="test"), tmp_path / "seg.dcm")
    masks = seg_to_label_map(hd.seg.segread(export.path), ct)
    assert np.array_equal(masks[1], labels == 20)
