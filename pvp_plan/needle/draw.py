"""Needle paths as napari layer data and as 2-D slice coordinates for the report (no napari import)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.needle.types import NeedlePath
from pvp_plan.rules.needle import GAUGE_OD_MM

#: Colour of a path by its verdict (``NeedlePath.verdict``), RGBA 0-1, in napari and in the report's figures:
#: cyan, yellow, red (told apart by lightness too, for colour-blind readers).
VERDICT_RGBA = {"safe": (0.0, 0.9, 1.0, 1.0), "safe_unverified": (1.0, 0.85, 0.0, 1.0), "unsafe": (1.0, 0.0, 0.0, 1.0)}


def _start(path: NeedlePath):
    return path.skin_entry_lps_mm or path.bone_entry_lps_mm


def needle_layer_data(paths: Sequence[NeedlePath]) -> dict:
    """Napari-ready data of planned paths, in physical (world) coordinates.

    Coordinates are (z, y, x) world mm, ``point_world_zyx = lps[::-1]``: they overlay an image layer shown
    with ``scale=ct.spacing_mm`` and ``translate=ct.origin_lps_mm[::-1]``.

    Returns
    -------
    dict
        ``"lines"``: list of (2, 3) float arrays, [entry, target] per drawable path (skin entry, or the
        bone entry when the skin is out of view), for a Shapes layer with ``shape_type="line"``;
        ``"properties"``: per line lists ``level``, ``side``, ``gauge``, ``safe``, ``verdict``;
        ``"colors"``: (n_lines, 4) RGBA by verdict (``VERDICT_RGBA``);
        ``"edge_width_mm"``: needle outer diameter per line;
        ``"points"``: (n_points, 3) array of skin entry, bone entry, isthmus centre and target;
        ``"point_properties"``: per point ``level``, ``side``, ``kind``.
    """
    lines, props, colors, widths = [], {"level": [], "side": [], "gauge": [], "safe": [], "verdict": []}, [], []
    points, pprops = [], {"level": [], "side": [], "kind": []}
    for p in paths:
        start = _start(p)
        if start is not None and p.target_lps_mm is not None:
            lines.append(np.array([start[::-1], p.target_lps_mm[::-1]], dtype=float))
            for k, v in (("level", p.level), ("side", p.side), ("gauge", p.gauge), ("safe", p.safe),
                         ("verdict", p.verdict)):
                props[k].append(v)
            colors.append(VERDICT_RGBA[p.verdict])
            widths.append(GAUGE_OD_MM[p.gauge].value)
        for kind, pt in (("skin_entry", p.skin_entry_lps_mm), ("bone_entry", p.bone_entry_lps_mm),
                         ("isthmus_center", p.pedicle.isthmus_center_lps_mm), ("target", p.target_lps_mm)):
            if pt is not None:
                points.append(np.asarray(pt, float)[::-1])
                pprops["level"].append(p.level)
                pprops["side"].append(p.side)
                pprops["kind"].append(kind)
    return {"lines": lines, "properties": props, "colors": np.array(colors, float).reshape(-1, 4),
            "edge_width_mm": widths, "points": np.array(points, float).reshape(-1, 3),
            "point_properties": pprops}


def project_path_on_axial(path: NeedlePath, ct: CTVolume) -> np.ndarray | None:
    """Entry and target in pixel coordinates of an axial slice ``ct.hu[z]``.

    Returns a (2, 2) array ``[[row, col], [row, col]]`` (row = y index, col = x index; fractional) for
    [entry, target], to draw with ``plt.imshow(ct.hu[z]); plt.plot(a[:, 1], a[:, 0])`` (image origin upper;
    patient right on the image left as in radiology). None when the path has no points.
    """
    return _project(path, ct, (1, 2))


def project_path_on_sagittal(path: NeedlePath, ct: CTVolume) -> np.ndarray | None:
    """Entry and target on a sagittal slice ``ct.hu[:, :, x]``: ``[[row, col], ...]`` with row = z index, col = y
    index; draw with ``imshow(..., origin="lower")`` so the head is up and anterior on the left."""
    return _project(path, ct, (0, 1))


def _project(path, ct, axes) -> np.ndarray | None:
    start = _start(path)
    if start is None or path.target_lps_mm is None:
        return None
    idx = ct.lps_to_index(np.array([start, path.target_lps_mm], float))
    return idx[:, list(axes)]
