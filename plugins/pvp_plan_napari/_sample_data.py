"""npe2 sample data: the synthetic spine phantom of :mod:`pvp_plan.sample_data` (CT + ground-truth body labels)."""

from __future__ import annotations

from pvp_plan_napari._layers import LayerData, ct_layer_data, labels_layer_data


def make_phantom_sample(spacing_mm: tuple[float, float, float] | None = None) -> list[LayerData]:
    """The phantom CT (bone window, physical space) and its ground-truth vertebral-body labels.

    By default the committed sample (:func:`pvp_plan.sample_data.load_sample`, the one ``pvp-plan demo`` uses);
    ``spacing_mm`` (z, y, x) renders the phantom afresh at that voxel size
    (``viewer.open_sample("pvp-plan", "spine_phantom", spacing_mm=(3.0, 1.5, 1.5))``).
    """
    from pvp_plan.sample_data import generate_phantom, load_sample

    phantom = load_sample() if spacing_mm is None else generate_phantom(seed=0, spacing_mm=spacing_mm)
    ct_layer = ct_layer_data(phantom.ct, name="phantom CT")
    labels = labels_layer_data(phantom.body_labels, phantom.ct, name="ground truth bodies")
    return [ct_layer, labels]
