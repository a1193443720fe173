"""Pedicle truth is exact for the rendered geometry: isthmus width/height, centre, axis and angles."""

from __future__ import annotations

import numpy as np
import pytest

from pvp_plan.sample_data import generate_phantom
from pvp_plan.sample_data.anatomy import DEFAULT_LEVELS, LEVEL_SPECS, Curvature, build_layout
from pvp_plan.sample_data.vertebra import make_pedicle


def _extent(solid, centre, direction, half=12.0, step=0.005):
    """Length (mm) of the contiguous chord of ``solid`` through ``centre`` along ``direction``."""
    t = np.arange(-half, half + step / 2, step)
    p = centre[None, :] + t[:, None] * direction[None, :]
    inside = solid.inside(p[:, 0], p[:, 1], p[:, 2])[0]
    mid = len(t) // 2
    assert inside[mid] and not inside[mid::-1].all() and not inside[mid:].all()
    lo = mid - int(np.argmin(inside[mid::-1]))  # last outside sample below the centre
    hi = mid + int(np.argmin(inside[mid:]))  # first outside sample above it
    return (hi - lo - 1) * step


@pytest.mark.parametrize("name", ["T10", "T12", "L3", "L5"])
def test_isthmus_width_height_and_axis_are_those_rendered(name):
    layout = build_layout(DEFAULT_LEVELS, Curvature(), LEVEL_SPECS)
    v = next(x for x in layout.vertebrae if x.name == name)
    for side in ("left", "right"):
        ped = make_pedicle(v, side, v.spec.pedicle_width_mm)
        c, a = ped.isthmus_center_lps_mm, ped.axis_lps
        e_w = np.cross(a, v.frame.w)
        e_w /= np.linalg.norm(e_w)
        e_h = np.cross(e_w, a)
        assert _extent(ped.bar, c, e_w) == pytest.approx(ped.width_mm, abs=0.02)
        assert _extent(ped.bar, c, e_h) == pytest.approx(ped.height_mm, abs=0.02)
        # the isthmus is the narrowest section along the axis
        for dt in (-3.0, 3.0):
            assert _extent(ped.bar, c + dt * a, e_w) > ped.width_mm + 0.05
        truth = ped.truth()
        assert np.linalg.norm(truth["axis_lps"]) == pytest.approx(1.0, abs=1e-5)
        ax = np.array(truth["axis_lps"])
        assert ax[1] < 0  # points anteriorly
        assert np.sign(ax[0]) == (-1 if side == "left" else 1)  # converges medially
        ml = np.degrees(np.arctan2(abs(ax[0]), abs(ax[1])))
        assert truth["mediolateral_angle_deg"] == pytest.approx(ml, abs=1e-3)
        assert truth["mediolateral_angle_deg_local"] == v.spec.pedicle_medial_deg


def test_pedicle_angles_and_widths_are_realistic(phantom_truth):
    lv = phantom_truth["levels"]
    for n in ("T10", "T11", "T12"):
        assert 5 <= lv[n]["pedicles"]["left"]["width_mm"] <= 8
    for n in ("L1", "L2", "L3", "L4", "L5"):
        assert 8 <= lv[n]["pedicles"]["left"]["width_mm"] <= 15
    for n in phantom_truth["level_order"]:
        for ped in lv[n]["pedicles"].values():
            assert 8 <= ped["mediolateral_angle_deg"] <= 27
    assert lv["L5"]["pedicles"]["left"]["mediolateral_angle_deg_local"] > \
        lv["T12"]["pedicles"]["left"]["mediolateral_angle_deg_local"]


def test_pedicle_is_bone_in_the_ct(phantom, phantom_truth):
    ct = phantom.ct
    for n in ("T11", "L4"):
        for ped in phantom_truth["levels"][n]["pedicles"].values():
            centre = np.asarray(ped["isthmus_center_lps_mm"])
            idx = tuple(int(round(v)) for v in ct.lps_to_index(centre))
            assert ct.hu[idx] > 150  # cancellous core
            # the canal lies medially: CSF 1 mm medial of the medial wall
            medial = centre - np.sign(centre[0]) * np.array([ped["width_mm"] / 2 + 1.6, 0.0, 0.0])
            j = tuple(int(round(v)) for v in ct.lps_to_index(medial))
            assert phantom.masks["canal"][j] or ct.hu[j] < 300


def test_narrow_pedicle_option():
    ph = generate_phantom(spacing_mm=(3.0, 1.2, 1.2), fov_mm=(130.0, 150.0), levels=("L4", "L5"), pathology={},
                          narrow_pedicle_level="L4")
    lv = ph.truth["levels"]
    assert lv["L4"]["narrow_pedicle"] and not lv["L5"]["narrow_pedicle"]
    for ped in lv["L4"]["pedicles"].values():
        assert ped["width_mm"] == 4.0
    assert ph.truth["generator"]["narrow_pedicle_width_mm"] == 4.0


def test_isthmus_is_exact_in_the_whole_rendered_scene():
    """Nothing else rendered (laminae, processes, ribs, neighbours) touches the isthmus section."""
    from pvp_plan.sample_data.phantom import _options
    from pvp_plan.sample_data.scene import build_scene

    opts = _options(0, (2.0, 0.8, 0.8), ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"), None, None, "T11",
                    4.0, (200.0, 180.0), 0.5, 15.0, 1.0, 0.5)
    scene = build_scene(opts)
    bones = [s for m in scene.vertebrae for s in [m.body, *m.arch]]
    bones += [c for caps in scene.ribs.values() for c in caps] + [scene.sacrum_body, *scene.sacrum_parts]

    class Union:
        def inside(self, x, y, z):
            out = np.zeros(np.shape(x), bool)
            for s in bones:
                out |= s.inside(x, y, z)[0]
            return out, None

    union = Union()
    for m in scene.vertebrae:
        for ped in m.pedicles.values():
            c, a = ped.isthmus_center_lps_mm, ped.axis_lps
            e_w = np.cross(a, m.frame.w)
            e_w /= np.linalg.norm(e_w)
            e_h = np.cross(e_w, a)
            assert _extent(union, c, e_w, half=9.0, step=0.01) == pytest.approx(ped.width_mm, abs=0.03), m.name
            assert _extent(union, c, e_h, half=11.0, step=0.01) == pytest.approx(ped.height_mm, abs=0.03), m.name
    assert scene.vertebrae[1].pedicles["left"].width_mm == 4.0
