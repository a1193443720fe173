"""npe2 sample data: the synthetic spine phantom of :mod:`pvp_plan.sample_data` (CT + ground-truth body labels)."""

from __future__ import annotations

from pvp_plan_napari._layers import LayerData, ct_layer_data, labels_layer_data


def make_phantom_sample(spacing_mm: tuple[float, float, float] | None = None) -> list[LayerData]:
    """The phantom CT (bone window, physical space) and its ground-truth vertebral-body labels.

    ``spacing_mm`` (z, y, x) overrides the phantom's default voxel size (``viewer.open_sample(..., spacing_mm=...)``).
    """
    from pvp_plan.sample_data import generate_phantom

    phantom = generate_phantom(seed=0) if spacing_mm is None else generate_phantom(seed=0, spacing_mm=spacing_mm)
    ct_layer = ct_layer_data(phantom.ct, name="phantom CT")
    labels = labels_layer_data(phantom.body_labels, phantom.ct, name="ground truth bodies")
    return [ct_layer, labels]
