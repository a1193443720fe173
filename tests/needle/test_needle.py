"""Needle planning (issue 5): phantom truth, real CT plausibility, output contracts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pvp_plan.errors import PlanError
from pvp_plan.levels import Level
from pvp_plan.needle import needle_layer_data, plan_level_needle_paths, project_path_on_axial
from pvp_plan.rules.needle import PEDICLE_WIDTH_LUMBAR_MM
from pvp_plan.segment.types import Segmentation
from tests.needle.real_cases import abdomen as _abdomen
from tests.needle.real_cases import path_against_reference as _path_against_reference
from tests.needle.real_cases import planned as _planned
from tests.needle.real_cases import reference as _reference
from tests.needle.real_cases import reference_canal_distance_mm as _reference_canal_distance_mm


@pytest.fixture(scope="module")
def phantom():
    from pvp_plan.sample_data import generate_phantom

    ph = generate_phantom(levels=("T11", "T12", "L1", "L2", "L3"), narrow_pedicle_level="T11")
    return ph, Segmentation.from_label_map(ph.body_labels, ph.ct, method="truth")


def _angles(d):
    ml = np.degrees(np.arctan2(abs(d[0]), abs(d[1])))
    return ml, np.degrees(np.arctan2(-d[2], np.hypot(d[0], d[1])))


@pytest.mark.parametrize("level", ["T12", "L1", "L2"])
def test_phantom_isthmus_width_and_path_angles(phantom, level):
    ph, seg = phantom
    paths = plan_level_needle_paths(ph.ct, seg, level)
    assert [p.side for p in paths] == ["left", "right"]
    for p in paths:
        truth = ph.truth["levels"][level]["pedicles"][p.side]
        assert abs(p.pedicle.width_mm - truth["width_mm"]) <= 0.5
        # like with like: the planned path's angles vs the line from the TRUE isthmus centre to the planned target
        ml, cc = _angles(np.subtract(p.target_lps_mm, truth["isthmus_center_lps_mm"]))
        assert abs(abs(p.mediolateral_angle_deg) - ml) <= 2.0
        assert abs(p.craniocaudal_angle_deg - cc) <= 2.0
        assert p.safe
        json.dumps(p.to_dict())  # plan.json contract


def test_phantom_narrow_thoracic_pedicle_warns(phantom):
    ph, seg = phantom
    for p in plan_level_needle_paths(ph.ct, seg, "T11"):
        assert abs(p.pedicle.width_mm - ph.truth["levels"]["T11"]["pedicles"][p.side]["width_mm"]) <= 0.5
        codes = {n.code for n in p.notices}
        assert "pedicle_too_narrow_for_gauge" in codes
        assert any("13G" in n.message or "parapedicular" in n.message for n in p.notices)


def test_phantom_true_pedicles_are_transpedicular(phantom):
    """The not-transpedicular check never fires on a true pedicle (phantom truth), at any found level or side."""
    ph, seg = phantom
    found = 0
    for level in ph.truth["levels"]:
        for p in plan_level_needle_paths(ph.ct, seg, level):
            if p.target_lps_mm is not None:
                found += 1
                assert "not_transpedicular" not in {n.code for n in p.notices}, (level, p.side, p.notices)
    assert found >= 8


def _l4_right_check(entry_lps=None, ml_deg=None):
    """The planned path and the notices of the transpedicular check on abdomen L4 right (code -> notice), with the
    bone entry and angle optionally replaced."""
    from pvp_plan.needle.frame import body_frame, level_bone
    from pvp_plan.needle.pedicle import find_pedicle
    from pvp_plan.needle.planner import _transpedicular_notices

    ct, seg, _ = _abdomen()
    lv = Level("L4")
    frame = body_frame(ct, seg.mask(lv), spine_axis_lps=seg.body(lv).axis_lps)
    lb = level_bone(ct, seg.mask(lv), frame)
    path = {p.side: p for p in plan_level_needle_paths(ct, seg, lv)}["right"]
    fit = find_pedicle(ct, lb, frame, "right")
    entry = path.bone_entry_lps_mm if entry_lps is None else entry_lps(ct, frame, fit)
    ml = path.mediolateral_angle_deg if ml_deg is None else ml_deg
    return path, {n.code: n for n in _transpedicular_notices(ct, lb, frame, fit, np.asarray(entry), ml, lv)}


def _on_lamina(ct, frame, fit):
    """A bone entry on the right lamina: 4 mm right of the midline, 22 mm behind the body (behind the canal)."""
    i = ct.lps_to_index(np.asarray(fit.center_lps_mm))
    sp = ct.spacing_mm
    return ct.index_to_lps(np.array([i[0], frame.posterior_wall_y + 22.0 / sp[1], frame.midline_x - 4.0 / sp[2]]))


_FINE_LEVELS = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")


@pytest.fixture(scope="module")
def fine_paths(fine_phantom):
    """The fine phantom's needle paths per (level, side), planned on its true bodies."""
    seg = Segmentation.from_label_map(fine_phantom.body_labels, fine_phantom.ct, method="truth")
    return {(level, p.side): p for level in _FINE_LEVELS for p in plan_level_needle_paths(fine_phantom.ct, seg, level)}


@pytest.mark.parametrize("level", _FINE_LEVELS)
def test_fine_phantom_path_angles(fine_paths, fine_phantom, level):
    """1 x 0.6 x 0.6 mm, T11-L5: each path's angles within 2 degrees of the line from the TRUE isthmus centre to the
    planned target (issue 5 "done when"; the 2 mm phantom's T12-L2 above)."""
    for side in ("left", "right"):
        p = fine_paths[level, side]
        ml, cc = _angles(np.subtract(p.target_lps_mm, fine_phantom.truth["levels"][level]["pedicles"][side]
                                     ["isthmus_center_lps_mm"]))
        assert abs(abs(p.mediolateral_angle_deg) - ml) <= 2.0, (side, p.mediolateral_angle_deg, ml)
        assert abs(p.craniocaudal_angle_deg - cc) <= 2.0, (side, p.craniocaudal_angle_deg, cc)


