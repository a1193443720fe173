"""Exceptions raised by pvp-plan.

Every error names the thing that is wrong, what was expected, what arrived and the fix,
so that the CLI can print it in one or two lines without a traceback.
"""

from __future__ import annotations


class PvpPlanError(Exception):
    """Base class of every error pvp-plan raises on purpose (the CLI prints these without a traceback)."""


class InputError(PvpPlanError):
    """The input path cannot be read as CT (missing, empty, unreadable, not an image, wrong modality)."""


class SeriesError(InputError):
    """The DICOM input holds no usable CT series, or the requested series is not there."""


class GeometryError(InputError):
    """The slice geometry cannot be reconstructed exactly (inconsistent sizes, orientations, gaps)."""


class PixelDataError(InputError):
    """Pixel data cannot be decoded (corrupt data, missing codec)."""


class SegmentationError(PvpPlanError):
    """No usable spine could be segmented (no spine in view, head CT, single slab...)."""


class LabelMapError(PvpPlanError):
    """An external label map does not fit the CT or its label convention cannot be determined."""


class PlanError(PvpPlanError):
    """The plan cannot be produced with the given options (unknown level, unknown gauge...)."""


class ExportError(PvpPlanError):
    """An export (DICOM SEG/SR, report) cannot be written for this input."""
