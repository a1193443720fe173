"""Naming vertebral levels: from anatomy in the image, or from the user's anchor.

Anatomical anchors: the sacrum (a bony mass whose section, with its alae, is wider than any
lumbar vertebra) directly below the lowest mobile body, which is then L5; and the lowest
rib-bearing vertebra, which is T12. With both in view they must agree (five lumbar-type bodies in
between); when they do not, the anatomy is transitional (six lumbar-type vertebrae, 11 or 13 rib
pairs, a sacralised L5) and the tool says so instead of guessing. With neither, the names are
counted from the lowest body with a low confidence and a warning asking for ``--anchor``: the
tool never claims more than the image shows. Rib pairs are not counted from T1.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.errors import SegmentationError
from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import Level
from pvp_plan.segment.canal import CanalTrack
from pvp_plan.segment.types import Segmentation

NAMING_SOURCE = "pvp-plan level naming"
#: Level-name confidence: sacrum and lowest rib agree; sacrum alone; lowest rib alone; the two
#: disagree (transitional anatomy); no anatomical anchor.
CONFIDENCE_SACRUM_AND_RIBS = 0.95
CONFIDENCE_SACRUM = 0.85
CONFIDENCE_RIBS = 0.7
CONFIDENCE_TRANSITIONAL = 0.4
CONFIDENCE_UNANCHORED = 0.2


def connected_width_mm(hu: np.ndarray, spacing_mm, seg: np.ndarray, k: int, z_slices: np.ndarray,
                       attached: np.ndarray | None = None, bone_hu: float = 180.0) -> float:
    """Median over segment ``k``'s slices ``z_slices`` of the left-right extent (mm) of bone connected to its section.

    ``attached`` marks tissue cut off the sections (pedicle roots, sacral alae) that still connects them.
    """
    widths = []
    for z in z_slices:
        bone = (hu[z] > bone_hu) | (seg[z] == k)
        if attached is not None:
            bone |= attached[z]
        lab, _ = ndimage.label(bone)
        ids = np.unique(lab[seg[z] == k])
        xs = np.nonzero(np.isin(lab, ids[ids > 0]).any(axis=0))[0]
        if xs.size:
            widths.append((xs.max() - xs.min() + 1) * spacing_mm[2])
    return float(np.median(widths)) if widths else 0.0


def sacral_segments(hu: np.ndarray, spacing_mm, seg: np.ndarray, slices: dict[int, np.ndarray],
                    width_mm: float, attached: np.ndarray | None = None, lowest_cut: bool = False) -> list[int]:
    """The caudal run of segments whose connected bone is wider than ``width_mm`` (sacrum with its alae).

    ``slices`` maps each segment to its axial slices (:func:`pvp_plan.segment.body_mask.segment_slices`);
    ``attached`` is what :func:`pvp_plan.segment.body_mask.column_mask` cut off the sections. With ``lowest_cut``
    (the field of view ends inside the lowest segment) that segment may read narrower than it is: it is sacral
    when the segment above it is (bone below the sacrum is sacrum). On the phantom at 2 mm slices a remnant S1/S2
    disc left a 10 mm sliver of sacrum at the bottom of the image, 89.6 mm wide: the sacrum was missed and S1
    counted as L5.
    """
    @functools.cache
    def wide(k: int) -> bool:
        return connected_width_mm(hu, spacing_mm, seg, k, slices[k], attached) >= width_mm

    order = sorted(slices)
    start = int(lowest_cut and len(order) > 1 and not wide(order[0]) and wide(order[1]))
    sacral = order[:start]
    for k in order[start:]:
        if not wide(k):
            break
        sacral.append(k)
    return sacral


#: The rib search's reach (mm): bone beyond ``RIB_REACH_MM`` of the canal's midline, from ``RIB_FRONT_MM`` in front
#: of the posterior body wall to ``RIB_BACK_MM`` behind it, is rib (lumbar transverse processes end within ~50 mm).
RIB_REACH_MM = 64.0
RIB_FRONT_MM = 15.0
RIB_BACK_MM = 60.0


def rib_bearing_segments(hu: np.ndarray, spacing_mm, slices: dict[int, np.ndarray], track: CanalTrack, *,
                         bone_hu: float = 200.0,
                         inner_mm: float = 28.0, reach_mm: float = RIB_REACH_MM, outer_mm: float = 110.0,
                         exclude: set[int] = frozenset()) -> set[int]:
    """Segments (working-grid labels) with a rib articulating at their level, on either side.

    A rib is bone lateral to the vertebra (more than ``inner_mm`` from the canal's midline, within a
    band from just in front of the posterior body wall to 60 mm behind it) forming one 3-D piece that
    reaches beyond ``reach_mm`` laterally: lumbar transverse processes end within ~50 mm of the
    midline. The rib is assigned to the body at the height of its medial end (its head and neck),
    not where its sloping shaft crosses, so the 11th and 12th ribs count at their own level.
    ``slices`` maps each segment to its axial slices (:func:`pvp_plan.segment.body_mask.segment_slices`).
    Frames: (z, y, x) working grid; +x is the patient's left.
    """
    nz, ny, nx = hu.shape
    yy = np.arange(ny)[None, :, None] * spacing_mm[1]
    lat = np.abs(np.arange(nx)[None, None, :] * spacing_mm[2] - track.center_yx[:, 1][:, None, None] * spacing_mm[2])
    wall = track.wall_y[:, None, None] * spacing_mm[1]
    band = (lat > inner_mm) & (lat < outer_mm) & (yy > wall - RIB_FRONT_MM) & (yy < wall + RIB_BACK_MM)
    band[: track.z_range[0]] = False
    band[track.z_range[1]:] = False
    lab, n = ndimage.label((hu > bone_hu) & band)
    if n == 0:
        return set()
    out = set()
    for i, box in enumerate(ndimage.find_objects(lab)):
        if box is None:
            continue
        piece = lab[box] == i + 1
        idx = np.argwhere(piece) + [s.start for s in box]
        d = lat[idx[:, 0], 0, idx[:, 2]]
        if d.max() < reach_mm or d.min() > inner_mm + 4.0:
            continue  # a transverse process, or a rib shaft cut off from its head
        if any(zs.size and idx[:, 0].min() <= zs.max() and idx[:, 0].max() >= zs.min()
               for k, zs in slices.items() if k in exclude):
            continue  # the ilium beside the sacrum
        medial = idx[d < d.min() + 8.0, 0]
        if np.median(medial) < np.median(idx[d > d.max() - 8.0, 0]):
            continue  # rises laterally: the iliac crest above the sacroiliac joint (a rib descends from its head)
        z_head = float(np.percentile(medial, 75))  # the head is the cranial, medial end
        near = [(abs(z_head - zs.mean()), k) for k, zs in slices.items()
                if zs.size and zs.min() - 2 <= z_head <= zs.max() + 2]
        if near:
            out.add(min(near)[1])
    return out


def rib_view_cut(shape, spacing_mm, slices: dict[int, np.ndarray], track: CanalTrack) -> set[int]:
    """Segments beside which the field of view cuts the rib search: on some of their slices the image ends within
    ``RIB_REACH_MM`` of the canal's midline on either side, or within ``RIB_BACK_MM`` behind the posterior body wall.

    A rib there may lie outside the image, so finding none does not make the body rib-free (a chest CT
    reconstructed on a 180 mm field of view showed the ribs of T8-T11 only in part, and with its lowest 24 mm cut
    away, T7 passed for the lowest rib-bearing vertebra). ``shape`` and ``slices`` on the working grid, (z, y, x).
    """
    ny, nx = shape[1], shape[2]
    out = set()
    for k, zs in slices.items():
        if not zs.size:
            continue
        x_mm = track.center_yx[zs, 1] * spacing_mm[2]
        back_mm = track.wall_y[zs] * spacing_mm[1] + RIB_BACK_MM
        sideways = (x_mm - RIB_REACH_MM < 0) | (x_mm + RIB_REACH_MM > nx * spacing_mm[2])
        if (sideways | (back_mm > ny * spacing_mm[1])).any():
            out.add(k)
    return out


#: Rib-free bodies (rib search in view) between two rib-bearing ones that make the lower "rib" doubtful: ribs run
#: unbroken from T1 down, so a rib below two or more lumbar-type bodies is another bone (or the ribs between were
#: missed). One body is let pass: a small rib the search misses between two found.
MIN_RIB_FREE_GAP = 2


def lowest_rib_index(bodies: list[int], ribs: set[int], unseen: set[int]) -> tuple[int | None, int | None]:
    """Index (from the lowest body, 0) of the body to name T12, and of a lower rib-bearing body passed over.

    ``bodies`` are segment labels from the lowest up, ``ribs`` those with a rib found
    (:func:`rib_bearing_segments`), ``unseen`` those beside which the field of view cuts the rib search
    (:func:`rib_view_cut`: finding no rib there says nothing). A rib-bearing body with at least
    ``MIN_RIB_FREE_GAP`` seen rib-free bodies between it and the next rib-bearing body above is passed over
    (the ilium joined to L5's transverse process passed the rib test on a noisy 2 mm abdomen, with four
    rib-free bodies above it); the lowest such body passed over is returned second, else None.
    """
    found = [i for i, k in enumerate(bodies) if k in ribs]
    passed_over = None
    for lower, upper in zip(found, found[1:]):
        if sum(bodies[i] not in unseen for i in range(lower + 1, upper)) < MIN_RIB_FREE_GAP:
            return lower, passed_over
        passed_over = lower if passed_over is None else passed_over
    return (found[-1] if found else None), passed_over


@dataclass(frozen=True)
class Naming:
    """Name of the lowest body, how sure the tool is, and what it must tell the user."""

    lowest: Level
    confidence: float
    warnings: tuple[str, ...] = ()


def name_from_anchors(*, sacrum_below: bool, lowest_rib_index: int | None, ribs_may_be_unseen: bool = False,
                      passed_over_rib_index: int | None = None) -> Naming:
    """Decide the lowest body's name from the sacrum and the lowest rib-bearing body.

    ``lowest_rib_index`` counts bodies from the lowest (0); a rib-bearing body is only used as T12
    when a body without ribs lies below it (otherwise T12 may be out of view). ``ribs_may_be_unseen``: the field of
    view cuts the rib search beside a body below the lowest rib found (:func:`rib_view_cut`); without the sacrum the
    names counted from that rib are then uncertain (transitional confidence). ``passed_over_rib_index``: a lower body
    with a rib found, passed over by :func:`lowest_rib_index`; the names are then uncertain too, with or without
    the sacrum (one of the two is not what it seems).
    """
    named = _name_from_anchors(sacrum_below, lowest_rib_index, ribs_may_be_unseen)
    if passed_over_rib_index is None:
        return named
    return Naming(named.lowest, min(named.confidence, CONFIDENCE_TRANSITIONAL), named.warnings + (
        f"{NAMING_SOURCE}: a rib was found beside body {passed_over_rib_index + 1} from the bottom, below rib-free "
        "bodies; ribs run unbroken from T1 to T12, so it was not counted as T12 (it may be the ilium or a long "
        "transverse process, or ribs above it were missed): the level names are uncertain; confirm a level with "
        "--anchor",))


def _name_from_anchors(sacrum_below: bool, lowest_rib_index: int | None, ribs_may_be_unseen: bool) -> Naming:
    rib = lowest_rib_index if lowest_rib_index is not None and lowest_rib_index > 0 else None
    if rib is not None and rib > 5 and not sacrum_below:
        return Naming(Level.L5, CONFIDENCE_UNANCHORED, (
            f"{NAMING_SOURCE}: {rib} rib-free bodies lie below the lowest rib-bearing vertebra and no sacrum was "
            "recognised: the lowest body may be the sacrum or an L6, so the level names are counted from an assumed "
            "L5 and are unverified; name one level with --anchor (e.g. --anchor T12:z=...)",))
    if sacrum_below and rib is not None:
        if rib == 5:
            return Naming(Level.L5, CONFIDENCE_SACRUM_AND_RIBS)
        return Naming(Level.L5, CONFIDENCE_TRANSITIONAL, (
            f"{NAMING_SOURCE}: transitional anatomy: {rib} rib-free bodies lie between the sacrum and the lowest "
            "rib-bearing vertebra (5 expected): an L6, a sacralised L5, or 11 or 13 rib pairs. Levels are counted "
            "from the sacrum; confirm the level on the fluoroscopy / whole-spine images and name one with --anchor",))
    if sacrum_below:
        return Naming(Level.L5, CONFIDENCE_SACRUM)
    if rib is not None and ribs_may_be_unseen:
        return Naming(Level.T12.shifted(rib), CONFIDENCE_TRANSITIONAL, (
            f"{NAMING_SOURCE}: no sacrum in view; levels counted from the lowest rib-bearing vertebra found as T12, "
            "but the field of view cuts off the ribs' course beside the bodies below it, so a lower rib may be out of "
            "view and the names may be one or more levels off: confirm a level with --anchor",))
    if rib is not None:
        return Naming(Level.T12.shifted(rib), CONFIDENCE_RIBS, (
            f"{NAMING_SOURCE}: no sacrum in view; levels counted from the lowest rib-bearing vertebra as T12. "
            "11 or 13 rib pairs cannot be excluded from this view: confirm with --anchor if in doubt",))
    return Naming(Level.L5, CONFIDENCE_UNANCHORED, (
        f"{NAMING_SOURCE}: no sacrum and no lowest rib in view, so the level names are counted from an assumed "
        "L5 and are unverified; name one level with --anchor (e.g. --anchor T12:z=...)",))


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
