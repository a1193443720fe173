"""napari layer data built from pvp-plan objects (Qt-free, napari-free: plain ``LayerData`` tuples).

Physical space
--------------
napari world coordinates are ``(z, y, x)`` in millimetres with the same LPS axes as the core:
``scale = ct.spacing_mm`` and ``translate = ct.origin_lps_mm[::-1]``, so a world point ``(z, y, x)``
is the LPS point ``(x, y, z)``. Every layer the plugin adds uses this transform, so layers from the
reader, the sample data and the widget overlay exactly.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import Any

import numpy as np

from pvp_plan.io.ct_volume import CTVolume
from pvp_plan.levels import VERSE_LABELS, Level
from pvp_plan.needle.draw import needle_layer_data
from pvp_plan.needle.types import NeedlePath

#: Bone window for CT display (HU): window 1500 / level 250.
BONE_WINDOW_HU = (-500.0, 1000.0)

LayerData = tuple[Any, dict, str]


def physical_transform(ct: CTVolume) -> dict:
    """``scale`` and ``translate`` putting a (z, y, x) array of ``ct``'s grid in world (z, y, x) mm = LPS reversed."""
    return {"scale": tuple(ct.spacing_mm), "translate": tuple(ct.origin_lps_mm[::-1])}


def lps_to_world(point_lps_mm) -> np.ndarray:
    """World (z, y, x) mm of LPS (x, y, z) mm points ((3,) or (N, 3))."""
    return np.asarray(point_lps_mm, dtype=float)[..., ::-1]


def ct_layer_data(ct: CTVolume, name: str | None = None) -> LayerData:
    """The CT as an image layer in physical space with a bone window.

    The :class:`CTVolume` rides along in ``metadata["pvp_plan_ct"]`` so the planner can use the
    exact loaded volume (provenance, source grid) instead of rebuilding one from the array.
    """
    meta = {
        "name": name or ct.series.series_description or "CT",
        "colormap": "gray",
        "contrast_limits": BONE_WINDOW_HU,
        "metadata": {"pvp_plan_ct": ct, "series_ref": ct.series.series_ref},
        **physical_transform(ct),
    }
    return ct.hu, meta, "image"


def _level_colour(level: Level) -> tuple[float, float, float, float]:
    """A fixed colour per level: neighbours differ in hue; cervical, thoracic and lumbar differ in lightness."""
    i = level.order
    hue = (i * 0.382) % 1.0  # golden-ratio steps: adjacent levels are far apart on the colour wheel
    lightness = {"C": 0.70, "T": 0.55, "L": 0.60}[level.value[0]]
    r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.85)
    return (round(r, 3), round(g, 3), round(b, 3), 1.0)


#: VerSe label -> RGBA colour (fixed, so a level keeps its colour across cases and edits).
LEVEL_COLOURS: dict[int, tuple[float, float, float, float]] = {
    lab: _level_colour(level) for level, lab in VERSE_LABELS.items()
}


def level_colormap() -> dict:
    """Direct label colormap (``{label: rgba}``); background transparent, unknown labels grey."""
    return {0: (0.0, 0.0, 0.0, 0.0), None: (0.6, 0.6, 0.6, 1.0), **LEVEL_COLOURS}


def level_features() -> dict[str, list]:
    """Labels-layer features: the level name of every VerSe label (shown in the status bar on hover)."""
    labels = [0, *sorted(LEVEL_COLOURS)]
    return {"index": labels, "level": ["background"] + [Level.from_label(v).value for v in labels[1:]]}


def labels_layer_data(labels: np.ndarray, ct: CTVolume, name: str = "vertebral bodies") -> LayerData:
    """A VerSe label map on ``ct``'s grid as a labels layer with the fixed level colours and level names."""
    meta = {
        "name": name,
        "colormap": level_colormap(),
        "features": level_features(),
        "opacity": 0.5,
        "metadata": {"pvp_plan_labels": True},
        **physical_transform(ct),
    }
    return labels, meta, "labels"


def needle_layers_data(paths: Sequence[NeedlePath]) -> list[LayerData]:
    """Planned needle paths as a Shapes layer and a Points layer in physical space; [] when none is drawable.

    The layer data of :func:`pvp_plan.needle.needle_layer_data` (what scripts and notebooks get too): one line per
    path from skin entry (or the bone entry when the skin is out of view) to target, drawn at the needle's outer
    diameter (mm) and coloured by verdict (``VERDICT_RGBA``, as in the report), with features ``level``, ``side``,
    ``gauge``, ``safe`` and ``verdict``; and the path's skin entry, bone entry, isthmus centre and target as points
    with features ``level``, ``side`` and ``kind``.
    """
    d = needle_layer_data(paths)
    if not d["lines"]:
        return []
    tag = {"pvp_plan_needles": True}
    shapes = {"name": "needle paths", "shape_type": "line", "edge_color": d["colors"],
              "edge_width": d["edge_width_mm"], "features": d["properties"], "metadata": tag}
    points = {"name": "needle points", "size": 4.0, "face_color": "yellow", "border_color": "black",
              "features": d["point_properties"], "metadata": dict(tag)}
    return [(d["lines"], shapes, "shapes"), (d["points"], points, "points")]


def ct_from_layer(data, *, scale, translate, metadata: dict | None = None, name: str = "napari image") -> CTVolume:
    """The :class:`CTVolume` behind an image layer.

    The volume the reader or sample data attached (``metadata["pvp_plan_ct"]``) when the layer still
    shows that very array; otherwise a volume built from the layer's array and physical transform,
    read as LPS-aligned (world (z, y, x) mm = LPS reversed), which is how this plugin displays CT.
    """
    from pvp_plan.errors import InputError
    from pvp_plan.io.ct_volume import ct_from_array

    ct = (metadata or {}).get("pvp_plan_ct")
    if isinstance(ct, CTVolume) and ct.hu is data:
        return ct
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise InputError(f"image layer {name!r} is {arr.ndim}-D; the planner needs a 3-D CT volume")
    if len(scale) != 3 or len(translate) != 3:
        raise InputError(f"image layer {name!r} has no 3-D physical transform")
    return ct_from_array(arr, spacing_mm=tuple(float(v) for v in scale),
                         origin_lps_mm=tuple(float(v) for v in translate[::-1]), name=name)
