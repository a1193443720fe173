"""DICOM exports of a plan: a SEG of the vertebral bodies and a TID 1500 SR of the per-level figures.

Only for DICOM input (the exports reference the source CT instances); other inputs raise
:class:`pvp_plan.errors.ExportError`. Both copy the patient and study modules of the source CT, as every
object of a DICOM study must: these are the one pvp-plan output that carries patient identifiers.
Needs highdicom (``pip install "pvp-plan[dicom-export]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pvp_plan.errors import ExportError

if TYPE_CHECKING:
    from pvp_plan.io.ct_volume import CTVolume
    from pvp_plan.pipeline import CasePlan

__all__ = ["SEG_FILENAME", "SR_FILENAME", "require_dicom_input", "write_dicom_exports"]

SEG_FILENAME = "vertebral_bodies.seg.dcm"
SR_FILENAME = "measurements.sr.dcm"


def require_dicom_input(ct: CTVolume) -> None:
    """Raise :class:`ExportError` unless ``ct`` came from DICOM; cheap, so the CLI can fail before planning."""
    from pvp_plan.export.dicom_seg import require_dicom_input as check

    check(ct)


def write_dicom_exports(plan: CasePlan, out_dir: str | Path) -> dict[str, Path]:
    """Write ``vertebral_bodies.seg.dcm`` and ``measurements.sr.dcm`` for a plan made from DICOM.

    Parameters
    ----------
    plan : CasePlan
        From :func:`pvp_plan.pipeline.plan_case` / ``run_case`` (its ``ct`` loaded from DICOM).
    out_dir : str or Path
        Folder (created if needed). Each file is written atomically.

    Returns
    -------
    dict
        ``{"dicom_seg": Path, "dicom_sr": Path}``.

    Raises
    ------
    ExportError
        The input was not DICOM, its files are gone, no level was planned, or highdicom is missing.
    """
    try:
        import highdicom  # noqa: F401
    except ImportError:
        raise ExportError('DICOM export needs highdicom: pip install "pvp-plan[dicom-export]"') from None
    from pvp_plan.export.dicom_seg import read_source_headers, write_dicom_seg
    from pvp_plan.export.dicom_sr import LevelMeasurements, write_dicom_sr

    sources = read_source_headers(plan.ct)
    if not plan.levels:
        raise ExportError("no level was planned: nothing to export to DICOM")
    out_dir = Path(out_dir)
    seg = write_dicom_seg(plan.ct, plan.segmentation, out_dir / SEG_FILENAME,
                          levels=[lp.level for lp in plan.levels], source_datasets=sources)
    write_dicom_sr(seg, [LevelMeasurements.from_level_plan(lp) for lp in plan.levels], out_dir / SR_FILENAME)
    return {"dicom_seg": seg.path, "dicom_sr": out_dir / SR_FILENAME}
