"""Label maps made elsewhere (TotalSegmentator, VerSe, DICOM SEG) as a pvp-plan :class:`Segmentation`.

Conventions
-----------
``"totalsegmentator"``
    TotalSegmentator v2 ``total`` task: whole vertebrae (body + arch), S1 = 26, L5 = 27 ... L1 = 31,
    T12 = 32 ... T1 = 43, C7 = 44 ... C1 = 50 (:data:`pvp_plan.levels.TOTALSEGMENTATOR_TOTAL_LABELS`).
    Other ``total`` labels (organs, ribs...) are ignored. Bodies are split from the arches.
``"totalsegmentator-bodies"``
    TotalSegmentator ``vertebrae_body`` task: 1 = vertebral bodies of all levels, 2 = discs. Levels are
    not named: combine with a whole-vertebra map (``vertebrae_path``), or name the most caudal body with
    ``anchor`` (e.g. ``"S1"`` or ``"L5"``; bodies are then counted cranially along the spine).
``"verse"``
    VerSe numbering (C1-C7 = 1-7, T1-T12 = 8-19, L1-L5 = 20-24, L6 = 25, 26 = sacrum, 27 = coccyx,
    T13 = 28), whole vertebrae: bodies are split from the arches.
``"verse-bodies"``
    VerSe-numbered vertebral-body map, used as it is (pvp-plan's own output, TotalSegmentator's
    per-level body map).
``"dicom-seg"``
    A DICOM Segmentation whose segments carry a SNOMED CT vertebra code (or a label such as ``"L1"``);
    segments whose label or description says "body" are bodies, others whole vertebrae.

Auto-detection (``convention=None``) and its ambiguity
------------------------------------------------------
* A DICOM file of modality SEG -> ``"dicom-seg"``.
* Values only 1 and 2 -> ``"totalsegmentator-bodies"`` (a VerSe map holding only C1/C2 reads the same:
  pass ``convention="verse"`` for that).
* Any value 29-50, or values only within 26-28 -> ``"totalsegmentator"`` (26-28 are S1/L5/L4 there but
  sacrum/coccyx/T13 in VerSe, which never come alone).
* Otherwise, all values within 1-28 -> VerSe: ``"verse"`` when most labels enclose a spinal canal
  (whole vertebrae, see below), else ``"verse-bodies"``.
* Anything else (values above 50 without vertebrae...) -> :class:`LabelMapError`; give the convention.

Splitting a whole vertebra into body and arch
---------------------------------------------
The vertebral body is the part of the vertebra anterior to the spinal canal:

1. the local spine axis is the direction between the neighbouring vertebrae's centroids (central
   differences, as :func:`pvp_plan.segment.types.describe_bodies` does);
2. the vertebra is projected along that axis onto a plane (1.5 mm pixels); the pedicles and laminae of
   all its slices together form a ring, and the canal (vertebral foramen) is the largest hole of at least
   60 mm^2 in that ring (2-D closing of up to 4 pixels bridges thin gaps);
3. the body is the part of the vertebra anterior to the canal's anterior wall (the posterior cortex of
   the body), cut by the plane through that wall that contains the spine axis;
4. the roots of the pedicles and transverse processes that lie anterior to that plane are removed by a
   morphological opening with a 4.5 mm ball (structures thinner than 9 mm), keeping the largest part.

On TotalSegmentator's abdominal reference this gives Dice 0.88-0.95 against its own per-level body map
and volumes within -2% to +6% (T12-L4) and +16% (L5, lumbosacral tilt). A vertebra whose canal cannot be
found (typically a sliver cut by the field of view) is left out, with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from pvp_plan.errors import LabelMapError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import TOTALSEGMENTATOR_TOTAL_LABELS, Level
from pvp_plan.segment import implausible_levels
from pvp_plan.segment.types import Segmentation

logger = logging.getLogger(__name__)

CONVENTIONS = ("totalsegmentator", "totalsegmentator-bodies", "verse", "verse-bodies", "dicom-seg")
#: VerSe labels that are not vertebral bodies pvp-plan plans (sacrum, coccyx).
VERSE_NON_BODY_LABELS = {26: "sacrum", 27: "coccyx"}
_TS_TO_VERSE = {ts: level.label for level, ts in TOTALSEGMENTATOR_TOTAL_LABELS.items()}
_MIN_CANAL_AREA_MM2 = 60.0
_PROJECTION_PIXEL_MM = 1.5
_OPENING_RADIUS_MM = 4.5


def load_external_segmentation(
    path: str | Path,
    ct: CTVolume,
    *,
    convention: str | None = None,
    anchor: str | None = None,
    vertebrae_path: str | Path | None = None,
) -> Segmentation:
    """Read a vertebra or vertebral-body label map made elsewhere as a VerSe body :class:`Segmentation`.

    Parameters
    ----------
    path : str or Path
        NIfTI/NRRD/MHA label map, or a DICOM SEG file.
    ct : CTVolume
        The CT the map belongs to; the map is resampled onto its grid (nearest neighbour) when the
        geometry differs, after checking that the two overlap physically.
    convention : str, optional
        One of :data:`CONVENTIONS`; ``"totalsegmentator-total"`` is accepted for ``"totalsegmentator"``.
        Detected from the label values when omitted (see the module docstring).
    anchor : str, optional
        For ``"totalsegmentator-bodies"`` without ``vertebrae_path``: level of the most caudal body in
        the map (``"S1"``, ``"L5"``...).
    vertebrae_path : str or Path, optional
        For ``"totalsegmentator-bodies"``: a whole-vertebra map (TotalSegmentator ``total`` or VerSe) that
        names the level of each body.

    Returns
    -------
    Segmentation
        VerSe-numbered bodies on ``ct``'s grid; ``method`` starts with ``"external:"``.

    Raises
    ------
    LabelMapError
        Unreadable map, no physical overlap with the CT, undetermined convention, unnamed levels.
    """
    path = Path(path)
    convention = _normalise_convention(convention)
    if _is_dicom_seg(path):
        if convention not in (None, "dicom-seg"):
            raise LabelMapError(f"{path.name}: a DICOM SEG carries its own codes; drop --labels {convention}")
        from pvp_plan.export.dicom_seg import read_dicom_seg_levels

        labels, bodies_only = read_dicom_seg_levels(path, ct)
        convention = "dicom-seg"
        warnings: list[str] = []
        if not bodies_only:
            labels = split_vertebral_bodies(labels, spacing_mm=ct.spacing_mm, warnings=warnings)
        return _to_segmentation(labels, ct, "DICOM SEG", warnings, path)
    raw = label_map_on_ct_grid(path, ct)
    convention = convention or detect_convention(raw, spacing_mm=ct.spacing_mm, name=path.name)
    if convention == "dicom-seg":
        raise LabelMapError(f"{path.name}: not a DICOM SEG file; choose --labels totalsegmentator|verse")
    warnings = []
    if convention == "totalsegmentator":
        labels = split_vertebral_bodies(_from_totalsegmentator(raw, warnings), spacing_mm=ct.spacing_mm,
                                        warnings=warnings)
        what = "TotalSegmentator total, bodies split from whole vertebrae"
    elif convention == "verse":
        labels = split_vertebral_bodies(_drop_non_bodies(raw, warnings), spacing_mm=ct.spacing_mm,
                                        warnings=warnings)
        what = "VerSe whole vertebrae, bodies split"
    elif convention == "verse-bodies":
        labels = _drop_non_bodies(raw, warnings)
        what = "VerSe body map"
    else:
        labels = _name_totalsegmentator_bodies(raw, ct, anchor=anchor, vertebrae_path=vertebrae_path,
                                               name=path.name, warnings=warnings)
        what = "TotalSegmentator vertebrae_body"
    logger.info("external label map %s read as %s", path.name, convention)
    counted = convention == "totalsegmentator-bodies" and vertebrae_path is None  # named upward from the anchor
    return _to_segmentation(labels, ct, what, warnings, path, names_counted=counted)


def detect_convention(labels: np.ndarray, *, spacing_mm: tuple[float, float, float], name: str = "label map") -> str:
    """Guess the label convention of an integer map from its values (rule in the module docstring)."""
    values = {int(v) for v in np.unique(labels)} - {0}
    if not values:
        raise LabelMapError(f"{name}: the label map is empty (no non-zero voxel inside the CT)")
    if values <= {1, 2}:
        logger.info("%s: values %s read as TotalSegmentator vertebrae_body (1 = bodies, 2 = discs)",
                    name, sorted(values))
        return "totalsegmentator-bodies"
    if any(29 <= v <= 50 for v in values) or values <= {26, 27, 28}:
        return "totalsegmentator"
    if max(values) <= 28:
        whole = [lab for lab in values if lab not in VERSE_NON_BODY_LABELS]
        with_canal = sum(_find_canal(labels == lab, spacing_mm=spacing_mm, axis_zyx=np.array([1.0, 0, 0]))
                         is not None for lab in whole)
        return "verse" if with_canal * 2 > len(whole) else "verse-bodies"
    raise LabelMapError(
        f"{name}: cannot tell the label convention from the values {sorted(values)[:12]}; "
        "expected TotalSegmentator (26-50) or VerSe (1-28) vertebra labels; give --labels totalsegmentator|verse"
    )


def label_map_on_ct_grid(path: str | Path, ct: CTVolume) -> np.ndarray:
    """Read an integer label map and put it on ``ct``'s internal grid (nearest neighbour), as uint8.

    Raises :class:`LabelMapError` when it cannot be read, is not 3-D integer labels, or does not overlap
    the CT physically (the message names both files).
    """
    path = Path(path)
    ct_name = Path(ct.series.source_path).name or "the CT"
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise LabelMapError(f"{path.name}: cannot read the label map ({str(exc).strip().splitlines()[-1]})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise LabelMapError(f"{path.name}: expected a 3-D single-channel label map, got {image.GetDimension()}-D")
    source = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(source.dtype, np.integer) and not np.array_equal(source, np.round(source)):
        raise LabelMapError(f"{path.name}: voxel values are not integer labels (a probability map?)")
    if source.min() < 0 or source.max() > 255:
        raise LabelMapError(f"{path.name}: label values {source.min()}-{source.max()} lie outside 0-255")
    n_source = int(np.count_nonzero(source))
    if n_source == 0:
        raise LabelMapError(f"{path.name}: the label map is empty")
    reference = ct.to_sitk(np.zeros(ct.shape, dtype=np.uint8))
    resampled = sitk.Resample(sitk.Cast(image, sitk.sitkUInt8), reference, sitk.Transform(),
                              sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    labels = sitk.GetArrayFromImage(resampled)
    source_ml = n_source * float(np.prod(image.GetSpacing())) / 1000.0
    inside_ml = float(np.count_nonzero(labels)) * ct.voxel_volume_ml
    if inside_ml < 0.5 * source_ml:
        raise LabelMapError(
            f"{path.name} does not overlap {ct_name}: only {inside_ml:.1f} of {source_ml:.1f} mL of labels "
            "fall inside the CT; check that the label map was made from this CT (same patient frame)"
        )
    same_grid = image.GetSize() == ct.source_geometry.size_xyz and np.allclose(
        image.GetSpacing(), ct.source_geometry.spacing_xyz_mm, atol=1e-3) and np.allclose(
        image.GetOrigin(), ct.source_geometry.origin_lps_mm, atol=1e-2) and np.allclose(
        image.GetDirection(), ct.source_geometry.direction, atol=1e-4)
    if not same_grid:
        logger.info("%s: grid differs from %s; resampled with nearest neighbour", path.name, ct_name)
    return labels


def split_vertebral_bodies(
    vertebrae: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    opening_radius_mm: float = _OPENING_RADIUS_MM,
    warnings: list[str] | None = None,
) -> np.ndarray:
    """Vertebral bodies of a VerSe whole-vertebra map (z, y, x): the part anterior to the spinal canal.

    Parameters
    ----------
    vertebrae : np.ndarray
        VerSe-numbered whole vertebrae (body + arch), on an LPS-aligned grid.
    spacing_mm : (z, y, x) in millimetres
    opening_radius_mm : float
        Radius of the ball that removes pedicle and transverse-process roots left anterior to the cut.
    warnings : list of str, optional
        Receives one message per vertebra left out (canal not found).

    Returns
    -------
    np.ndarray
        uint8 VerSe body map, same shape. Method in the module docstring.
    """
    spacing = np.asarray(spacing_mm, dtype=float)
    present = sorted((int(v) for v in np.unique(vertebrae) if v != 0), key=lambda lab: Level.from_label(lab).order)
    counts = {lab: int(np.count_nonzero(vertebrae == lab)) for lab in present}
    centroids = {lab: np.argwhere(vertebrae == lab).mean(axis=0) * spacing for lab in present}
    # slivers cut by the field of view have meaningless centroids: they do not steer the axis
    guides = [lab for lab in present if counts[lab] >= 0.5 * np.median(list(counts.values()))]
    bodies = np.zeros(vertebrae.shape, dtype=np.uint8)
    ball = _ball(opening_radius_mm, spacing)
    boxes = ndimage.find_objects(vertebrae)
    margin = np.array(ball.shape) // 2 + 1
    for lab in present:
        axis = _local_axis(lab, guides, centroids)
        box = tuple(slice(max(s.start - m, 0), s.stop + m) for s, m in zip(boxes[lab - 1], margin, strict=True))
        mask = vertebrae[box] == lab
        body = _body_of_vertebra(mask, spacing=spacing, axis_zyx=axis, ball=ball)
        if body is None:
            msg = (f"{Level.from_label(lab).value}: spinal canal not found in the whole-vertebra mask "
                   "(cut by the field of view?); its body is not labelled")
            logger.warning(msg)
            if warnings is not None:
                warnings.append(msg)
            continue
        bodies[box][body] = lab
    return bodies


def _local_axis(lab: int, guides: list[int], centroids: dict) -> np.ndarray:
    """Cranial unit axis (z, y, x) at ``lab`` from the neighbouring guide vertebrae's centroids; +z if alone."""
    order = Level.from_label(lab).order
    cranial = [g for g in guides if Level.from_label(g).order < order]
    caudal = [g for g in guides if Level.from_label(g).order > order]
    top = centroids[cranial[-1]] if cranial else centroids[lab]
    bottom = centroids[caudal[0]] if caudal else centroids[lab]
    axis = top - bottom
    norm = np.linalg.norm(axis)
    return axis / norm if norm > 0 else np.array([1.0, 0.0, 0.0])


