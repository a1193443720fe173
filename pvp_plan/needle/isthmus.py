"""The isthmus of one pedicle: its narrowest section along the pedicle's axis (issue 5).

Sections perpendicular to the axis are read every ``_STATION_MM`` along it, each on two lines only (a
cross-hair, ``+-_CROP_MM``): the centre alternates between the mid-points of the filled-bone runs along the
mediolateral and the cranio-caudal line, so a section that merges with the transverse process or the facets
elsewhere (3 mm voxels) is still read; the centres refine the axis (:func:`_fit_axis`), and the isthmus is
the section of smallest mediolateral width whose centre lies at a pedicle's height on the body
(:func:`_pedicle_band_mm`). Widths and heights are read, cortex included, on interpolated (cubic) HU
profiles through the section centre: each outer edge is the steepest fall of HU near the run's end, a
sub-voxel edge that holds for a thin cortex at 0.8 mm and at 3 mm voxels alike. The height is the
shortest among the isthmus section tilted cranio-caudally (:func:`_narrowest_height_mm`), so an error of
the fitted axis does not lengthen it.

Frames: points and directions LPS (x, y, z), points in mm; widths, heights and offsets in mm; positions
on a sampled line as sample indices (``_STEP_MM`` apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvp_plan.needle.frame import SIDE_SIGN, BodyFrame, LevelBone, _height_mm
from pvp_plan.rules import needle as R

_STEP_MM = 0.25  # in-plane sampling of perpendicular sections
_PROFILE_STEP_MM = 0.1  # sampling of the HU profiles that give widths and heights
_CROP_MM = 12.0  # half-length of the lines that read a section's width and height
_CENTRE_ITERATIONS = 3
_STATION_MM = 0.5
_HEIGHT_TILT_STEP_DEG = 2.0  # cranio-caudal tilts of the isthmus section (:func:`_narrowest_height_mm`)
_HEIGHT_TILT_MAX_DEG = 30.0
_HEIGHT_JUMP_MM = 1.0  # largest change of the height between neighbouring tilts


@dataclass(frozen=True)
class PedicleFit:
    """The isthmus of one pedicle as found on the CT: width and height in mm (cortex included), centre LPS mm,
    unit directions in LPS."""

    side: str
    width_mm: float
    height_mm: float
    center_lps_mm: np.ndarray
    axis_lps: np.ndarray  # unit, pointing anteriorly into the body
    lateral_lps: np.ndarray  # unit, in-plane mediolateral direction pointing laterally
    cranial_lps: np.ndarray  # unit, in-plane cranio-caudal direction pointing cranially


def _pedicle_band_mm(ct, lb: LevelBone, frame: BodyFrame) -> tuple[float, float]:
    """Heights (mm along the spine axis from the body's centroid) between which the pedicle's centre lies: from
    the centroid (the pedicle arises from the body's cranial half) to half the smallest pedicle height
    (``PEDICLE_HEIGHT_MM``) below the body's superior endplate (its top voxel's centre plus half a voxel)."""
    top = float(((ct.index_to_lps(np.argwhere(lb.body) + lb.origin_index) - frame.centroid_lps_mm)
                 @ frame.spine_axis_lps).max()) + 0.5 * float(ct.spacing_mm[0])
    return 0.0, top - 0.5 * R.PEDICLE_HEIGHT_MM.low


def _fit_axis(pts: np.ndarray) -> np.ndarray:
    """Principal direction of section centres, pointing anteriorly; outliers (> 2.5 x median, >= 1.5 mm) dropped."""
    keep = np.ones(len(pts), bool)
    for _ in range(3):
        c = pts[keep].mean(axis=0)
        _, _, vt = np.linalg.svd(pts[keep] - c)
        a = vt[0] if keep.sum() > 2 else pts[keep][-1] - pts[keep][0]
        a = a / np.linalg.norm(a)
        v = pts - c
        off = np.linalg.norm(v - np.outer(v @ a, a), axis=1)
        new = off <= max(1.5, 2.5 * float(np.median(off[keep])))
        if new.sum() < 2 or (new == keep).all():
            break
        keep = new
    return -a if a[1] > 0 else a  # point anteriorly (toward -y)


def _plane_axes(axis: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit (u, w) across the pedicle ``axis``, LPS: ``u`` mediolateral in the image's axial plane (pointing
    laterally, ``sign`` +1 on the left), ``w`` cranio-caudal (pointing cranially).

    The image's axial plane, not the vertebra's: at L5, 10-20 degrees back in the lordosis, the width chord so
    rolls about the axis (phantom L5 at 1 x 0.6 x 0.6 mm: onto the inferior articular process at the true
    isthmus; width +1.1 to +1.3 mm). Sections across the spine axis, with widths read across the true axis, read
    L5 within 0.4 mm but moved the section search on real CT (abdomen L3 right: no pedicle found), whose
    per-level spine axis comes from the neighbouring bodies (CHANGELOG, session 11)."""
    u = np.cross(axis, (0.0, 0.0, 1.0))
    u /= np.linalg.norm(u)
    u = u if u[0] * sign > 0 else -u
    w = np.cross(u, axis)
    w /= np.linalg.norm(w)
    return u, (w if w[2] > 0 else -w)


def _measure_isthmus(ct, lb, pts, axis, side, frame) -> tuple[PedicleFit | None, list, str | None]:
    """Sections perpendicular to ``axis`` every 0.5 mm: their centres, and the narrowest one as the isthmus.

    The isthmus is chosen among sections centred on the axis, clear of the body, not fragments, and whose
    centre lies at a pedicle's height on the body (:func:`_pedicle_band_mm`). Returns (isthmus or None,
    section centres LPS mm, why no section qualifies or None).
    """
    u, w = _plane_axes(axis, SIDE_SIGN[side])
    c0 = pts.mean(axis=0)
    t = (pts - c0) @ axis
    positions = np.arange(t.min(), t.max() + 1e-9, _STATION_MM)
    stations = [st for st in (_cross_hair(ct, lb, c0 + x * axis, u, w) for x in positions) if st is not None]
    if not stations:
        return None, [], _unreadable_sections_reason(len(positions), float(max(ct.spacing_mm)))
    centres = [st[2] for st in stations]
    widths = np.array([st[0] for st in stations])
    good = [st for st in stations if st[3] <= 3.0 and not st[4] and st[0] >= 0.6 * float(np.median(widths))]
    if not good:
        return None, centres, (f"{len(stations)} of {len(positions)} sections read, none centred on the path, "
                               "clear of the body and whole")
    lo_mm, hi_mm = _pedicle_band_mm(ct, lb, frame)
    heights = [_height_mm(st[2], frame) for st in good]
    good = [st for st, h in zip(good, heights, strict=True) if lo_mm <= h <= hi_mm]
    if not good:
        return None, centres, (f"the {len(heights)} clear sections are centred {min(heights):.1f} to "
                               f"{max(heights):.1f} mm above the body's centroid, outside a pedicle's height "
                               f"({lo_mm:.1f} to {hi_mm:.1f} mm)")
    w_good = np.array([st[0] for st in good])
    smooth = ndimage.median_filter(w_good, size=3, mode="nearest") if len(good) >= 3 else w_good
    k = int(np.argmin(smooth))
    centre = good[k][2]
    fit = PedicleFit(side=side, width_mm=float(smooth[k]),
                     height_mm=_narrowest_height_mm(ct, lb, centre, u, w, axis, float(good[k][1])),
                     center_lps_mm=centre, axis_lps=axis, lateral_lps=u, cranial_lps=w)
    return fit, centres, None


def _narrowest_height_mm(ct, lb, centre: np.ndarray, u: np.ndarray, w: np.ndarray, axis: np.ndarray,
                         untilted_mm: float) -> float:
    """Shortest height (mm) of the sections through ``centre`` perpendicular to ``axis`` tilted cranio-caudally
    (``w`` toward ``axis``; each section re-centred and read by :func:`_cross_hair`), over the unbroken run of
    tilts on either side of ``untilted_mm`` (the isthmus section's own height): steps of ``_HEIGHT_TILT_STEP_DEG``
    up to ``_HEIGHT_TILT_MAX_DEG``, stopping where a section is unread or its height jumps by more than
    ``_HEIGHT_JUMP_MM`` from the last (the chord has left this bone, or found a gap in it), so a broken reading
    never replaces a whole one.

    A tube's height is its shortest chord through the centre across the axis, the one perpendicular to the TRUE
    axis: read this way the height does not grow as 1 / cos of the error of the axis fitted from the section
    centres, 14-21 degrees on the phantom's T12-L4 at 1 mm voxels (20-40 on real CT), mostly sagittal. Widths are
    not read so: on real CT it flips a path that leaves the vertebra from unverified to safe (CHANGELOG, session
    11). ``u``, ``w``, ``axis``: unit, LPS, mutually perpendicular.
    """
    best = untilted_mm
    for sign in (1.0, -1.0):
        last = untilted_mm
        for deg in np.arange(_HEIGHT_TILT_STEP_DEG, _HEIGHT_TILT_MAX_DEG + 1e-9, _HEIGHT_TILT_STEP_DEG):
            phi = np.radians(sign * deg)
            st = _cross_hair(ct, lb, centre, u, np.cos(phi) * w + np.sin(phi) * axis)
            if st is None or abs(st[1] - last) > _HEIGHT_JUMP_MM:
                break
            best, last = min(best, st[1]), st[1]
    return best


def _unreadable_sections_reason(n: int, voxel_mm: float) -> str:
    """Why none of the ``n`` sections along the pedicle was measured (:func:`_cross_hair` read none), in words;
    ``voxel_mm`` is the CT's coarsest spacing (mm)."""
    which = "the one section along the pedicle could not" if n == 1 else f"none of the {n} sections along the pedicle could"
    return (f"{which} be measured, as in {'it' if n == 1 else 'each'} the bone through the section's centre reaches "
            f"{_CROP_MM:.0f} mm from it (merged with the facets, the transverse process or the next level at "
            f"{voxel_mm:.1f} mm voxels), is under 2 mm across, or is absent")


def _cross_hair(ct, lb, p, u, w) -> tuple[float, float, np.ndarray, float, bool] | None:
    """Width and height (mm) of the bone section through ``p`` perpendicular to the axis, read on two lines.

    The section is never isolated as a whole (at 3 mm voxels it merges with the transverse process and the
    facets): its centre is found by alternating the mid-points of the filled-bone run through it along
    ``u`` (mediolateral) and along ``w`` (cranio-caudal), each line sampled within ``_CROP_MM``; the width
    is the run along ``u`` through that centre (mid-height), the height the run along ``w``.

    Returns (width, height, centre LPS, centre's offset from ``p`` in mm, cut by the body) or None when a
    run reaches the crop (bone merged on the line) or is a speck (< 2 mm).
    """
    s = np.arange(-_CROP_MM, _CROP_MM + 1e-9, _STEP_MM)
    c = np.asarray(p, float)
    runs = {}
    for _ in range(_CENTRE_ITERATIONS):
        for d in (u, w):
            line = lb.sample(ct, c + s[:, None] * d, lb.filled) > 0.5
            run = _run_through(line, len(s) // 2)
            if run is None:
                return None
            a, b = run
            c = c + d * (0.5 * (a + b) - len(s) // 2) * _STEP_MM
    for key, d in (("u", u), ("w", w)):
        runs[key] = lb.sample(ct, c + s[:, None] * d, lb.filled) > 0.5
        if _run_through(runs[key], len(s) // 2) is None:
            return None
    width = _extent_mm(ct, lb, c, u, runs["u"], 0.0)
    height = _extent_mm(ct, lb, c, w, runs["w"], 0.0)
    if width is None or height is None or width < 2.0 or height < 2.0:
        return None
    a, b = _run_through(runs["u"], len(s) // 2)
    ends = c + ((np.array([a - 4, b + 4]) - len(s) // 2) * _STEP_MM)[:, None] * u  # 1 mm beyond the run
    on_body = bool((lb.sample(ct, ends, lb.body, order=0) > 0.5).any())
    return width, height, c, float(np.linalg.norm(c - p)), on_body


def _run_around(line: np.ndarray, i: int, max_gap_mm: float | None = None) -> tuple[int, int] | None:
    """(first, last) index of the True run of ``line`` at ``i``, or at the nearest True sample (no farther
    than ``max_gap_mm`` when given); None if there is none."""
    if not line[i]:
        hits = np.nonzero(line)[0]
        if not len(hits):
            return None
        j = int(hits[np.argmin(np.abs(hits - i))])
        if max_gap_mm is not None and abs(j - i) * _STEP_MM > max_gap_mm:
            return None
        i = j
    a, b = i, i
    while a > 0 and line[a - 1]:
        a -= 1
    while b < len(line) - 1 and line[b + 1]:
        b += 1
    return a, b


def _run_through(line: np.ndarray, i: int) -> tuple[int, int] | None:
    """(first, last) index of the True run of ``line`` at ``i`` (or the nearest within 2 mm); None if the run
    touches either end of the line (bone merged beyond the crop) or there is none."""
    run = _run_around(line, i, max_gap_mm=2.0)
    if run is None or run[0] == 0 or run[1] == len(line) - 1:
        return None
    return run


def _extent_mm(ct, lb, centre, direction, run_line, c_mm) -> float | None:
    """Outer-edge to outer-edge extent (mm) of a section along ``direction`` through ``centre``.

    ``run_line`` is the section's mask on the line (plane samples, ``_STEP_MM`` apart) and ``c_mm`` the
    centre's offset on it. Each edge is the steepest HU fall (outward) on a cubic profile within
    ``max(2 mm, 0.75 voxel)`` of the mask's border; the mask border itself when the profile has no fall.
    """
    run = _run_around(run_line, int(round(c_mm / _STEP_MM)) + len(run_line) // 2)
    if run is None:
        return None
    a, b = run
    half = (len(run_line) // 2) * _STEP_MM
    lo_mm, hi_mm = a * _STEP_MM - half - c_mm, b * _STEP_MM - half - c_mm  # borders, signed from the centre
    win = max(2.0, 0.75 * float(max(ct.spacing_mm)))
    mid = 0.5 * (lo_mm + hi_mm)
    edges = []
    for border, sgn in ((lo_mm, 1.0), (hi_mm, -1.0)):  # sgn: HU rises going +direction at the low border
        x = np.arange(border - win, border + win + 1e-9, _PROFILE_STEP_MM)
        x = x[(x <= mid) if sgn > 0 else (x >= mid)]
        if len(x) < 3:
            edges.append(border)
            continue
        grad = sgn * np.gradient(lb.hu_cubic(ct, centre + x[:, None] * direction), _PROFILE_STEP_MM)
        j = int(np.argmax(grad))
        edges.append(float(x[j]) if grad[j] > 0 else border)
    return edges[1] - edges[0]