def test_phantom_lower_lumbar_pedicles_on_thin_slices_are_transpedicular(fine_paths):
    """1 x 0.6 x 0.6 mm: the phantom's L5 isthmus lies beside the body at its posterior wall line (0.3-0.4 mm in front
    of the last body voxel's centre); its true pedicles are transpedicular and safe (they read not transpedicular
    without the place check's one-voxel allowance)."""
    for level in ("L4", "L5"):
        for p in (fine_paths[level, "left"], fine_paths[level, "right"]):
            assert "not_transpedicular" not in {n.code for n in p.notices}, (level, p.side)
            assert p.safe, (level, p.side, [n.code for n in p.notices])


_WIDE_ROLLED = ("the isthmus is read across the fitted axis in the image's axial plane: at L4 the fitted axis lies "
                 "18 degrees off (width +0.8 to +1.0 mm; the refinement's first step turns 27.7 degrees, over the "
                 "25-degree guard, so the medial path's direction is kept); L5 lies back in the lordosis, so its width chord rolls "
                 "about the axis onto the inferior articular process at the true isthmus (18 mm) and the narrowest "
                 "section is 3.7 mm anterior (+1.1 to +1.3 mm). Widths read across the true axis (L4 +0.3 to +0.4) "
                 "or the spine axis (L5 +0.3 to +0.4) were tried in session 11 and not kept (CHANGELOG); "
                 "benchmarks/study_isthmus_phantom.py prints the figures")


@pytest.mark.parametrize("level", [
    *_FINE_LEVELS[:-2],
    *(pytest.param(level, marks=pytest.mark.xfail(strict=True, reason=_WIDE_ROLLED)) for level in ("L4", "L5")),
])
def test_fine_phantom_isthmus_width(fine_paths, fine_phantom, level):
    """1 x 0.6 x 0.6 mm: the isthmus widths as planned (plan.json, 0.01 mm) within 0.5 mm of the truth (issue 5 "done
    when"; T12 reads 8.5 against 8.0, at the limit; the 2 mm phantom's T12-L2 are tested with the path angles)."""
    for side in ("left", "right"):
        fit = fine_paths[level, side].pedicle
        truth = fine_phantom.truth["levels"][level]["pedicles"][side]
        assert abs(fit.width_mm - truth["width_mm"]) <= 0.5, (side, fit.width_mm, truth["width_mm"])


@pytest.mark.parametrize("level", _FINE_LEVELS)
def test_fine_phantom_isthmus_height(fine_paths, fine_phantom, level):
    """1 x 0.6 x 0.6 mm: every isthmus height within 1 mm of the truth, with fitted axes up to 18 degrees off the
    true ones (L4): the height is read across the true axis (:func:`pvp_plan.needle.isthmus._narrowest_height_mm`)."""
    for side in ("left", "right"):
        fit = fine_paths[level, side].pedicle
        truth = fine_phantom.truth["levels"][level]["pedicles"][side]
        assert abs(fit.height_mm - truth["height_mm"]) <= 1.0, (side, fit.height_mm, truth["height_mm"])


def test_isthmus_height_read_across_the_true_axis_not_the_fitted_one(fine_phantom):
    """Fine phantom L1 and L2 (1 mm slices): the isthmus height measured with the axis turned 20 degrees off the
    true one in the sagittal plane (fitted axes lie 14-21 degrees off on the phantom at 1 mm voxels) reads within
    0.3 mm of the height measured with the true axis; the section perpendicular to the turned axis alone reads
    the turned chord, over 5 % longer (1 / cos 20 deg = 1.064)."""
    from pvp_plan.needle.frame import body_frame, level_bone
    from pvp_plan.needle.isthmus import _cross_hair, _measure_isthmus, _plane_axes

    ph = fine_phantom
    seg = Segmentation.from_label_map(ph.body_labels, ph.ct, method="truth")
    for level in ("L1", "L2"):
        frame = body_frame(ph.ct, seg.mask(level), spine_axis_lps=seg.body(level).axis_lps)
        lb = level_bone(ph.ct, seg.mask(level), frame)
        truth = ph.truth["levels"][level]["pedicles"]["left"]
        axis, centre = np.array(truth["axis_lps"]), np.array(truth["isthmus_center_lps_mm"])
        pts = centre + np.arange(-4.0, 4.1, 1.0)[:, None] * axis
        true_fit = _measure_isthmus(ph.ct, lb, pts, axis, "left", frame)[0]
        a = np.radians(20.0)
        turned = np.cos(a) * axis + np.sin(a) * _plane_axes(axis, 1.0)[1]
        fit = _measure_isthmus(ph.ct, lb, pts, turned, "left", frame)[0]
        assert abs(fit.height_mm - true_fit.height_mm) <= 0.3, (level, fit.height_mm, true_fit.height_mm)
        section = _cross_hair(ph.ct, lb, fit.center_lps_mm, *_plane_axes(turned, 1.0))
        assert section[1] >= 1.05 * true_fit.height_mm, (level, section[1], true_fit.height_mm)


def test_real_ct_translaminar_path_flagged_not_transpedicular():
    """Abdomen L4 right (real CT): a path entering bone on the lamina behind the canal, or running sagittally (0 deg,
    L4 pedicles converge about 18 deg), is flagged ``not_transpedicular`` and never called safe; the planned path
    itself (entry 20 mm lateral of the midline, canal wall at 12 mm; 25.6 deg) passes the check."""
    path, planned = _l4_right_check()
    assert "not_transpedicular" not in planned
    assert "not_transpedicular" in _l4_right_check(entry_lps=_on_lamina)[1]
    assert "not_transpedicular" in _l4_right_check(ml_deg=0.0)[1]


