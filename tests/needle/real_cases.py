"""Real CT cases for the needle tests and the needle robustness study: CT, bodies and the reference vertebra.

The references are TotalSegmentator masks in ``../shared/data`` (see its README): the whole vertebra of each level
(body and arch) and, on the abdomen, the per-level bodies. The planner never sees them; they judge its paths.
"""

from __future__ import annotations

import functools

import numpy as np
import SimpleITK as sitk

from pvp_plan.needle import plan_level_needle_paths
from pvp_plan.segment.types import Segmentation
from tests.conftest import dice, shared_path


def labels(path) -> np.ndarray:
    """A NIfTI label map on the internal (LPS, z y x) grid, as the CT loader puts the CT."""
    from pvp_plan.io.load import volume_from_image

    return volume_from_image(sitk.ReadImage(str(path)), source_path=str(path), source_format="nifti").hu


def resampled(img: sitk.Image, spacing_xyz, interpolator, default: float, pixel) -> np.ndarray:
    """``img`` resampled onto a grid of ``spacing_xyz`` (mm, x y z) over the same extent, as a (z, y, x) array."""
    size = [int(round(n * s / t)) for n, s, t in zip(img.GetSize(), img.GetSpacing(), spacing_xyz)]
    grid = sitk.Image(size, pixel)
    grid.SetSpacing(spacing_xyz)
    grid.SetOrigin(img.GetOrigin())
    grid.SetDirection(img.GetDirection())
    return sitk.GetArrayFromImage(sitk.Resample(img, grid, sitk.Transform(), interpolator, default))


def reference_level(seg: Segmentation, label: int, ref: np.ndarray, min_voxels: int = 50):
    """(the reference level that body ``label`` of ``seg`` overlaps most, its Dice against that level's mask), or
    None when it overlaps ``ref`` (a VerSe label map on the same grid) in fewer than ``min_voxels`` voxels."""
    from pvp_plan.levels import Level

    body = seg.labels == label
    under = ref[body & (ref > 0)]
    if under.size < min_voxels:
        return None
    truth = int(np.bincount(under).argmax())
    return Level.from_label(truth), dice(body, ref == truth)


def abdomen():
    """The 3 mm abdomen: CT, TotalSegmentator's per-level bodies, its whole-vertebra map (``total`` numbering)."""
    from pvp_plan.io.load import load_ct

    root = shared_path("abdomen_3mm")
    ct = load_ct(root / "ct.nii.gz")
    seg = Segmentation.from_label_map(labels(root / "reference/totalseg_vertebral_bodies_per_level.nii.gz"), ct,
                                      method="external: TotalSegmentator")
    return ct, seg, labels(root / "reference/totalseg_total_vertebrae.nii.gz")


@functools.lru_cache(maxsize=2)
def abdomen_on_grid(spacing_zyx_mm: tuple[float, float, float]):
    """The 3 mm abdomen resampled to ``spacing_zyx_mm`` (linear HU) with its references (nearest): (CT, the
    per-level bodies as a Segmentation, the whole-vertebra map). The same image information on a finer grid."""
    from pvp_plan.io import ct_from_array

    ct, seg, vert = abdomen()
    xyz = tuple(float(v) for v in spacing_zyx_mm[::-1])
    hu = resampled(ct.to_sitk(), xyz, sitk.sitkLinear, -1024, sitk.sitkInt16)
    new = ct_from_array(hu.astype(np.int16), spacing_mm=tuple(spacing_zyx_mm), origin_lps_mm=ct.origin_lps_mm,
                        name=f"abdomen_3mm resampled to {spacing_zyx_mm}")

    def on_grid(labels):
        return resampled(ct.to_sitk(labels.astype(np.uint8)), xyz, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)

    ref = Segmentation.from_label_map(on_grid(seg.labels), new, method="external: TotalSegmentator, resampled")
    return new, ref, on_grid(vert)


def thorax():
    """The 1.5 mm chest: CT, the body split off TotalSegmentator's T12 (the only reference), that T12 (VerSe label)."""
    from pvp_plan.io.load import load_ct
    from pvp_plan.levels import Level
    from pvp_plan.segment.external import split_vertebral_bodies

    root = shared_path("thorax_1p5mm")
    ct = load_ct(root / "ct.nii.gz")
    vert = np.where(labels(root / "reference/totalseg_vertebra_T12.nii.gz") > 0, Level("T12").label, 0)
    bodies = split_vertebral_bodies(vert.astype(np.uint8), spacing_mm=ct.spacing_mm)
    return ct, Segmentation.from_label_map(bodies, ct, method="external: TotalSegmentator T12, body split"), vert


