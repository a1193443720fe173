"""Naming vertebral levels: from anatomy in the image, or from the user's anchor.

Anatomical anchor used: the sacrum (a bony mass whose section, with its alae, is wider than any
lumbar vertebra) directly below the lowest mobile body, which is then L5. Without the sacrum in
view the names are counted from the lowest body with a low confidence and a warning asking for
``--anchor``: the tool never claims more than the image shows. Rib-based naming (lowest
rib-bearing vertebra = T12) is not implemented yet.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import ndimage

from pvp_plan.errors import SegmentationError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import Level
from pvp_plan.segment.types import Segmentation

NAMING_SOURCE = "pvp-plan level naming"
#: Level-name confidence with the sacrum as anchor, and without any anatomical anchor.
CONFIDENCE_SACRUM = 0.85
CONFIDENCE_UNANCHORED = 0.2


def connected_width_mm(hu: np.ndarray, spacing_mm, seg: np.ndarray, k: int, bone_hu: float = 180.0) -> float:
    """Median over segment ``k``'s slices of the left-right extent (mm) of bone connected to its section."""
    widths = []
    for z in np.nonzero((seg == k).any(axis=(1, 2)))[0]:
        bone = (hu[z] > bone_hu) | (seg[z] == k)
        lab, _ = ndimage.label(bone)
        ids = np.unique(lab[seg[z] == k])
        xs = np.nonzero(np.isin(lab, ids[ids > 0]).any(axis=0))[0]
        if xs.size:
            widths.append((xs.max() - xs.min() + 1) * spacing_mm[2])
    return float(np.median(widths)) if widths else 0.0


def sacral_segments(hu: np.ndarray, spacing_mm, seg: np.ndarray, width_mm: float) -> list[int]:
    """The caudal run of segments whose connected bone is wider than ``width_mm`` (sacrum with its alae)."""
    sacral = []
    for k in sorted(int(v) for v in np.unique(seg) if v >= 0):
        if connected_width_mm(hu, spacing_mm, seg, k) < width_mm:
            break
        sacral.append(k)
    return sacral


def names_upward(n: int, lowest: Level) -> list[Level]:
    """Names of ``n`` bodies from the lowest (caudal) upward."""
    try:
        return [lowest.shifted(-k) for k in range(n)]
    except ValueError:
        raise SegmentationError(f"{n} bodies cannot be named upward from {lowest.value}; give --anchor") from None


def parse_anchor(anchor: str) -> tuple[Level, str, float]:
    """Parse ``"L3"`` / ``"L3:2"`` (2nd body from the bottom, 1-based) / ``"L3:z=123.4"`` (nearest LPS z, mm).

    ``"L3"`` alone means the lowest body is L3 (same as ``"L3:1"``). Returns (level, kind, value)
    with kind ``"index"`` or ``"z"``.
    """
    m = re.fullmatch(r"\s*([A-Za-z]\d{1,2})\s*(?::\s*(?:(z)\s*=\s*)?([-+]?\d+(?:\.\d*)?))?\s*", anchor or "")
    if not m:
        raise SegmentationError(f"anchor {anchor!r} not understood; use e.g. 'L3', 'L3:2' (2nd body from the "
                                "bottom) or 'L3:z=123.4' (body nearest LPS z = 123.4 mm)")
    try:
        level = Level.parse(m.group(1))
    except ValueError as exc:
        raise SegmentationError(str(exc)) from None
    if m.group(2):
        return level, "z", float(m.group(3))
    idx = int(float(m.group(3))) if m.group(3) else 1
    if idx < 1:
        raise SegmentationError(f"anchor {anchor!r}: body index must be >= 1 (1 = lowest body)")
    return level, "index", float(idx)


def relabel(seg: Segmentation, ct: CTVolume, *, anchor: str) -> Segmentation:
    """Rename every body from one named level (see :func:`parse_anchor`); all others renumber consistently.

    Field-of-view cut flags and segmentation confidences are kept; the level confidence becomes 1.0
    (the user named it) and a warning records the anchor.
    """
    from dataclasses import replace

    level, kind, value = parse_anchor(anchor)
    bodies = sorted(seg.bodies, key=lambda b: b.centroid_lps_mm[2])  # caudal first
    if not bodies:
        raise SegmentationError("nothing to relabel: the segmentation holds no body")
    if kind == "index":
        i = int(value) - 1
        if i >= len(bodies):
            raise SegmentationError(f"anchor {anchor!r}: only {len(bodies)} bodies found")
    else:
        i = int(np.argmin([abs(b.centroid_lps_mm[2] - value) for b in bodies]))
    names = names_upward(len(bodies), level.shifted(i) if i else level)
    lut = np.zeros(256, np.uint8)
    for b, name in zip(bodies, names):
        lut[b.label] = name.label
    warn = tuple(w for w in seg.warnings if not w.startswith(NAMING_SOURCE)) + (
        f"{NAMING_SOURCE}: levels set by the user's anchor {anchor!r}",)
    new = Segmentation.from_label_map(lut[seg.labels], ct, method=seg.method, level_confidence=1.0, warnings=warn)
    old_by_new = {int(lut[b.label]): b for b in bodies}
    kept = tuple(replace(b, cut_by_fov=b.cut_by_fov or old_by_new[b.label].cut_by_fov,
                         segmentation_confidence=old_by_new[b.label].segmentation_confidence) for b in new.bodies)
    return replace(new, bodies=kept)
