"""Loading CT into an LPS-aligned :class:`CTVolume` (see :mod:`pvp_plan.io.ct_volume` for the frames).

One entry point, :func:`load_ct`; one job per module:

* :mod:`~pvp_plan.io.load` - the dispatcher (folder, DICOM file, image file);
* :mod:`~pvp_plan.io.dicom_scan` - header-only scan, classification (what is ignored and why), grouping;
* :mod:`~pvp_plan.io.dicom_series` - the documented rule choosing one stack (``series=UID`` overrides);
* :mod:`~pvp_plan.io.dicom_pixels` - decoding and HU (rescale, padding, codecs, plausibility);
* :mod:`~pvp_plan.io.dicom_multiframe` - Enhanced / multi-frame CT functional groups;
* :mod:`~pvp_plan.io.dicom_dir` - DICOMDIR records;
* :mod:`~pvp_plan.io.dicom_load` - DICOM orchestration (parallel decode, provenance);
* :mod:`~pvp_plan.io.slice_stack` - slice sorting, spacing, gaps and tilt (tolerances documented there);
* :mod:`~pvp_plan.io.orientation` - exact transposition/flip or resampling onto the LPS grid;
* :mod:`~pvp_plan.io.image_files` - NIfTI, NRRD, MetaImage through SimpleITK;
* :mod:`~pvp_plan.io.atomic` - atomic writes.
"""

from pvp_plan.io.ct_volume import (
    CTVolume,
    IgnoredInput,
    SeriesCandidate,
    SeriesInfo,
    SourceGeometry,
    ct_from_array,
)
from pvp_plan.io.dicom_pixels import read_slice_hu
from pvp_plan.io.load import load_ct

__all__ = [
    "CTVolume",
    "IgnoredInput",
    "SeriesCandidate",
    "SeriesInfo",
    "SourceGeometry",
    "ct_from_array",
    "load_ct",
    "read_slice_hu",
]
