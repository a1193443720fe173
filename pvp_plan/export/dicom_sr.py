"""DICOM Structured Report (TID 1500 Measurement Report) of the per-level plan, written with highdicom.

One TID 1411 "Volumetric ROI Measurements" group per level, each referencing its segment in the SEG:

* measurements: body volume (SCT 118565006 "Volume", UCUM ``mL``), cement fill guidance low / high (``mL``,
  local codes, JSIR 2019 CQ5: 50-70% of the body volume);
* qualitative evaluations (SCT Yes / No, or a local density code): fill guidance exceeds the 5 mL caution,
  posterior wall breach, density class, plannable.

A figure that was not measured (a body cut by the field of view, a wall not assessed) is left out of the
group, never written as 0. The SR copies the patient and study modules from the source CT, as every
DICOM object of the study must (see :mod:`pvp_plan.export.dicom_seg`).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from pvp_plan.export import codes as pc
from pvp_plan.export.dicom_seg import MANUFACTURER, SegExport, _version
from pvp_plan.io.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)

SR_SERIES_NUMBER = 9902
SR_SERIES_DESCRIPTION = "pvp-plan measurement report"


@dataclass(frozen=True)
class LevelMeasurements:
    """What the SR says about one level (None = not measured: left out of the report).

    Attributes
    ----------
    level : str
        ``"L1"``...
    body_volume_ml, fill_low_ml, fill_high_ml : float or None
        Body volume and the CQ5 fill guidance range, in mL.
    exceeds_5ml_caution, posterior_wall_breach, plannable : bool or None
        Flags.
    density_class : str or None
        ``"osteoporotic"``, ``"normal"``, ``"sclerotic"``, ``"lytic"`` or ``"mixed"``.
    """

    level: str
    body_volume_ml: float | None
    fill_low_ml: float | None
    fill_high_ml: float | None
    exceeds_5ml_caution: bool | None
    posterior_wall_breach: bool | None
    density_class: str | None
    plannable: bool | None

    @classmethod
    def from_level_plan(cls, lp) -> LevelMeasurements:
        """From a :class:`pvp_plan.plan.types.LevelPlan`."""
        fill, wall, density = lp.fill, lp.wall, lp.density
        return cls(
            level=lp.level,
            body_volume_ml=lp.body_volume_ml,
            fill_low_ml=None if fill is None else fill.low_ml,
            fill_high_ml=None if fill is None else fill.high_ml,
            exceeds_5ml_caution=None if fill is None else bool(fill.exceeds_5ml_caution),
            posterior_wall_breach=None if wall is None else bool(wall.flag),
            density_class=None if density is None else density.density_class,
            plannable=bool(lp.plannable),
        )


def write_dicom_sr(
    seg_export: SegExport,
    levels: Sequence[LevelMeasurements],
    path: str | Path,
) -> Dataset:
    """Write a TID 1500 Comprehensive 3D SR with one measurement group per level.

    Parameters
    ----------
    seg_export : SegExport
        The SEG written by :func:`pvp_plan.export.dicom_seg.write_dicom_seg` (segments referenced by number).
    levels : sequence of LevelMeasurements
        The per-level figures; a level without a segment in the SEG is skipped (logged).
    path : str or Path
        Output file (written atomically).

    Returns
    -------
    pydicom.Dataset
        The SR as written.
    """
    import highdicom as hd

    seg = seg_export.dataset
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name="pvp-plan", manufacturer_name=MANUFACTURER, model_name="pvp-plan"),
    )
    algorithm = hd.sr.AlgorithmIdentification(name="pvp-plan", version=_version())
    groups = []
    for lm in levels:
        number = seg_export.segment_numbers.get(lm.level)
        if number is None:
            logger.info("%s has no segment in the SEG; left out of the SR", lm.level)
            continue
        groups.append(_level_group(lm, seg, number, algorithm))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*seg_export.source_datasets, seg],
        content=report,
        series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description=SR_SERIES_DESCRIPTION,
    )
    scheme = Dataset()
    scheme.CodingSchemeDesignator = pc.PVP_SCHEME
    scheme.CodingSchemeName = pc.PVP_SCHEME_NAME
    scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
    sr.CodingSchemeIdentificationSequence = pydicom.Sequence([scheme])
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    atomic_write_bytes(path, buffer.getvalue())
    logger.info("DICOM SR with %d measurement groups written to %s", len(groups), Path(path).name)
    return sr


def _level_group(lm: LevelMeasurements, seg: Dataset, number: int, algorithm):
    import highdicom as hd

    vertebra = pc.vertebra_code(lm.level)
    measurements = [
        hd.sr.Measurement(name=name, value=float(value), unit=pc.UCUM_ML, algorithm_id=algorithm)
        for name, value in ((pc.BODY_VOLUME, lm.body_volume_ml), (pc.FILL_GUIDANCE_LOW, lm.fill_low_ml),
                            (pc.FILL_GUIDANCE_HIGH, lm.fill_high_ml))
        if value is not None
    ]
    evaluations = [
        hd.sr.QualitativeEvaluation(name=name, value=pc.yes_no(flag))
        for name, flag in ((pc.EXCEEDS_5ML_CAUTION, lm.exceeds_5ml_caution),
                           (pc.POSTERIOR_WALL_BREACH, lm.posterior_wall_breach), (pc.PLANNABLE, lm.plannable))
        if flag is not None
    ]
    if lm.density_class is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(name=pc.DENSITY_CLASS, value=pc.density_code(lm.density_class)))
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"{lm.level} vertebral body"),
        referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, number),
        finding_type=vertebra,
        finding_sites=[hd.sr.FindingSite(anatomic_location=vertebra)],
        algorithm_id=algorithm,
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
    )