def test_not_transpedicular_cites_the_angle_sources_only_when_the_angle_is_a_reason():
    """The lamina entry fails on place alone: its notice cites the safety check, not the pedicle-angle series; the
    sagittal path fails on its angle and cites them."""
    on_lamina = _l4_right_check(entry_lps=_on_lamina)[1]["not_transpedicular"]
    sagittal = _l4_right_check(ml_deg=0.0)[1]["not_transpedicular"]
    assert "angle" not in on_lamina.message and "Zindrick" not in on_lamina.source
    assert "angle" in sagittal.message and "Zindrick" in sagittal.source


def test_real_ct_cortex_slivers_are_not_safe():
    """Abdomen L3 left, first reading (isthmus 19.5 x 4.75 mm at 3 mm voxels: read on one cortical plate, the
    pedicle's ring open under its partial-volume inferior wall) is flagged ``not_transpedicular`` on its section
    and not safe; the planner then reads the pedicle again with partial-volume walls (a bone bridge with two
    walls) and says so in a caution."""
    from pvp_plan.needle.frame import body_frame, level_bone
    from pvp_plan.needle.pedicle import find_pedicle
    from pvp_plan.needle.planner import _BodyOutline, _canal_distance, _evaluate, _target_point

    ct, seg, _ = _abdomen()
    lv = Level("L3")
    frame = body_frame(ct, seg.mask(lv), spine_axis_lps=seg.body(lv).axis_lps)
    lb = level_bone(ct, seg.mask(lv), frame)
    sliver = find_pedicle(ct, lb, frame, "left")
    assert sliver.width_mm / sliver.height_mm > 2.0
    for offset in (0.0, 5.0, 10.0):
        ev = _evaluate(ct, lb, _BodyOutline(ct), _canal_distance(ct, lb), sliver,
                       _target_point(ct, frame, "anterior_third", 1.0, offset), 1.525, lv, frame)
        tp = [n for n in ev["notices"] if n.code == "not_transpedicular"]
        assert not ev["ok"] and tp and "width / height" in tp[0].message
    p = {q.side: q for q in plan_level_needle_paths(ct, seg, lv)}["left"]
    assert "pedicle_read_with_partial_volume_walls" in {n.code for n in p.notices}
    assert p.pedicle.width_mm / p.pedicle.height_mm <= 2.0


def test_partial_volume_wall_closes_a_coronal_ring():
    """A pedicle ring (3 mm voxels, coronal plane) whose inferior wall reads 130 HU (a 1 mm cortex under partial
    volume) around a fatty core (20 HU) is closed by the partial-volume walls and its core filled; without
    them, or when the gap reads like muscle (40 HU), the ring stays open."""
    from pvp_plan.needle.frame import _above_cancellous_edge, _coronal_cores

    sp = (3.0, 3.0, 3.0)
    hu = np.full((12, 3, 12), 40.0, np.float32)
    hu[3:8, :, 3:8] = 600.0
    hu[4:7, :, 4:7] = 20.0  # fatty core
    hu[3, :, 5:7] = 130.0  # the inferior wall under partial volume, under the bone threshold
    bone = hu > 250.0
    no_canal = np.zeros((1, 1, 1), bool)
    assert not _coronal_cores(bone, no_canal, y_range=(0, 2), spacing_mm=sp).any()
    walls = bone | _above_cancellous_edge(hu, 95.0, spacing_mm=sp)
    cores = _coronal_cores(walls, no_canal, y_range=(0, 2), spacing_mm=sp)
    assert cores[4:7, :, 4:7].all() and cores.sum() == 9 * 3
    hu[3, :, 5:7] = 40.0  # the gap reads like muscle: open
    walls = bone | _above_cancellous_edge(hu, 95.0, spacing_mm=sp)
    assert not _coronal_cores(walls, no_canal, y_range=(0, 2), spacing_mm=sp).any()


def test_canal_extent_ignores_implausible_slices():
    """A slice whose canal leaks out behind the arch (40 mm deep) or is a sliver (2 mm) takes the other slices'
    median depth and half-width (``CANAL_DEPTH_MM``, ``CANAL_HALF_WIDTH_MM``)."""
    from pvp_plan.needle.canal import canal_extent_mm
    from pvp_plan.needle.frame import LevelBone

    canal = np.zeros((3, 60, 60), bool)
    canal[0, 10:26, 20:41] = True  # 16 mm deep, 10 mm half-width at 1 mm voxels (midline x = 30)
    canal[1, 10:50, 20:41] = True  # leaked: 40 mm deep
    canal[2, 10:12, 29:32] = True  # sliver
    lb = LevelBone(origin_index=np.zeros(3), soft_tissue_hu=0.0, cortex_hu=500.0, bone_hu=200.0, adaptive=True,
                   filled=np.zeros_like(canal), canal=canal, ring_closed=np.ones(3, bool), body=np.zeros_like(canal),
                   hu_spline=np.zeros(canal.shape, np.float32))
    wall, back = canal_extent_mm(lb, 30.0, 10.0, 1.0, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(wall, 10.0)
    np.testing.assert_allclose(back, 15.0)


def test_canal_beyond_bone_on_its_row_is_dropped():
    """Canal lateral of a bone voxel on its row (a neighbour slice's recess copied into an open slice) is dropped;
    canal between the midline and the first bone stays."""
    from pvp_plan.needle.canal import _canal_within_bone_rows

    canal = np.zeros((1, 5, 21), bool)
    canal[0, 1:4, 4:17] = True
    solid = np.zeros_like(canal)
    solid[0, 1, 6] = True  # bone 4 voxels right of the midline (x = 10) on row 1
    out = _canal_within_bone_rows(canal, solid, 10)
    assert not out[0, 1, :6].any() and out[0, 1, 7:17].all()
    assert (out[0, 2:4] == canal[0, 2:4]).all()


def test_inferior_wall_read_to_soft_tissue(phantom):
    """Phantom L2 left: a path along the pedicle axis clears the inferior wall by about half the isthmus height; the
    same path moved caudally by half the height runs on the wall (under the needle radius). A gap in the bone mask
    that reads as cancellous bone is crossed; one that reads as soft tissue is the wall's surface. Soft tissue with
    the arch behind it is the foramen; soft tissue open behind (behind the arch) is not."""
    from pvp_plan.needle.frame import body_frame, level_bone
    from pvp_plan.needle.pedicle import find_pedicle
    from pvp_plan.needle.planner import _beside_is_foramen, _exit_into_soft_tissue, _wall_clearance_mm

    ph, seg = phantom
    frame = body_frame(ph.ct, seg.mask("L2"))
    lb = level_bone(ph.ct, seg.mask("L2"), frame)
    fit = find_pedicle(ph.ct, lb, frame, "left")
    t = np.arange(-8.0, 8.0, 0.5)[:, None]
    on_axis = fit.center_lps_mm + t * fit.axis_lps
    down = (fit.axis_lps, -fit.cranial_lps)
    assert _wall_clearance_mm(ph.ct, lb, on_axis, fit.center_lps_mm, *down) >= 0.4 * fit.height_mm
    low = on_axis - 0.5 * fit.height_mm * fit.cranial_lps
    assert _wall_clearance_mm(ph.ct, lb, low, fit.center_lps_mm, *down) < 1.0
    up = (fit.axis_lps, fit.cranial_lps)  # the superior wall alike: clear on the axis, met by the path moved up
    assert _wall_clearance_mm(ph.ct, lb, on_axis, fit.center_lps_mm, *up) >= 0.4 * fit.height_mm
    assert _wall_clearance_mm(ph.ct, lb, on_axis + 0.5 * fit.height_mm * fit.cranial_lps, fit.center_lps_mm, *up) < 1.0
    under = fit.center_lps_mm - 0.6 * fit.height_mm * fit.cranial_lps
    assert _beside_is_foramen(ph.ct, lb, under, fit.axis_lps)
    assert not _beside_is_foramen(ph.ct, lb, under - 45.0 * fit.axis_lps, fit.axis_lps)
    inside = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0], bool)
    assert _exit_into_soft_tissue(inside, np.array([0, 0, 0, 0, 0, 0, 1, 1, 1], bool)) == 6
    assert _exit_into_soft_tissue(inside, np.array([0, 0, 0, 1, 0, 0, 1, 1, 1], bool)) == 2