def _body_of_vertebra(mask: np.ndarray, *, spacing: np.ndarray, axis_zyx: np.ndarray, ball: np.ndarray):
    posterior = _posterior_direction(axis_zyx)
    wall = _find_canal(mask, spacing_mm=spacing, axis_zyx=axis_zyx)
    if wall is None:
        return None
    idx = np.argwhere(mask)
    depth = (idx * spacing) @ posterior
    anterior = np.zeros_like(mask)
    keep = idx[depth < wall]
    anterior[tuple(keep.T)] = True
    opened = ndimage.binary_opening(anterior, ball)
    lab, n = ndimage.label(opened)
    if n == 0:
        return None
    if n > 1:
        opened = lab == (int(np.argmax(ndimage.sum(opened, lab, range(1, n + 1)))) + 1)
    return opened


def _posterior_direction(axis_zyx: np.ndarray) -> np.ndarray:
    """The patient-posterior direction (+y) made perpendicular to the spine axis, (z, y, x) unit vector."""
    p = np.array([0.0, 1.0, 0.0]) - axis_zyx[1] * axis_zyx
    return p / np.linalg.norm(p)


def _find_canal(mask: np.ndarray, *, spacing_mm, axis_zyx: np.ndarray) -> float | None:
    """Depth (mm along the posterior direction, from the grid origin) of the canal's anterior wall, or None.

    The vertebra is projected along ``axis_zyx``; the canal is the largest hole >= 60 mm^2 in the ring.
    """
    spacing = np.asarray(spacing_mm, dtype=float)
    axis = np.asarray(axis_zyx, dtype=float) / np.linalg.norm(axis_zyx)
    posterior = _posterior_direction(axis)
    lateral = np.cross(axis, posterior)
    pts = np.argwhere(mask) * spacing
    if len(pts) < 10:
        return None
    v, u = pts @ posterior, pts @ lateral
    s, pad = _PROJECTION_PIXEL_MM, 6
    iv = np.round((v - v.min()) / s).astype(int) + pad
    iu = np.round((u - u.min()) / s).astype(int) + pad
    image = np.zeros((iv.max() + pad + 1, iu.max() + pad + 1), dtype=bool)
    image[iv, iu] = True
    cross = ndimage.generate_binary_structure(2, 1)
    for closing in range(5):
        ring = ndimage.binary_closing(image, cross, iterations=closing) if closing else image
        holes = ndimage.binary_fill_holes(ring) & ~ring
        lab, n = ndimage.label(holes)
        if n == 0:
            continue
        areas = ndimage.sum(holes, lab, range(1, n + 1)) * s * s
        if areas.max() >= _MIN_CANAL_AREA_MM2:
            canal_rows = np.nonzero(lab == int(np.argmax(areas)) + 1)[0]
            return float((canal_rows.min() - pad) * s + v.min() - s / 2)
    return None


