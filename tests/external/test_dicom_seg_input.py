"""DICOM SEG as an external segmentation: whole vertebrae (TotalSegmentator-style) split, frame of reference."""

from __future__ import annotations

import numpy as np
import pytest

hd = pytest.importorskip("highdicom")

from pydicom.sr.codedict import codes  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from pvp_plan.errors import LabelMapError  # noqa: E402
from pvp_plan.export.dicom_seg import labels_on_source_frames, read_source_headers, write_dicom_seg  # noqa: E402
from pvp_plan.segment.external import load_external_segmentation  # noqa: E402
from tests.export._series import ct_for_series, phantom_case, write_series  # noqa: E402
from tests.external._vertebrae import SPACING_MM, synthetic_vertebrae  # noqa: E402

ORIGIN = (-30.0, -40.0, 200.0)


def _foreign_whole_vertebra_seg(path, ct, whole):
    """A SEG as another tool writes it: whole vertebrae, labels 'vertebrae_L1', SNOMED codes, no 'body'."""
    sources = read_source_headers(ct)
    order = {20: "L1", 21: "L2", 22: "L3"}
    numbers = {lab: i for i, lab in enumerate(order, start=1)}
    lut = np.zeros(256, dtype=np.uint8)
    for lab, n in numbers.items():
        lut[lab] = n
    frames = np.concatenate([labels_on_source_frames(lut[whole], ct, ds) for ds in sources])
    algorithm = hd.AlgorithmIdentificationSequence(name="OtherTool", family=codes.cid7162.ArtificialIntelligence,
                                                   version="2.0")
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=f"vertebrae_{order[lab]}", segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=getattr(codes.SCT, f"{order[lab]}Vertebra"), algorithm_type="AUTOMATIC",
        algorithm_identification=algorithm) for lab, n in numbers.items()]
    seg = hd.seg.Segmentation(sources, frames, "BINARY", descriptions, generate_uid(), 5, generate_uid(), 1,
                              "Other", "OtherTool", "2.0", "1")
    seg.save_as(path)
    return path


def test_whole_vertebrae_from_a_foreign_seg_are_split(tmp_path):
    whole, bodies = synthetic_vertebrae()
    hu = np.where(whole > 0, 300, 0).astype(np.int16)
    files = write_series(tmp_path / "ct", hu, "flipped", spacing_mm=SPACING_MM, origin_lps_mm=ORIGIN)
    ct = ct_for_series(hu, files, "flipped", spacing_mm=SPACING_MM, origin_lps_mm=ORIGIN)
    path = _foreign_whole_vertebra_seg(tmp_path / "other.dcm", ct, whole)
    seg = load_external_segmentation(path, ct)
    assert seg.method.startswith("external: DICOM SEG")
    assert [lv.value for lv in seg.levels] == ["L1", "L2", "L3"]
    for lab in (20, 21, 22):
        ours, truth = seg.labels == lab, bodies == lab
        assert 2 * np.count_nonzero(ours & truth) / (np.count_nonzero(ours) + np.count_nonzero(truth)) >= 0.9


def test_seg_of_another_series_is_refused(tmp_path):
    ct_a, seg_a = phantom_case(tmp_path / "a", "normal")
    ct_b, _ = phantom_case(tmp_path / "b", "normal")  # same geometry, another frame of reference
    export = write_dicom_seg(ct_a, seg_a, tmp_path / "a.seg.dcm")
    with pytest.raises(LabelMapError, match="another frame of reference"):
        load_external_segmentation(export.path, ct_b)
    with pytest.raises(LabelMapError, match="drop --labels"):
        load_external_segmentation(export.path, ct_a, convention="verse")