def test_inferior_wall_read_across_the_needle_not_the_fitted_axis(phantom, monkeypatch):
    """The clearance under the needle is read perpendicular to the path. A pedicle axis fitted 25 degrees off in
    the sagittal plane (real CT: fitted axes 20-40 degrees off the path) leaves the path and its inferior-wall
    distance unchanged; read perpendicular to the fitted axis, the distance moved with the fit."""
    import dataclasses

    from pvp_plan.needle import planner

    ph, seg = phantom
    found = planner.search_pedicle

    def tilted(*args, **kwargs):
        fit, why = found(*args, **kwargs)
        if fit is None:
            return fit, why
        a, k = np.radians(25.0), fit.lateral_lps  # rotate about the lateral direction (Rodrigues)
        rot = lambda v: v * np.cos(a) + np.cross(k, v) * np.sin(a) + k * (k @ v) * (1 - np.cos(a))  # noqa: E731
        return dataclasses.replace(fit, axis_lps=rot(fit.axis_lps), cranial_lps=rot(fit.cranial_lps)), why

    before = {p.side: p for p in plan_level_needle_paths(ph.ct, seg, "L2")}
    monkeypatch.setattr(planner, "search_pedicle", tilted)
    after = {p.side: p for p in plan_level_needle_paths(ph.ct, seg, "L2")}
    for side in ("left", "right"):
        assert before[side].pedicle.axis_lps != after[side].pedicle.axis_lps
        assert after[side].target_lps_mm == before[side].target_lps_mm
        assert before[side].min_distance_to_inferior_wall_mm is not None
        assert after[side].min_distance_to_inferior_wall_mm == before[side].min_distance_to_inferior_wall_mm


def test_soft_tissue_run_along_the_path(phantom):
    """Phantom L2 left: a path from the isthmus centre into the body crosses no soft tissue; the same path moved
    15 mm laterally (outside the pedicle, through the muscle beside the body) crosses more than
    ``PATH_SOFT_TISSUE_GAP_MM``."""
    from pvp_plan.needle.frame import body_frame, level_bone
    from pvp_plan.needle.pedicle import find_pedicle
    from pvp_plan.needle.planner import _soft_tissue_run_mm
    from pvp_plan.rules.needle import PATH_SOFT_TISSUE_GAP_MM

    ph, seg = phantom
    frame = body_frame(ph.ct, seg.mask("L2"))
    lb = level_bone(ph.ct, seg.mask("L2"), frame)
    fit = find_pedicle(ph.ct, lb, frame, "left")
    path = fit.center_lps_mm + np.arange(0.0, 20.0, 0.5)[:, None] * fit.axis_lps
    assert _soft_tissue_run_mm(ph.ct, lb, path) == 0.0
    assert _soft_tissue_run_mm(ph.ct, lb, path + 15.0 * fit.lateral_lps) >= PATH_SOFT_TISSUE_GAP_MM.value


def test_pedicle_band_holds_true_isthmus_centres(phantom):
    """The phantom's true isthmus centres lie in the band of heights where a pedicle's centre may lie on its body
    (cranial half, at least half the smallest pedicle height below the superior endplate); the body's centroid
    less 3 mm and its top do not."""
    from pvp_plan.needle.frame import _height_mm, body_frame, level_bone
    from pvp_plan.needle.isthmus import _pedicle_band_mm

    ph, seg = phantom
    for level in ("T12", "L1", "L2"):
        frame = body_frame(ph.ct, seg.mask(level), spine_axis_lps=seg.body(level).axis_lps)
        lo, hi = _pedicle_band_mm(ph.ct, level_bone(ph.ct, seg.mask(level), frame), frame)
        for side in ("left", "right"):
            h = _height_mm(np.array(ph.truth["levels"][level]["pedicles"][side]["isthmus_center_lps_mm"]), frame)
            assert lo <= h <= hi, (level, side, lo, h, hi)
        assert _height_mm(frame.centroid_lps_mm - 3.0 * frame.spine_axis_lps, frame) < lo
        assert hi < 0.5 * float(np.ptp(_height_mm(ph.ct.index_to_lps(np.argwhere(seg.mask(level))), frame)))