def _ball(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    r = np.maximum(np.floor(radius_mm / spacing), 0).astype(int)
    grid = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return sum((g * sp) ** 2 for g, sp in zip(grid, spacing, strict=True)) <= radius_mm ** 2


def _from_totalsegmentator(raw: np.ndarray, warnings: list[str]) -> np.ndarray:
    """TotalSegmentator ``total`` vertebra labels -> VerSe labels; other structures dropped."""
    lut = np.zeros(256, dtype=np.uint8)
    for ts, verse in _TS_TO_VERSE.items():
        lut[ts] = verse
    dropped = sorted({int(v) for v in np.unique(raw)} - set(_TS_TO_VERSE) - {0})
    if dropped:
        logger.info("TotalSegmentator labels %s are not vertebrae C1-L5 (26 = S1); ignored", dropped)
    return lut[raw]


def _drop_non_bodies(raw: np.ndarray, warnings: list[str]) -> np.ndarray:
    labels = raw.copy()
    for lab, name in VERSE_NON_BODY_LABELS.items():
        if (labels == lab).any():
            logger.info("VerSe label %d (%s) is not a planned vertebral body; ignored", lab, name)
            labels[labels == lab] = 0
    unknown = sorted({int(v) for v in np.unique(labels)} - {0} - {lv.label for lv in Level})
    if unknown:
        raise LabelMapError(f"labels {unknown} are not VerSe vertebra labels (1-25, 28); check --labels")
    return labels


def _name_totalsegmentator_bodies(raw, ct, *, anchor, vertebrae_path, name, warnings) -> np.ndarray:
    """Name the bodies of a ``vertebrae_body`` map (1 = bodies) from a whole-vertebra map or an anchor."""
    unexpected = sorted({int(v) for v in np.unique(raw)} - {0, 1, 2})
    if unexpected:
        raise LabelMapError(f"{name}: TotalSegmentator vertebrae_body holds only 1 and 2; found {unexpected}")
    bodies = raw == 1
    if vertebrae_path is not None:
        whole_raw = label_map_on_ct_grid(vertebrae_path, ct)
        kind = detect_convention(whole_raw, spacing_mm=ct.spacing_mm, name=Path(vertebrae_path).name)
        if kind == "totalsegmentator":
            whole = _from_totalsegmentator(whole_raw, warnings)
        elif kind == "verse":
            whole = _drop_non_bodies(whole_raw, warnings)
        else:
            raise LabelMapError(f"{Path(vertebrae_path).name}: expected whole vertebrae (TotalSegmentator total "
                                f"or VerSe), found a {kind} map")
        # body voxels outside every vertebra take the nearest vertebra's label (within 2 voxels)
        dist, (iz, iy, ix) = ndimage.distance_transform_edt(whole == 0, sampling=ct.spacing_mm, return_indices=True)
        nearest = whole[iz, iy, ix]
        near = dist <= 2 * max(ct.spacing_mm)
        return np.where(bodies & near, nearest, 0).astype(np.uint8)
    if anchor is None:
        raise LabelMapError(
            f"{name} is a TotalSegmentator vertebrae_body map (1 = bodies of all levels, 2 = discs): it does not "
            "name the levels. Give the whole-vertebra map of the TotalSegmentator 'total' task with it, or name "
            "the most caudal body in the map with --anchor (e.g. --anchor S1 or --anchor L5)"
        )
    return _bodies_from_anchor(bodies, ct, anchor=anchor, name=name, warnings=warnings)


def _bodies_from_anchor(bodies: np.ndarray, ct: CTVolume, *, anchor: str, name: str, warnings: list[str]):
    """Connected bodies ordered caudal to cranial; the most caudal one is ``anchor`` (``"S1"`` allowed)."""
    lab, n = _separate_bodies(bodies, voxel_volume_ml=ct.voxel_volume_ml)
    if n == 0:
        raise LabelMapError(f"{name}: no vertebral body (label 1) inside the CT")
    sizes = ndimage.sum(bodies, lab, range(1, n + 1))
    keep = [i + 1 for i, size in enumerate(sizes) if size >= 0.2 * np.median(sizes)]
    heights = {k: ndimage.center_of_mass(lab == k)[0] for k in keep}  # z index increases superiorly
    ordered = sorted(keep, key=lambda k: heights[k])
    text = anchor.strip().upper()
    if text == "S1":
        ordered, start = ordered[1:], Level.L5
    else:
        try:
            start = Level.parse(text)
        except ValueError as exc:
            raise LabelMapError(f"--anchor {anchor!r}: {exc} (or S1)") from None
    out = np.zeros(bodies.shape, dtype=np.uint8)
    for steps, k in enumerate(ordered):
        try:
            level = start.shifted(-steps)
        except ValueError:
            raise LabelMapError(f"{name}: {len(ordered)} bodies above the anchor {anchor} do not fit C1-L5; "
                                "check --anchor") from None
        out[lab == k] = level.label
    warnings.append(f"levels of {name} counted cranially from the anchor {anchor} (most caudal body); "
                    "check them on the images")
    return out


def _separate_bodies(bodies: np.ndarray, *, voxel_volume_ml: float, min_body_ml: float = 2.0):
    """Label connected bodies, separating bodies that touch across a thin disc.

    The mask is eroded 0, 1 or 2 times (6-connected); the erosion giving the most components of at least
    ``min_body_ml`` is kept, and every body voxel then takes the label of its nearest component.
    """
    best, best_count = None, -1
    for iterations in range(3):
        core = ndimage.binary_erosion(bodies, iterations=iterations) if iterations else bodies
        lab, n = ndimage.label(core)
        sizes = ndimage.sum(core, lab, range(1, n + 1)) * voxel_volume_ml if n else np.zeros(0)
        big = [i + 1 for i, size in enumerate(sizes) if size >= min_body_ml]
        if len(big) > best_count:
            best, best_count = (lab, big), len(big)
    lab, big = best
    if best_count <= 0:
        return ndimage.label(bodies)
    core = np.zeros(bodies.shape, dtype=np.int32)
    for new, old in enumerate(big, start=1):
        core[lab == old] = new
    _, (iz, iy, ix) = ndimage.distance_transform_edt(core == 0, return_indices=True)
    return np.where(bodies, core[iz, iy, ix], 0), len(big)


def _to_segmentation(labels: np.ndarray, ct: CTVolume, what: str, warnings: list[str], path: Path, *,
                     names_counted: bool = False) -> Segmentation:
    """The Segmentation of an external map; its ``method`` names the convention, not the file (no identifiers).

    The level checks of pvp-plan's own segmentation run on it too (:func:`implausible_levels.checked`): another
    tool's map may merge or miss levels as well. A body too tall or cut in two is not planned and a lost level is
    reported; the names become uncertain only where they were counted from one anchor (``names_counted``: the user's
    ``--anchor`` names the most caudal body), and there only beyond a finding as seen from that body, not where the
    map names each level.
    """
    if not labels.any():
        raise LabelMapError(f"{path}: {what}: no vertebral body left after reading the label map")
    seg = Segmentation.from_label_map(labels, ct, method=f"external: {what}", warnings=tuple(warnings))
    lowest = min(seg.bodies, key=lambda b: b.centroid_lps_mm[2]).label if names_counted and seg.bodies else None
    return implausible_levels.with_level_checks(seg, names_counted=names_counted, anchored_label=lowest)


def _normalise_convention(convention: str | None) -> str | None:
    if convention is None:
        return None
    text = convention.strip().lower().replace("_", "-")
    text = {"totalsegmentator-total": "totalsegmentator", "total": "totalsegmentator",
            "totalsegmentator-vertebrae-body": "totalsegmentator-bodies", "dicom": "dicom-seg"}.get(text, text)
    if text not in CONVENTIONS:
        raise LabelMapError(f"unknown label convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")
    return text


def _is_dicom_seg(path: Path) -> bool:
    if path.is_dir() or path.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")):
        return False
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception:  # not DICOM: let SimpleITK try it
        return False
    return getattr(ds, "Modality", "") == "SEG"
