"""The ground-truth dictionary (JSON-serialisable) of a rendered phantom.

Body volumes and centroids are measured on a 0.2 mm grid in each body's own frame, so they do
not depend on the CT grid; the CT-grid figures (voxel counts, partial-volume sums) are given
alongside for consistency checks.
"""

from __future__ import annotations

import numpy as np

from pvp_plan import __version__
from pvp_plan.levels import Level
from pvp_plan.sample_data.shapes import VertebralBody

SCHEMA = "pvp-plan phantom truth v1"

#: Bumped whenever the rendered geometry or materials change (part of the DICOM UID seed).
GENERATOR_VERSION = "1"

#: Labels of the combined extra-mask file (``extra_masks.nii.gz``); vertebrae keep their VerSe label.
EXTRA_MASK_LABELS = {"canal": 40, "aorta": 41, "ribs": 42, "sacrum": 43}
_FINE_MM = 0.2


def measure_body(body: VertebralBody, lesions: list | None = None) -> dict:
    """Volume (mL), centroid (LPS mm) of a body and the volume of each lesion inside it, on a 0.2 mm grid."""
    lo, hi = body.local_bbox()
    h = _FINE_MM
    u = np.arange(lo[0] + h / 2, hi[0], h)
    v = np.arange(lo[1] + h / 2, hi[1], h)
    w = np.arange(lo[2] + h / 2, hi[2], h)
    f = body.frame
    count = 0
    s_u = s_v = s_w = 0.0
    lesion_counts = [0] * len(lesions or [])
    uu = u[None, None, :]
    vv = v[None, :, None]
    step = max(1, 2_000_000 // (len(u) * len(v)))
    for k in range(0, len(w), step):
        ww = w[k:k + step, None, None]
        inside, _ = body.inside_local(uu, vv, ww)
        inside = np.broadcast_to(inside, (len(ww), len(v), len(u)))
        n = int(inside.sum())
        if n == 0:
            continue
        count += n
        iz, iy, ix = np.nonzero(inside)
        s_u += float(u[ix].sum())
        s_v += float(v[iy].sum())
        s_w += float(ww[iz, 0, 0].sum())
        if lesions:
            x = f.center[0] + uu * f.u[0] + vv * f.v[0] + ww * f.w[0]
            y = f.center[1] + uu * f.u[1] + vv * f.v[1] + ww * f.w[1]
            z = f.center[2] + uu * f.u[2] + vv * f.v[2] + ww * f.w[2]
            for j, solid in enumerate(lesions):
                lesion_counts[j] += int((solid.inside(x, y, z)[0] & inside).sum())
    voxel_ml = h**3 / 1000.0
    centroid_local = np.array([s_u, s_v, s_w]) / max(count, 1)
    return {
        "volume_ml": count * voxel_ml,
        "centroid_lps_mm": f.to_lps(centroid_local),
        "lesion_volume_ml": [c * voxel_ml for c in lesion_counts],
    }


def _r(values, nd: int = 4) -> list[float]:
    return [round(float(v), nd) + 0.0 for v in values]


def build_truth(scene, opts, grid, body_labels, body_fracs, masks, materials) -> dict:
    voxel_ml = float(np.prod(grid.spacing_mm)) / 1000.0
    levels = {}
    for m in scene.vertebrae:
        label = Level(m.name).label
        lesion_solids = [s for s, _ in m.lesions]
        meas = measure_body(m.body, lesion_solids)
        sl, outer = body_fracs[m.name]
        path = scene.pathology_truth.get(m.name)
        if path is not None:
            path = dict(path)
            if path["type"] in ("lytic", "sclerotic") and lesion_solids:
                vol = meas["lesion_volume_ml"][0]
                path["lesion_volume_ml"] = round(vol, 4)
                path["lesion_fraction_of_body"] = round(vol / meas["volume_ml"], 4)
            if path["type"] == "wedge":
                hts = m.body.heights_mm()
                path["anterior_to_posterior_height_ratio"] = round(hts["anterior"] / hts["posterior"], 4)
        levels[m.name] = {
            "level": m.name,
            "label": label,
            "pathology": path,
            "volume_ml": round(meas["volume_ml"], 4),
            "volume_ml_partial_volume_on_grid": round(float(outer.sum()) * voxel_ml, 4),
            "voxel_count": int((body_labels == label).sum()),
            "volume_ml_from_labels": round(int((body_labels == label).sum()) * voxel_ml, 4),
            "heights_mm": {k: round(v, 4) for k, v in m.body.heights_mm().items()},
            "centroid_lps_mm": _r(meas["centroid_lps_mm"]),
            "center_lps_mm": _r(m.frame.center),
            "axis_lps": _r(m.frame.w, 6),
            "posterior_lps": _r(m.frame.v, 6),
            "tilt_deg": round(float(np.degrees(m.layout.beta_rad)), 4),
            "dimensions_mm": {"width": m.body.width_mm, "depth": m.body.depth_mm, "height": m.body.height_mm},
            "pedicles": {side: ped.truth() for side, ped in m.pedicles.items()},
            "narrow_pedicle": m.name == opts.narrow_pedicle_level,
            "cut_by_fov": bool(_touches_edge(body_labels == label)),
            "spinous_tip_lps_mm": _r(m.arch[-1].p1),
        }
    sacrum = None
    if scene.sacrum_body is not None:
        f = scene.sacrum_body.frame
        sacrum = {
            "present": True,
            "s1_superior_endplate_center_lps_mm": _r(f.to_lps([0.0, 0.0, scene.sacrum_body.height_mm / 2])),
            "s1_axis_lps": _r(f.w, 6),
            "sacral_slope_deg": round(float(np.degrees(np.arccos(abs(f.w[2])))), 4),
            "voxel_count": int(masks["sacrum"].sum()),
        }
    names = [m.name for m in scene.vertebrae]
    discs = []
    for i, d in enumerate(scene.discs):
        upper = names[i]
        lower = names[i + 1] if i + 1 < len(names) else "S1"
        discs.append({"between": [upper, lower], "center_lps_mm": _r(d.frame.center), "normal_lps": _r(d.frame.w, 6)})
    ao = scene.aorta
    curvature = scene.layout.curvature
    lumbar = [m for m in scene.vertebrae if m.name.startswith("L")]
    rendered_lordosis = None
    if lumbar and scene.sacrum_body is not None and lumbar[0].name == "L1":
        a1, a2 = lumbar[0].frame.w, scene.sacrum_body.frame.w
        rendered_lordosis = round(float(np.degrees(np.arccos(np.clip(a1 @ a2, -1, 1)))), 4)
    return {
        "schema": SCHEMA,
        "generator": {
            "name": "pvp_plan.sample_data.generate_phantom",
            "generator_version": GENERATOR_VERSION,
            "software": f"pvp-plan {__version__}",
            "seed": opts.seed,
            "spacing_mm": list(opts.spacing_mm),
            "fov_mm": list(opts.fov_mm),
            "psf_sigma_mm": opts.psf_sigma_mm,
            "noise_sd_hu": opts.noise_sd_hu,
            "supersample_mm": opts.supersample_mm,
            "curvature": {"lordosis_deg": curvature.lordosis_deg, "kyphosis_deg": curvature.kyphosis_deg,
                          "rendered_l1_s1_angle_deg": rendered_lordosis},
            "narrow_pedicle_level": opts.narrow_pedicle_level,
            "narrow_pedicle_width_mm": opts.narrow_pedicle_width_mm if opts.narrow_pedicle_level else None,
        },
        "frame": "LPS mm (x -> patient left, y -> posterior, z -> superior); arrays (z, y, x)",
        "grid": {"shape_zyx": list(grid.shape), "spacing_mm_zyx": list(grid.spacing_mm),
                 "origin_lps_mm": _r(grid.origin_lps_mm)},
        "label_convention": "VerSe (T10 = 17, T11 = 18, T12 = 19, L1 = 20 ... L5 = 24)",
        "level_order": names,
        "levels": levels,
        "pathology_levels": {k: v["pathology"]["type"] for k, v in levels.items() if v["pathology"]},
        "normal_levels": [k for k, v in levels.items() if not v["pathology"]],
        "ribs": {"levels": [n for n in names if n.startswith("T")],
                 "lowest_rib_level": next((n for n in reversed(names) if n.startswith("T")), None),
                 "voxel_count": int(masks["ribs"].sum())},
        "sacrum": sacrum or {"present": False},
        "discs": discs,
        "aorta": {
            "lumen_diameter_mm": 2 * ao["lumen_radius_mm"],
            "wall_mm": ao["wall_mm"],
            "gap_to_bodies_mm": opts.aorta_gap_mm,
            "side": "anterior-left of the bodies",
            "centerline_lps_mm": [_r(p) for p in ao["points"]],
            "bifurcation_lps_mm": _r(ao["bifurcation"]),
            "calcified_patch": {"segment_lps_mm": [_r(ao["patch"].p0), _r(ao["patch"].p1)],
                                "sector": "anterior-left wall", "hu_material": materials["calcification"]},
            "voxel_count": int(masks["aorta"].sum()),
        },
        "canal": {"voxel_count": int(masks["canal"].sum()),
                  "contents_hu_material": {"csf": materials["csf"], "cord": materials["cord"]}},
        "body_outline": {"posterior_skin_y_lps_mm": round(scene.torso["posterior_skin_y_mm"], 4),
                         "semi_axes_mm": [scene.torso["a"], scene.torso["b"]],
                         "center_y_lps_mm": round(scene.torso["center_y"], 4)},
        "materials_hu": dict(materials),
        "definitions": {
            "volume_ml": "body volume on a 0.2 mm grid in the body's own frame (independent of the CT grid)",
            "volume_ml_partial_volume_on_grid": "sum of sub-voxel occupancies on the CT grid x voxel volume",
            "body_labels": "CT voxels whose sub-voxel occupancy of the body exceeds 0.5 (majority)",
            "heights_mm": "along the body's own axis on the mid-sagittal line: anterior rim, centre, posterior "
                          "wall (endplates are concave by 0.8 mm at the centre)",
            "pedicle width_mm / height_mm": "isthmus (narrowest section, cortex included) perpendicular to the "
                                           "pedicle axis: width in the vertebra's axial plane, height across it",
            "pedicle axis_lps": "unit vector along the pedicle, pointing anteriorly (into the body)",
            "mediolateral_angle_deg": "angle between the axis projected on the image axial plane and the "
                                      "sagittal plane (positive = converging medially)",
            "craniocaudal_angle_deg": "angle between the axis and the image axial plane; positive when the "
                                      "axis descends (caudally) as it runs anteriorly",
            "*_local": "the same angles in the vertebra's own frame (its endplate plane and mid-sagittal plane)",
            "axis_lps": "the body's own cranio-caudal axis, pointing cranially",
        },
        "masks": {
            "vertebra_labels": "uint8 VerSe label per whole vertebra (body + arch), majority of sub-voxels",
            "canal": "spinal canal lumen (CSF, cord), bone excluded; the breach bulge is inside it",
            "aorta": "aorta lumen + wall, with the common iliac arteries",
            "ribs": "all ribs", "sacrum": "sacrum (S1 body, alae, lower segments, dorsal plate)",
        },
        "extra_mask_file_labels": {"vertebra": "VerSe label (17-24)", **EXTRA_MASK_LABELS},
    }


def _touches_edge(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any() or mask[:, :, 0].any()
                or mask[:, :, -1].any())