def test_cancellous_core_between_walls_not_soft_tissue():
    """Between two cortical plates 6 mm apart (3 mm voxels, along z), a core reading 120 HU is filled as cancellous
    bone; a gap reading 40 HU (soft tissue: a joint, the foramen) and a 12 mm gap stay open."""
    from pvp_plan.needle.frame import _above_cancellous_edge, _cancellous_core

    hu = np.full((12, 4, 9), 40.0, np.float32)
    bone = np.zeros(hu.shape, bool)
    bone[2, :, :] = bone[5, :, :] = bone[10, :, :] = True  # plates at z 2, 5 (6 mm gap) and 10 (12 mm gap)
    hu[bone] = 600.0
    hu[3:5, :, :3] = 120.0  # cancellous core between the first two plates, x < 3 only
    sp = (3.0, 3.0, 3.0)
    core = _cancellous_core(bone, _above_cancellous_edge(hu, 100.0, spacing_mm=sp), spacing_mm=sp)
    assert core[3:5, :, :2].all()
    assert not core[3:5, :, 5:].any()  # soft tissue between the plates
    assert not core[6:10].any()  # too far apart


def test_coronal_cores_filled_by_enclosure_not_hu():
    """A pedicle core enclosed by its four walls in a coronal plane is filled whatever it reads (fatty marrow reads
    like soft tissue at 3 mm); an enclosed region touching the canal (or where no pedicle lies), or larger than
    ``_MAX_CORE_MM2``, is not."""
    from pvp_plan.needle.frame import _MAX_CORE_MM2, _coronal_cores

    solid = np.zeros((20, 3, 40), bool)
    solid[2:7, :, 2:8] = True  # a 15 x 18 mm pedicle ring at 3 mm voxels, core 3 x 4 voxels (108 mm^2)
    solid[3:6, :, 3:7] = False
    solid[2:19, :, 12:30] = True  # a 51 x 54 mm ring: its hole is larger than the largest pedicle core
    solid[3:18, :, 13:29] = False
    canal = np.zeros_like(solid)
    canal[4, 2, 4] = True  # the last plane's core touches the canal
    cores = _coronal_cores(solid, canal, y_range=(0, 2), spacing_mm=(3.0, 3.0, 3.0))
    assert cores[3:6, :2, 3:7].all() and not cores[:, 2].any()
    assert 15 * 16 * 9.0 > _MAX_CORE_MM2 and not cores[:, :, 12:].any()
    at_midline = np.zeros((1, 1, 40), bool)
    at_midline[..., 6] = True  # a column where no pedicle lies (the midline) crosses the core: not filled
    assert not _coronal_cores(solid, at_midline, y_range=(0, 2), spacing_mm=(3.0, 3.0, 3.0)).any()


def test_pedicle_columns_lateral_to_the_canal():
    """Pedicle cores are sought from 6 mm (narrowest canal half-width) to 35 mm (widest canal half-width plus the
    widest lumbar pedicle) either side of the midline."""
    from pvp_plan.needle.frame import _pedicle_columns

    cols = _pedicle_columns((1, 1, 41), 20.0, (3.0, 3.0, 1.0))[0, 0]
    lat = np.abs(np.arange(41) - 20)
    assert cols[(lat >= 6)].all() and not cols[lat < 6].any()
    assert not _pedicle_columns((1, 1, 81), 0.0, (1.0, 1.0, 1.0))[0, 0, 36:].any()


def test_no_pedicle_says_why(phantom):
    """Without bone behind the body the search finds no medial path and says so; the planner's notice quotes it."""
    import dataclasses

    from pvp_plan.needle.frame import body_frame, level_bone
    from pvp_plan.needle.pedicle import search_pedicle

    ph, seg = phantom
    frame = body_frame(ph.ct, seg.mask("L2"))
    lb = level_bone(ph.ct, seg.mask("L2"), frame)
    fit, why = search_pedicle(ph.ct, dataclasses.replace(lb, filled=np.zeros_like(lb.filled)), frame, "left")
    assert fit is None and "no bone bridge" in why
    assert search_pedicle(ph.ct, lb, frame, "left")[1] is None


def test_no_measurable_section_says_why(phantom):
    """When bone runs on past every section's reading lines (the pedicle merged with the bone around it), no section
    is measured and the reason says so in words, with the number of sections and the reading half-length."""
    import dataclasses

    from pvp_plan.needle.frame import body_frame, level_bone
    from pvp_plan.needle.isthmus import _CROP_MM
    from pvp_plan.needle.pedicle import search_pedicle

    ph, seg = phantom
    frame = body_frame(ph.ct, seg.mask("L2"))
    lb = level_bone(ph.ct, seg.mask("L2"), frame)
    fit, why = search_pedicle(ph.ct, dataclasses.replace(lb, filled=~lb.canal & ~lb.body), frame, "left")
    assert fit is None
    n = int(why.split("none of the ")[1].split(" sections")[0])
    assert n >= 2 and f"sections along the pedicle could be measured, as in each the bone through the section's " \
        f"centre reaches {_CROP_MM:.0f} mm from it" in why


@pytest.mark.parametrize(("n", "start"), [(1, "the one section along the pedicle could not be measured, as in it "),
                                          (7, "none of the 7 sections along the pedicle could be measured, as in each ")])
def test_unreadable_sections_reason_agrees_in_number(n, start):
    from pvp_plan.needle.isthmus import _unreadable_sections_reason

    why = _unreadable_sections_reason(n, 3.0)
    assert why.startswith(start) and "3.0 mm voxels" in why


