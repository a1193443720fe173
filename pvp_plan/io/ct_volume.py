"""The CT volume every other module works on.

Frames and axes
---------------
* Array axis order is ``(z, y, x)``.
* The grid is aligned with the patient **LPS** frame: index ``x`` increases toward the
  patient's Left, ``y`` toward Posterior, ``z`` toward Superior. The direction matrix is
  the identity, so a voxel's LPS position is ``origin_lps_mm + index_xyz * spacing_xyz``.
* Points in patient space are written as LPS ``(x, y, z)`` in millimetres and named
  ``*_lps_mm``; array indices are ``(z, y, x)`` and named ``*_zyx``.
* :class:`SourceGeometry` remembers the grid the data came in on, so label maps can be
  written back on the input's own grid (:meth:`CTVolume.to_source_grid`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class SourceGeometry:
    """Geometry of the image as it was read, in SimpleITK conventions (x, y, z order, LPS).

    Attributes
    ----------
    size_xyz : tuple of int
        Voxels along the source x, y, z axes.
    spacing_xyz_mm : tuple of float
        Voxel spacing in mm along the source axes.
    origin_lps_mm : tuple of float
        LPS position (mm) of the centre of source voxel (0, 0, 0).
    direction : tuple of float
        The 3 x 3 direction cosine matrix, row-major (SimpleITK ``GetDirection``).
    resampled : bool
        True when the internal grid was interpolated from the source (gantry tilt, oblique
        or irregular slices) rather than obtained by an exact axis permutation and flip.
    """

    size_xyz: tuple[int, int, int]
    spacing_xyz_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    direction: tuple[float, ...]
    resampled: bool = False

    @classmethod
    def of_image(cls, image: sitk.Image, *, resampled: bool = False) -> SourceGeometry:
        return cls(
            size_xyz=tuple(int(v) for v in image.GetSize()),
            spacing_xyz_mm=tuple(float(v) for v in image.GetSpacing()),
            origin_lps_mm=tuple(float(v) for v in image.GetOrigin()),
            direction=tuple(float(v) for v in image.GetDirection()),
            resampled=resampled,
        )

    def reference_image(self) -> sitk.Image:
        """An empty image on the source grid (for resampling onto it)."""
        ref = sitk.Image([int(v) for v in self.size_xyz], sitk.sitkUInt8)
        ref.SetSpacing(self.spacing_xyz_mm)
        ref.SetOrigin(self.origin_lps_mm)
        ref.SetDirection(self.direction)
        return ref


@dataclass(frozen=True)
class SeriesCandidate:
    """A CT image stack that was found but not chosen (or the chosen one)."""

    series_uid: str
    description: str
    n_slices: int
    slice_spacing_mm: float | None
    coverage_mm: float | None


@dataclass(frozen=True)
class IgnoredInput:
    """A file or series that was skipped, with the reason (e.g. 'localizer', 'SR document')."""

    what: str
    reason: str


@dataclass(frozen=True)
class SeriesInfo:
    """Where a volume came from. Holds no patient identifiers (no name, ID, birth date, study date).

    ``series_uid`` is kept in memory for DICOM export; reports show :attr:`series_ref`, a
    one-way hash, unless the user asks for identifiers.
    """

    source_path: str
    source_format: str  # "dicom", "dicom-multiframe", "nifti", "nrrd", "metaimage"
    series_uid: str | None = None
    series_description: str = ""
    modality: str = "CT"
    manufacturer: str = ""
    convolution_kernel: str = ""
    slice_thickness_mm: float | None = None
    n_files: int = 0
    choice_reason: str = ""
    other_series: tuple[SeriesCandidate, ...] = ()
    ignored: tuple[IgnoredInput, ...] = ()
    #: Paths of the DICOM files of the chosen series in internal z order (for DICOM SEG/SR references).
    dicom_files: tuple[str, ...] = field(default=(), repr=False)

    @property
    def series_ref(self) -> str:
        """A short, non-reversible reference to the series (sha256 of the UID, or of the file name)."""
        key = self.series_uid or self.source_path.rsplit("/", 1)[-1]
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class CTVolume:
    """A CT volume in Hounsfield units on an LPS-aligned grid.

    Attributes
    ----------
    hu : np.ndarray
        HU values, shape (z, y, x); int16 when the rescale is integral, else float32.
        Voxels outside the scanned field (e.g. after tilt correction) hold -1024.
    spacing_mm : tuple of float
        Voxel spacing (z, y, x) in mm.
    origin_lps_mm : tuple of float
        LPS position (x, y, z) in mm of the centre of voxel index (0, 0, 0).
    series : SeriesInfo
        Provenance of the data.
    source_geometry : SourceGeometry
        The grid the data came in on.
    warnings : tuple of str
        What the loader corrected or noticed (tilt resampled, irregular spacing...).
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    series: SeriesInfo
    source_geometry: SourceGeometry
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise ValueError(f"CTVolume.hu must be 3-D (z, y, x), got shape {self.hu.shape}")
        if len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0:
            raise ValueError(f"spacing_mm must be three positive values, got {self.spacing_mm}")
        object.__setattr__(self, "spacing_mm", tuple(float(v) for v in self.spacing_mm))
        object.__setattr__(self, "origin_lps_mm", tuple(float(v) for v in self.origin_lps_mm))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.hu.shape)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (1 mL = 1000 mm^3)."""
        z, y, x = self.spacing_mm
        return z * y * x / 1000.0

    @property
    def spacing_xyz_mm(self) -> tuple[float, float, float]:
        return self.spacing_mm[::-1]

    def index_to_lps(self, index_zyx: np.ndarray) -> np.ndarray:
        """LPS positions (x, y, z) in mm of voxel indices (z, y, x); accepts (3,) or (N, 3), fractional allowed."""
        idx = np.asarray(index_zyx, dtype=float)
        return np.asarray(self.origin_lps_mm) + idx[..., ::-1] * np.asarray(self.spacing_xyz_mm)

    def lps_to_index(self, point_lps_mm: np.ndarray) -> np.ndarray:
        """Fractional voxel indices (z, y, x) of LPS points (x, y, z) in mm; accepts (3,) or (N, 3)."""
        p = np.asarray(point_lps_mm, dtype=float)
        return ((p - np.asarray(self.origin_lps_mm)) / np.asarray(self.spacing_xyz_mm))[..., ::-1]

    def to_sitk(self, array: np.ndarray | None = None) -> sitk.Image:
        """This grid as a SimpleITK image (identity direction, LPS) holding ``array`` (default: the HU)."""
        img = sitk.GetImageFromArray(self.hu if array is None else array)
        img.SetSpacing(self.spacing_xyz_mm)
        img.SetOrigin(self.origin_lps_mm)
        img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
        return img

    def to_source_grid(self, labels: np.ndarray) -> sitk.Image:
        """Put a label map on this grid back onto the source image grid (nearest neighbour).

        Exact (a permutation and flip of axes) unless :attr:`SourceGeometry.resampled`.
        Returns a SimpleITK image with the source size, spacing, origin and direction.
        """
        if labels.shape != self.hu.shape:
            raise ValueError(f"label map shape {labels.shape} does not match the CT {self.hu.shape}")
        image = self.to_sitk(labels)
        return sitk.Resample(
            image, self.source_geometry.reference_image(), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
            image.GetPixelID(),
        )

    def describe_voxel_size(self) -> str:
        z, y, x = self.spacing_mm
        return f"{x:.3g} x {y:.3g} x {z:.3g} mm (x, y, z)"

    def provenance(self) -> dict:
        """What every result records about its input: series reference, format, grid, voxel size, version."""
        from pvp_plan import __version__

        return {
            "series_ref": self.series.series_ref,
            "series_description": self.series.series_description,
            "source_format": self.series.source_format,
            "shape_zyx": list(self.shape),
            "voxel_size_mm_zyx": list(self.spacing_mm),
            "resampled_from_source": self.source_geometry.resampled,
            "loader_warnings": [redact_paths(w, self.series) for w in self.warnings],
            "software": f"pvp-plan {__version__}",
        }


def ct_from_array(
    hu: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    origin_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    name: str = "array",
) -> CTVolume:
    """Wrap an LPS-aligned (z, y, x) HU array as a :class:`CTVolume` (for tests, phantoms, notebooks)."""
    series = SeriesInfo(source_path=name, source_format="array", series_description=name)
    geom = SourceGeometry(
        size_xyz=tuple(int(v) for v in hu.shape[::-1]),
        spacing_xyz_mm=tuple(float(v) for v in spacing_mm[::-1]),
        origin_lps_mm=tuple(float(v) for v in origin_lps_mm),
        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    )
    return CTVolume(hu=hu, spacing_mm=spacing_mm, origin_lps_mm=origin_lps_mm, series=series, source_geometry=geom)


def redact_paths(text: str, series: SeriesInfo) -> str:
    """``text`` with the input path and the chosen DICOM files' paths replaced by ``<input>``.

    Folder and file names of clinical exports often carry patient names or IDs; results keep
    none of them unless the user asks for identifiers.
    """
    from pathlib import Path

    candidates = {series.source_path, str(Path(series.source_path).resolve())}
    candidates |= {str(Path(f).parent) for f in series.dicom_files[:1]}
    candidates |= set(series.dicom_files)
    for path in sorted((c for c in candidates if c and c != "."), key=len, reverse=True):
        text = text.replace(path, "<input>")
    return text