def reference(case: str, level: str):
    """CT, body segmentation, whole-vertebra reference mask (vertebra | body) of one level of a real CT."""
    from pvp_plan.levels import TOTALSEGMENTATOR_TOTAL_LABELS, Level

    if case == "abdomen_3mm":
        ct, seg, vert = abdomen()
        vmask = vert == TOTALSEGMENTATOR_TOTAL_LABELS[Level(level)]
    else:
        ct, seg, vert = thorax()
        vmask = vert > 0
    return ct, seg, vmask | seg.mask(level)


def reference_canal_distance_mm(vmask: np.ndarray, spacing_mm, closing_mm: float | None = None) -> np.ndarray:
    """Distance (mm) to the reference canal: per axial slice, the largest hole (>= 60 mm^2) of the vertebra ring
    closed by one voxel (the 3 mm reference masks leave it open by a voxel), or by ``closing_mm`` (a mask of 3 mm
    voxels resampled to a finer grid: 3.0)."""
    from scipy import ndimage

    r = 1 if closing_mm is None else max(1, int(round(closing_mm / min(spacing_mm[1], spacing_mm[2]))))  # voxels
    canal = np.zeros(vmask.shape, bool)
    for z in range(vmask.shape[0]):
        ring = ndimage.binary_closing(np.pad(vmask[z], r + 1), iterations=r)[r + 1:-r - 1, r + 1:-r - 1] | vmask[z]
        holes = ndimage.binary_fill_holes(ring) & ~ring
        lab, n = ndimage.label(holes)
        if n:
            areas = np.asarray(ndimage.sum(holes, lab, range(1, n + 1))) * spacing_mm[1] * spacing_mm[2]
            if areas.max() >= 60.0:
                canal[z] = lab == int(np.argmax(areas)) + 1
    assert canal.any(), "reference canal not found"
    return ndimage.distance_transform_edt(~canal, sampling=spacing_mm)


def path_against_reference(ct, path, vmask, canal_d):
    """(fraction of the bone-entry -> target segment inside the reference vertebra, min distance to its canal)."""
    a, b = np.array(path.bone_entry_lps_mm), np.array(path.target_lps_mm)
    idx = np.round(ct.lps_to_index(a + np.linspace(0, 1, 60)[:, None] * (b - a))).astype(int)
    idx = np.clip(idx, 0, np.array(ct.shape) - 1)
    return float(vmask[tuple(idx.T)].mean()), float(canal_d[tuple(idx.T)].min())


@functools.lru_cache(maxsize=2)
def automatic_segmentation(case: str) -> Segmentation:
    """pvp-plan's own segmentation of a real CT: the bodies a user plans on."""
    from pvp_plan.io.load import load_ct
    from pvp_plan.segment import segment_vertebral_bodies

    return segment_vertebral_bodies(load_ct(shared_path(case, "ct.nii.gz")))


def planned(source: str, case: str, level: str):
    """(CT, whole-vertebra reference mask, paths) of one level planned on the reference bodies or on pvp-plan's
    automatic segmentation (``source``: ``"reference"`` or ``"automatic"``)."""
    ct, seg, vmask = reference(case, level)
    if source == "automatic":
        seg = automatic_segmentation(case)
    return ct, vmask, plan_level_needle_paths(ct, seg, level)


def ends_moved(labels: np.ndarray, slices: int) -> np.ndarray:
    """Each body's end slices trimmed (``slices < 0``) or grown into background (``slices > 0``), column by column."""
    from scipy import ndimage

    out = labels.copy()
    for lab in np.unique(labels[labels > 0]):
        body = labels == lab
        if slices < 0:
            out[body & ~ndimage.binary_erosion(body, np.ones((3, 1, 1), bool), iterations=-slices)] = 0
        else:
            grown = ndimage.binary_dilation(body, np.ones((3, 1, 1), bool), iterations=slices)
            out[grown & (out == 0)] = lab
    return out


def convex_sections(labels: np.ndarray) -> np.ndarray:
    """Each body's axial sections replaced by their convex hulls (posterolateral corners filled)."""
    from skimage.morphology import convex_hull_image

    out = labels.copy()
    for lab in np.unique(labels[labels > 0]):
        body = labels == lab
        for z in np.flatnonzero(body.any(axis=(1, 2))):
            out[z][convex_hull_image(body[z]) & (out[z] == 0)] = lab
    return out