def test_layer_data_and_projection(phantom):
    ph, seg = phantom
    paths = plan_level_needle_paths(ph.ct, seg, "L2")
    data = needle_layer_data(paths)
    assert len(data["lines"]) == 2 and data["lines"][0].shape == (2, 3)
    np.testing.assert_allclose(data["lines"][0][1], paths[0].target_lps_mm[::-1])
    assert data["colors"].shape == (2, 4) and data["points"].shape[1] == 3
    ax = project_path_on_axial(paths[0], ph.ct)
    np.testing.assert_allclose(ax[1], ph.ct.lps_to_index(paths[0].target_lps_mm)[[1, 2]])


def test_bad_options_raise(phantom):
    ph, seg = phantom
    with pytest.raises(PlanError):
        plan_level_needle_paths(ph.ct, seg, "L1", gauge="8G")
    with pytest.raises(PlanError):
        plan_level_needle_paths(ph.ct, seg, "L1", target="posterior")
    with pytest.raises(PlanError):
        plan_level_needle_paths(ph.ct, seg, "C3")


_REAL_LEVELS = [("abdomen_3mm", lv) for lv in ("L1", "L2", "L3", "L4", "L5")] + [("thorax_1p5mm", "T12")]
_SOURCES = ("reference", "automatic")
# Levels where, planned on the automatic segmentation, a path called safe leaves the reference vertebra (measured
# 2026-11-21, session 9). Each of these paths' isthmus is outside its published range (a caution in the plan).
_AUTO_SAFE_BUT_OUTSIDE = {
    ("abdomen_3mm", "L1"): "right: 87 % of bone entry -> target inside the reference; 4 mm higher than on the "
                           "reference bodies, along the pedicle's superior wall (isthmus 9.1 x 5.8 mm, 130-180 HU "
                           "outside the reference mask between the arch and the body)",
    ("abdomen_3mm", "L5"): "right: 93 % inside; isthmus read 18.1 x 19.5 mm (not a pedicle's section: the pars and "
                           "facet with it), the path crosses 100 HU between two bone parts (no path at all on the "
                           "reference bodies)",
    ("thorax_1p5mm", "T12"): "left: 92 % inside; the bone entry 3 mm lateral of the reference vertebra (170 HU, "
                             "mediolateral angle 41 deg against 27 on the reference bodies; the spine axis from the "
                             "neighbouring bodies is tilted 16 deg in the kyphosis, the reference T12 alone is not)",
}


@pytest.mark.parametrize("source", _SOURCES)
@pytest.mark.parametrize(("case", "level"), _REAL_LEVELS)
def test_real_ct_safety_flags_agree_with_reference(case, level, source, request):
    """A path called safe stays inside the reference vertebra and clear of its canal; a path that crosses the
    reference canal is flagged ``enters_canal``. (The planner never sees the reference: CT and bodies only.)
    Planned on the reference bodies and on pvp-plan's own segmentation."""
    if source == "automatic" and (case, level) in _AUTO_SAFE_BUT_OUTSIDE:
        request.applymarker(pytest.mark.xfail(strict=True, reason=_AUTO_SAFE_BUT_OUTSIDE[case, level]))
    ct, vmask, paths = _planned(source, case, level)
    canal_d = _reference_canal_distance_mm(vmask, ct.spacing_mm)
    for p in paths:
        if p.target_lps_mm is None:
            assert not p.safe and {n.code for n in p.notices} == {"pedicle_not_found"}
            assert "no pedicle found" in p.notices[0].message and "; no path planned" in p.notices[0].message
            continue
        inside, canal_mm = _path_against_reference(ct, p, vmask, canal_d)
        if p.safe:
            assert inside >= 0.95 and canal_mm > 0.0, (p.side, inside, canal_mm)
        if canal_mm == 0.0:
            assert "enters_canal" in {n.code for n in p.notices}, p.side


@pytest.mark.parametrize("source", _SOURCES)
@pytest.mark.parametrize(("case", "level"), _REAL_LEVELS)
def test_real_ct_verified_safe_paths_stay_in_the_reference(case, level, source):
    """A path whose verdict is "safe" (every check passed, pedicle reading within its published ranges) stays
    inside the reference vertebra and clear of its canal, on the reference bodies and on pvp-plan's own: the
    paths called safe that leave it (``_AUTO_SAFE_BUT_OUTSIDE``) are all "safe_unverified"."""
    ct, vmask, paths = _planned(source, case, level)
    canal_d = _reference_canal_distance_mm(vmask, ct.spacing_mm)
    for p in paths:
        if p.verdict == "safe":
            inside, canal_mm = _path_against_reference(ct, p, vmask, canal_d)
            assert inside >= 0.95 and canal_mm > 0.0, (p.side, inside, canal_mm)
        elif (case, level) in _AUTO_SAFE_BUT_OUTSIDE and source == "automatic" and p.safe:
            assert p.verdict == "safe_unverified", p.side


def test_real_ct_path_through_the_pedicle_roof_is_unverified():
    """Abdomen L4 on TotalSegmentator's bodies grown by one slice at each end (the size of an end-slice decision at
    3 mm): the right path passes every safety check with its isthmus figures in range, yet runs along the pedicle's
    roof and leaves the reference vertebra (90 % of its bone course inside). The needle's wall crosses the superior
    cortex: the path is flagged ``breaches_superior_wall`` and its verdict is ``safe_unverified``."""
    from tests.needle.real_cases import ends_moved

    ct, seg, vmask = _reference("abdomen_3mm", "L4")
    grown = Segmentation.from_label_map(ends_moved(seg.labels, 1), ct, method="reference grown by a slice")
    right = plan_level_needle_paths(ct, grown, "L4")[1]
    inside, _ = _path_against_reference(ct, right, vmask, _reference_canal_distance_mm(vmask, ct.spacing_mm))
    assert right.safe and inside < 0.95
    assert right.min_distance_to_superior_wall_mm < 3.05 / 2
    assert "breaches_superior_wall" in {n.code for n in right.notices} and right.verdict == "safe_unverified"


