"""The planner model without Qt: run, edit (paint, rename, shift, merge, split), recompute, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pvp_plan_napari._model import (
    Failure,
    PlannerModel,
    call_with_progress,
    guarded,
    make_options,
    parse_levels,
)

from pvp_plan.errors import LabelMapError, PlanError
from pvp_plan.levels import Level


def _run(gen):
    """Drain a step generator; return (progress reports, return value)."""
    reports = []
    try:
        while True:
            reports.append(next(gen))
    except StopIteration as stop:
        return reports, stop.value


@pytest.fixture()
def model(phantom):
    ct, labels = phantom
    m = PlannerModel(ct=ct, options=make_options(gauge="11G"))
    seed = m.segmentation_from_labels(labels, method="truth")
    reports, result = _run(m.compute(segmentation=seed))
    assert reports and reports[-1].fraction == 1.0
    m.accept_run(result)
    return m


def border_voxels(labels: np.ndarray, label: int, n: int) -> np.ndarray:
    """``n`` background voxels touching body ``label`` (z, y, x indices), for painting."""
    from scipy import ndimage

    ring = ndimage.binary_dilation(labels == label) & (labels == 0)
    return np.argwhere(ring)[:n]


def _middle_body(model):
    bodies = model.segmentation.bodies
    return bodies[len(bodies) // 2]


def test_run_plans_every_body_without_touching_the_seed(model, phantom):
    _, labels = phantom
    present = sorted(int(v) for v in np.unique(labels) if v)
    assert sorted(model.level_plans) == present
    assert model.labels is not labels and np.array_equal(model.labels, labels)
    assert not model.edited
    assert [lp.level for lp in model.ordered_level_plans()] == [b.level.value for b in model.segmentation.bodies]


def test_painted_voxels_change_the_volume_by_voxels_times_voxel_volume(model):
    body = _middle_body(model)
    before = model.level_plans[body.label].body_volume_ml
    assert before is not None
    ring = border_voxels(model.labels, body.label, 7)
    newly = len(ring)
    model.labels[tuple(ring.T)] = body.label
    affected = model.changed_labels()
    assert body.label in affected
    update = model.recompute(affected)
    model.accept_update(update)
    after = model.level_plans[body.label].body_volume_ml
    assert after - before == pytest.approx(newly * model.ct.voxel_volume_ml, rel=1e-9, abs=1e-9)
    assert model.edited and model.segmentation.edited  # re-plan time: benchmarks/bench_napari_replan.py


def test_erasing_a_body_removes_its_row(model):
    body = model.segmentation.bodies[0]
    model.labels[model.labels == body.label] = 0
    model.accept_update(model.recompute(model.changed_labels()))
    assert body.label not in model.level_plans


def test_rename_to_a_free_name_and_refuse_an_existing_one(model):
    bodies = model.segmentation.bodies
    first, second = bodies[0], bodies[1]
    with pytest.raises(PlanError, match="already exists"):
        model.rename(first.level, second.level)
    free = Level.C1
    affected = model.rename(first.level, free)
    assert affected == {first.label, free.label}
    assert not np.any(model.labels == first.label) and np.any(model.labels == free.label)
    model.accept_update(model.recompute(affected))
    assert free.label in model.level_plans and first.label not in model.level_plans


def test_shift_all_names_by_one(model):
    before = {b.label: b.voxel_count for b in model.segmentation.bodies}
    model.shift_names(-1)  # one level more cranial (e.g. a miscounted thoracolumbar junction)
    model.accept_update(model.recompute(model.changed_labels()))
    after = {b.label: b.voxel_count for b in model.segmentation.bodies}
    assert after == {Level.from_label(k).shifted(-1).label: v for k, v in before.items()}
    assert {Level.from_label(k).shifted(-1).label for k in before} == set(model.level_plans)
    model.shift_names(+1)
    assert {int(v) for v in np.unique(model.labels) if v} == set(before)
    if Level.L5.label in before:  # no standard level below L5: refused, naming the level
        with pytest.raises(PlanError, match="L5"):
            model.shift_names(+1)


def test_merge_two_bodies(model):
    a, b = model.segmentation.bodies[0], model.segmentation.bodies[1]
    affected = model.merge(a.level, b.level)
    model.accept_update(model.recompute(affected))
    assert b.label not in model.level_plans
    assert model.segmentation.body(a.label).voxel_count == a.voxel_count + b.voxel_count
    with pytest.raises(PlanError):
        model.merge(a.level, a.level)


def test_split_at_the_mid_plane_then_at_a_chosen_plane(model):
    # merge two neighbours, then split them again along the spine axis
    a, b = model.segmentation.bodies[0], model.segmentation.bodies[1]
    model.merge(b.level, a.level)
    model.accept_update(model.recompute({a.label, b.label}))
    affected = model.split(b.level)
    model.accept_update(model.recompute(affected))
    parts = {bd.label: bd.voxel_count for bd in model.segmentation.bodies if bd.label in (a.label, b.label)}
    assert set(parts) == {a.label, b.label}  # the cranial part took the free cranial name
    assert sum(parts.values()) == a.voxel_count + b.voxel_count
    assert model.segmentation.body(a.label).centroid_lps_mm[2] > model.segmentation.body(b.label).centroid_lps_mm[2]
    # a plane that misses the body is refused
    with pytest.raises(PlanError, match="does not cross"):
        model.split(b.level, plane_point_lps_mm=(0.0, 0.0, 1e4))


def test_non_verse_label_is_refused_with_the_fix(model):
    model.labels[0, 0, 0] = 200
    with pytest.raises(LabelMapError, match="not VerSe"):
        model.recompute(model.changed_labels())


def test_wide_label_values_are_checked_before_the_uint8_cast(model):
    wide = model.labels.astype(np.int32)
    wide[0, 0, 0] = 256 + 20  # would wrap to 20 (L1) in uint8
    with pytest.raises(LabelMapError, match="276"):
        model.segmentation_from_labels(wide)


def test_parse_levels_and_options():
    assert parse_levels("") is None
    assert parse_levels("t12, L1") == [Level.T12, Level.L1]
    assert parse_levels("T11-L1") == [Level.T11, Level.T12, Level.L1]
    with pytest.raises(PlanError):
        parse_levels("Q7")
    with pytest.raises(PlanError):
        make_options(gauge="14G")
    assert make_options(gauge="13G", levels=[Level.L1]).levels == ("L1",)


def test_errors_become_failures_not_tracebacks():
    def boom(progress=None):
        progress("half way", 0.5)
        raise PlanError("cannot plan L9: no such level")

    reports, result = _run(guarded(call_with_progress(boom)))
    assert reports[0].message == "half way" and reports[0].fraction == 0.5
    assert isinstance(result, Failure) and "L9" in result.message


def test_export_reflects_edits(model, tmp_path):
    body = _middle_body(model)
    idx = np.argwhere(model.labels == body.label)
    model.labels[tuple(idx[:5].T)] = 0
    model.accept_update(model.recompute(model.changed_labels()))
    _, result = _run(model.export(tmp_path / "out"))
    names = {p.name for p in result.paths}
    assert {"plan.json", "plan.csv", "report.html"} <= names
    assert any(n.endswith((".nii.gz", ".nii")) for n in names)
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["segmentation"]["edited"] is True
    assert "edited by hand" in plan["segmentation"]["method"]
    assert result.edited


def test_a_merged_body_is_flagged_and_its_split_clears_the_flag(model):
    """The level checks read every edit: two levels merged into one body are flagged (not planned, the names
    counted across it uncertain); split again, the flag and its warning are gone."""
    from pvp_plan.segment.implausible_levels import CONFIDENCE_MERGED, SOURCE

    bodies = model.segmentation.bodies
    a, b = bodies[len(bodies) // 2], bodies[len(bodies) // 2 + 1]  # whole bodies mid-column
    model.accept_update(model.recompute(model.merge(b.level, a.level)))
    merged = model.level_plans[b.label]
    assert not merged.plannable and model.segmentation.body(b.label).segmentation_confidence == CONFIDENCE_MERGED
    assert any(w.startswith(f"{SOURCE}: {b.level.value} is ") for w in model.segmentation.warnings)
    model.accept_update(model.recompute(model.split(b.level)))
    assert not any(w.startswith(SOURCE) for w in model.segmentation.warnings)
    assert model.segmentation.body(b.label).segmentation_confidence == 1.0


def test_confirming_the_names_makes_uncertain_levels_plannable(model, phantom):
    """A run whose names are uncertain (no anchor in view: confidence 0.4) plans nothing; renaming does not vouch
    for the names, confirming them does (as ``--anchor`` on the command line), and it lasts through later edits."""
    from pvp_plan_napari._model import CONFIRMED_NAMES

    from pvp_plan.segment import Segmentation

    ct, labels = phantom
    m = PlannerModel(ct=ct, options=make_options(gauge="11G"))
    seed = Segmentation.from_label_map(labels, ct, method="uncertain names", level_confidence=0.4)
    m.accept_run(_run(m.compute(segmentation=seed))[1])
    whole = [lp for lp in m.ordered_level_plans() if "field of view" not in (lp.not_plannable_reason or "")]
    assert whole and all("level name uncertain" in lp.not_plannable_reason for lp in whole)
    m.accept_update(m.recompute(m.shift_names(-1)))
    m.accept_update(m.recompute(m.shift_names(+1)))
    assert not any(lp.plannable for lp in m.ordered_level_plans())
    m.accept_update(m.recompute(m.confirm_names()))
    assert [lp.level for lp in m.ordered_level_plans() if lp.plannable] == [lp.level for lp in whole]
    assert CONFIRMED_NAMES in m.segmentation.warnings
    body = m.segmentation.bodies[len(m.segmentation.bodies) // 2]
    m.labels[tuple(border_voxels(m.labels, body.label, 5).T)] = body.label
    m.accept_update(m.recompute(m.changed_labels()))
    assert m.level_plans[body.label].plannable and m.segmentation.warnings.count(CONFIRMED_NAMES) == 1