# Sides where the issue 5 target is not met yet, with what the planner does there (measured 2026-11-21, wip/needle-s5;
# re-measured on wip/needle-s7).
_NOT_MET = {
    ("abdomen_3mm", "L2", "right"): "no pedicle found: the medial path runs along the pedicle's superior wall (16 mm "
                                    "lateral, 4-10 mm behind the body, 9-11 mm above its centroid). The pedicle is a "
                                    "tall ring at 3 mm: superior wall (560 HU), fatty core (130 HU), inferior wall "
                                    "(1000 HU), foramen (-4 HU) below, one bounded run of 18 mm (+14.5 to -3.5 mm), "
                                    "longer than the 12 mm line reaches from its top. With a 16 mm line the sections "
                                    "centre 4-7 mm below the path (none qualifies) and the axis refit turns past 25 deg; "
                                    "kept on the path's direction with plate sections skipped, the isthmus reads 5.4 x "
                                    "17.2 mm (safe, 100 % in the reference, 9 mm from its canal): its lateral wall at "
                                    "mid-height reads 70-240 HU (bone > 249 HU), and the 16 mm line moves L1 left "
                                    "(12.0 x 17.5 -> 10.9 x 10.4 mm) and L5 left (100 -> 97 % in the reference). The "
                                    "partial-volume second reading finds the same superior-wall path and measures none "
                                    "of its 11 sections; read as a wall path (18 mm line, centre within 9 mm; branch "
                                    "wip/needle-s7c, not merged) it gives a safe path reading 4.7 x 18.6 mm along the "
                                    "medial wall only, with a 0 deg axis",
    ("abdomen_3mm", "L5", "right"): "no pedicle found: no medial path, i.e. no bone bridge from the body to behind "
                                    "the canal above the body's centroid (L5 tilted 14 deg back and 5 deg sideways: "
                                    "the right pedicle and pars lie -4 to +4 mm about it). Sought down to 3 mm below "
                                    "the centroid, the path reads 9.2 x 9.6 mm and leaves bone (90 % in the reference, "
                                    "3 mm from its canal), and L3 right and L5 left fail",
}
# The same, planned on pvp-plan's automatic segmentation (what a user plans on; measured 2026-11-21, session 9:
# 5 of 12 sides met, against 10 on the reference bodies; 2026-11-22, session 10: still 5, L2 left met, L1 left not).
# The body outline moves the planner's landmarks (the posterior wall follows the concave wall; the spine axis comes
# from the neighbouring bodies) and so its search.
_AUTO_NOT_MET = {
    ("abdomen_3mm", "L1", "left"): "called unsafe (breaches_inferior_wall, 0.2 mm): the pedicle read with "
                                   "partial-volume walls (16.4 x 16.8 mm); under the path's first 2 mm in bone the "
                                   "rays cross its fatty core, 45-60 HU against the level's soft-tissue edge of 59 HU, "
                                   "all inside the reference vertebra (session 10: read across the needle, not the "
                                   "fitted axis; before, safe with the tip 3 mm off the midline)",
    ("abdomen_3mm", "L1", "right"): _AUTO_SAFE_BUT_OUTSIDE["abdomen_3mm", "L1"],
    ("abdomen_3mm", "L3", "right"): "no pedicle found (8.8 x 13.9 mm and safe on the reference bodies)",
    ("abdomen_3mm", "L5", "left"): "called unsafe (enters_canal, leaves_bone): isthmus 10.0 x 8.5 mm, the path 0 mm "
                                   "from the reference canal (8.8 x 19.6 mm and safe on the reference bodies)",
    ("abdomen_3mm", "L5", "right"): _AUTO_SAFE_BUT_OUTSIDE["abdomen_3mm", "L5"],
    ("thorax_1p5mm", "T12", "left"): _AUTO_SAFE_BUT_OUTSIDE["thorax_1p5mm", "T12"],
    ("thorax_1p5mm", "T12", "right"): "called unsafe (enters_canal, leaves_bone): 5.0 x 8.8 mm and safe on the "
                                      "reference T12",
}
_REAL_SIDES = [pytest.param(source, case, level, side, marks=pytest.mark.xfail(strict=True, reason=not_met[case, level, side]))
               if (case, level, side) in not_met else (source, case, level, side)
               for source, not_met in (("reference", _NOT_MET), ("automatic", _AUTO_NOT_MET))
               for case, level in _REAL_LEVELS for side in ("left", "right")]


@pytest.mark.parametrize(("source", "case", "level", "side"), _REAL_SIDES)
def test_real_ct_paths_in_bone_out_of_canal_widths_in_range(source, case, level, side):
    """Issue 5 "done when" on real CT, per side: a path is planned, stays inside the reference vertebra from the
    bone entry to the target and outside its canal, is called safe, and the isthmus width is in the published
    range (thoracic 4-8 mm, lumbar 7-18 mm). Planned on the reference bodies and on pvp-plan's own segmentation."""
    from pvp_plan.rules.needle import PEDICLE_WIDTH_THORACIC_MM

    ct, vmask, paths = _planned(source, case, level)
    canal_d = _reference_canal_distance_mm(vmask, ct.spacing_mm)
    band = PEDICLE_WIDTH_THORACIC_MM if level.startswith("T") else PEDICLE_WIDTH_LUMBAR_MM
    p = {q.side: q for q in paths}[side]
    assert p.target_lps_mm is not None, [n.code for n in p.notices]
    inside, canal_mm = _path_against_reference(ct, p, vmask, canal_d)
    assert inside >= 0.95 and canal_mm > 0.0, (inside, canal_mm)
    assert p.safe, [n.code for n in p.notices]
    assert band.low <= p.pedicle.width_mm <= band.high, p.pedicle.width_mm


# The abdomen's L1-L5 on finer grids: the same image information, resampled (2026-11-22, session 16,
# benchmarks/study_needle_robustness.py: on the reference bodies 5 of 10 sides met at 2 mm, 2 at 1.5 mm, 5 at
# 1 x 0.8 x 0.8 mm, against 8 at 3 mm). The planner's parameters are in mm and HU, yet its reading of the pedicle is
# not: sections run into bone merged beyond the 12 mm lines, or none is clear of the body (L2, L3 at 2 mm).
_FINER_GRIDS = ((2.0, 2.0, 2.0), (1.5, 1.5, 1.5))
_FINER_SAFE_BUT_OUTSIDE = {
    (1.5, 1.5, 1.5): "L4 right: verdict safe, 90 % of its bone course inside the reference vertebra: its first 4 mm "
                     "after the bone entry lie in L3 by TotalSegmentator's labels (the L3 inferior articular process "
                     "over the L3/L4 facet joint), up to 3.0 mm outside L4; on the 3 mm grid the same path enters "
                     "through L3 too, for 2 of its 60 samples (95 % inside: the borderline of the criterion)",
}
_FINER_FEWER_SIDES = {
    (2.0, 2.0, 2.0): "L2 left, L3 left and right, L5 left not met (met at 3 mm; L5 right met, not at 3 mm): no "
                     "section of the pedicle clear of the body and whole, or the path leaves bone",
    (1.5, 1.5, 1.5): "L1 left, L2 left, L3 left and right, L4 right, L5 left not met (met at 3 mm): sections merged "
                     "beyond the 12 mm lines, a path 0 mm from the canal, L4 right outside the reference",
}


def _abdomen_level_on_grid(spacing, level):
    """(CT, reference bodies, whole-vertebra reference mask | body, reference canal distance) of one abdomen level on
    a grid of ``spacing`` (z y x mm; the native 3 mm grid included)."""
    from pvp_plan.levels import TOTALSEGMENTATOR_TOTAL_LABELS, Level
    from tests.needle.real_cases import abdomen_on_grid

    ct, ref, vert = abdomen_on_grid(tuple(spacing))
    vmask = (vert == TOTALSEGMENTATOR_TOTAL_LABELS[Level(level)]) | ref.mask(level)
    closing = None if tuple(spacing) == (3.0, 3.0, 3.0) else 3.0  # the 3 mm masks' ring, open by one 3 mm voxel
    return ct, ref, vmask, _reference_canal_distance_mm(vmask, ct.spacing_mm, closing)


def _target_met(ct, vmask, canal_d, p) -> bool:
    """Issue 5's per-side target (``test_real_ct_paths_in_bone_out_of_canal_widths_in_range``), as a verdict."""
    if p.target_lps_mm is None or not p.safe:
        return False
    inside, canal_mm = _path_against_reference(ct, p, vmask, canal_d)
    return inside >= 0.95 and canal_mm > 0.0 and PEDICLE_WIDTH_LUMBAR_MM.low <= p.pedicle.width_mm <= PEDICLE_WIDTH_LUMBAR_MM.high


@pytest.mark.parametrize("spacing", [pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=_FINER_SAFE_BUT_OUTSIDE[s]))
                                     if s in _FINER_SAFE_BUT_OUTSIDE else s for s in _FINER_GRIDS])
def test_real_ct_on_a_finer_grid_verified_safe_paths_stay_in_the_reference(spacing):
    """The abdomen resampled to a finer grid, planned on its reference bodies: a path whose verdict is "safe" stays
    inside the reference vertebra and clear of its canal, as on the 3 mm grid."""
    for level in ("L1", "L2", "L3", "L4", "L5"):
        ct, ref, vmask, canal_d = _abdomen_level_on_grid(spacing, level)
        for p in plan_level_needle_paths(ct, ref, level):
            if p.verdict == "safe":
                inside, canal_mm = _path_against_reference(ct, p, vmask, canal_d)
                assert inside >= 0.95 and canal_mm > 0.0, (level, p.side, inside, canal_mm)


@pytest.mark.parametrize("spacing", [pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=_FINER_FEWER_SIDES[s]))
                                     for s in _FINER_GRIDS])
def test_real_ct_on_a_finer_grid_meets_the_target_where_3mm_does(spacing):
    """The same CT on a finer grid holds no more and no less than at 3 mm: every side whose issue-5 target is met on
    the 3 mm grid (reference bodies) is met on the finer grid too."""
    lost = []
    for level in ("L1", "L2", "L3", "L4", "L5"):
        native = _abdomen_level_on_grid((3.0, 3.0, 3.0), level)
        finer = _abdomen_level_on_grid(spacing, level)
        met = [{p.side for p in plan_level_needle_paths(ct, ref, level) if _target_met(ct, vmask, canal_d, p)}
               for ct, ref, vmask, canal_d in (native, finer)]
        lost += [f"{level} {side}" for side in sorted(met[0] - met[1])]
    assert not lost, lost


@pytest.mark.parametrize(("level", "width", "height", "flagged"), [
    ("T12", 6.0, 12.0, set()), ("T6", 3.2, 11.0, {"width"}), ("L5", 8.8, 20.7, {"height"}),
    ("L2", 19.0, 9.0, {"width", "height"}), ("L4", 7.0, 18.0, set())])
def test_isthmus_outside_the_published_range_is_a_caution(level, width, height, flagged):
    """An isthmus figure outside its published range (thoracic 4-8 / lumbar 7-18 mm wide, 10-18 mm high) is a
    caution to check the images, citing the range's source; inside the range (edges included) nothing is said."""
    from pvp_plan.levels import Level
    from pvp_plan.messages import Severity
    from pvp_plan.needle.planner import morphometry_notices
    from pvp_plan.rules.needle import PEDICLE_HEIGHT_MM

    notices = morphometry_notices(Level(level), "left", width, height)
    assert {n.message.split("isthmus ")[1].split()[0] for n in notices} == flagged
    assert all(n.code == "isthmus_outside_published_range" and n.severity is Severity.CAUTION for n in notices)
    assert all(n.source == PEDICLE_HEIGHT_MM.source for n in notices if "height" in n.message)
