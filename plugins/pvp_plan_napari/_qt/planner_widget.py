"""The "PVP planner" dock widget: displays the model and dispatches user actions (no clinical logic).

Long steps (segmentation + plan, export) run in napari ``thread_worker`` generators that yield
progress; edits to the labels layer are debounced and re-plan only the affected levels, also in a
worker. Every error goes to napari's notification area as one line.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pvp_plan.errors import InputError, LabelMapError
from pvp_plan.levels import Level
from pvp_plan_napari import _table
from pvp_plan_napari._layers import (
    LEVEL_COLOURS,
    ct_from_layer,
    labels_layer_data,
    needle_layers_data,
)
from pvp_plan_napari._model import (
    GAUGES,
    ExportResult,
    Failure,
    LevelUpdate,
    PlannerModel,
    Progress,
    RunResult,
    check_verse_labels,
    guarded,
    guarded_call,
    make_options,
    parse_levels,
)

logger = logging.getLogger(__name__)

AUTOMATIC = "automatic segmentation"
#: Quiet time after the last brush stroke before the affected levels are re-planned (ms).
DEBOUNCE_MS = 250
_STANDARD_LEVELS = [lv.value for lv in Level]


class PlannerWidget(QWidget):
    """Segment, plan, review and correct one CT in napari."""

    #: Emitted on the main thread after the table was refreshed (full run or per-level update).
    plan_updated = Signal()
    #: Emitted after an export finished with the list of written paths.
    exported = Signal(list)

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model: PlannerModel | None = None
        self.labels_layer = None
        self.needle_layers: list = []
        self.image_layer = None
        self.last_recompute_seconds: float | None = None
        self._worker = None
        self._recompute_worker = None
        self._pending: set[int] = set()
        self._pending_edit = False  # the pending re-plan follows a change of the label map (not only of names' status)
        self._stale: set[int] = set()  # neighbours of edited bodies, re-planned after them
        self._history_sig: tuple[int, int] | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._start_recompute)
        self._build_ui()
        self.viewer.layers.events.inserted.connect(self._refresh_layer_choices)
        self.viewer.layers.events.removed.connect(self._refresh_layer_choices)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self._refresh_layer_choices()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self.setMinimumWidth(640)
        root = QVBoxLayout(self)

        setup = QGroupBox("Plan")
        form = QFormLayout(setup)
        self.image_combo = QComboBox()
        self.seed_combo = QComboBox()
        self.seed_combo.setToolTip("Start from the automatic segmentation, or from a label layer "
                                   "(VerSe numbering) drawn on this CT")
        self.gauge_combo = QComboBox()
        self.gauge_combo.addItems(GAUGES)
        self.gauge_combo.setCurrentText("11G")
        self.levels_edit = QLineEdit()
        self.levels_edit.setPlaceholderText("all levels (or e.g. T12 L1, T11-L2)")
        row = QHBoxLayout()
        row.addWidget(self.gauge_combo)
        row.addWidget(QLabel("levels"))
        row.addWidget(self.levels_edit, 1)
        form.addRow("CT image", self.image_combo)
        form.addRow("Start from", self.seed_combo)
        form.addRow("Needle gauge", row)
        self.run_button = QPushButton("Segment and plan")
        self.run_button.clicked.connect(self.run)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.status = QLabel("Open a CT (File > Open, or File > Open Sample > PVP planner), then plan.")
        self.status.setWordWrap(True)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.progress, 1)
        form.addRow(run_row)
        form.addRow(self.status)
        root.addWidget(setup)

        self.table = QTableWidget(0, len(_table.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(_table.HEADERS))
        for i, (_, _, tip) in enumerate(_table.COLUMNS):
            self.table.horizontalHeaderItem(i).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        font = self.table.font()
        font.setPointSizeF(max(font.pointSizeF() - 1.0, 7.0))
        self.table.setFont(font)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setMinimumSectionSize(30)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.table.setMinimumHeight(200)
        self.table.cellClicked.connect(self._on_row_clicked)
        root.addWidget(self.table, 1)

        edit = QGroupBox("Correct (paint / erase with the labels layer's own brush)")
        grid = QGridLayout(edit)
        self.body_combo = QComboBox()
        self.target_combo = QComboBox()
        self.target_combo.addItems(_STANDARD_LEVELS)
        self.body_combo.currentTextChanged.connect(self._suggest_second_level)
        self.rename_button = QPushButton("Rename body \u2192")
        self.merge_button = QPushButton("Merge second into first")
        self.split_mid_button = QPushButton("Split at mid-plane")
        self.split_here_button = QPushButton("Split at current slice")
        self.shift_up_button = QPushButton("All names \u22121 (cranial)")
        self.shift_down_button = QPushButton("All names +1 (caudal)")
        self.confirm_button = QPushButton(_table.CONFIRM_NAMES_BUTTON)
        self.confirm_button.setToolTip("Level names the tool could not anchor (no sacrum or lowest rib in view, a "
                                       "level check) are not planned until you confirm them, as --anchor does on "
                                       "the command line")
        self.rename_button.clicked.connect(lambda: self.rename(self.body_combo.currentText(),
                                                               self.target_combo.currentText()))
        self.merge_button.clicked.connect(lambda: self.merge(self.body_combo.currentText(),
                                                             self.target_combo.currentText()))
        self.split_mid_button.clicked.connect(lambda: self.split(self.body_combo.currentText()))
        self.split_here_button.clicked.connect(lambda: self.split(self.body_combo.currentText(), at_current_slice=True))
        self.shift_up_button.clicked.connect(lambda: self.shift_names(-1))
        self.shift_down_button.clicked.connect(lambda: self.shift_names(+1))
        self.confirm_button.clicked.connect(self.confirm_names)
        grid.addWidget(QLabel("body"), 0, 0)
        grid.addWidget(self.body_combo, 0, 1)
        grid.addWidget(QLabel("second level"), 0, 2)
        grid.addWidget(self.target_combo, 0, 3)
        grid.addWidget(self.rename_button, 1, 0, 1, 2)
        grid.addWidget(self.merge_button, 1, 2, 1, 2)
        grid.addWidget(self.split_mid_button, 2, 0, 1, 2)
        grid.addWidget(self.split_here_button, 2, 2, 1, 2)
        grid.addWidget(self.shift_up_button, 3, 0, 1, 2)
        grid.addWidget(self.shift_down_button, 3, 2, 1, 2)
        grid.addWidget(self.confirm_button, 4, 0, 1, 4)
        root.addWidget(edit)

        self.export_button = QPushButton("Export plan (JSON, CSV, HTML report, label map)\u2026")
        self.export_button.clicked.connect(self._choose_export_dir)
        root.addWidget(self.export_button)
        self._set_edit_enabled(False)

    def _set_edit_enabled(self, enabled: bool) -> None:
        for w in (self.body_combo, self.target_combo, self.rename_button, self.merge_button, self.split_mid_button,
                  self.split_here_button, self.shift_up_button, self.shift_down_button, self.confirm_button,
                  self.export_button):
            w.setEnabled(enabled)

    def _refresh_layer_choices(self, event=None) -> None:
        from napari.layers import Image, Labels

        current_image, current_seed = self.image_combo.currentText(), self.seed_combo.currentText()
        self.image_combo.clear()
        self.image_combo.addItems([ly.name for ly in self.viewer.layers if isinstance(ly, Image) and ly.ndim == 3])
        self.seed_combo.clear()
        self.seed_combo.addItem(AUTOMATIC)
        self.seed_combo.addItems([ly.name for ly in self.viewer.layers if isinstance(ly, Labels)])
        if current_image:
            self.image_combo.setCurrentText(current_image)
        if current_seed:
            self.seed_combo.setCurrentText(current_seed)

    def _on_layer_removed(self, event) -> None:
        removed = _unwrap(event.value)
        if removed is self.labels_layer:
            self.labels_layer = None
        self.needle_layers = [ly for ly in self.needle_layers if ly is not removed]

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        """Segment (or take the chosen label layer) and plan the active CT in a worker thread."""
        if self.busy:
            show_info("pvp-plan: the planner is still working")
            return
        try:
            image = self._layer(self.image_combo.currentText())
            if image is None:
                raise InputError("no 3-D CT image layer: open a CT first (File > Open, or pvp-plan view INPUT)")
            ct = ct_from_layer(image.data, scale=image.scale, translate=image.translate,
                               metadata=image.metadata, name=image.name)
            options = make_options(gauge=self.gauge_combo.currentText(), levels=parse_levels(self.levels_edit.text()))
            model = PlannerModel(ct=ct, options=options)
            seed_name = self.seed_combo.currentText()
            seed = None
            if seed_name and seed_name != AUTOMATIC:
                seed_layer = self._layer(seed_name)
                if _unwrap(seed_layer) is self.labels_layer and self.model is not None:  # re-plan the corrected map
                    seed = self.model.edited_segmentation()
                else:
                    seed = model.segmentation_from_labels(np.asarray(seed_layer.data),
                                                          method=f"label layer {seed_name!r}")
        except Exception as exc:  # noqa: BLE001 - every failure becomes one notification line
            self._fail(exc)
            return
        self.image_layer = image
        self._pending_model = model
        self._seed_layer_name = None if seed is None else seed_name
        self.run_button.setEnabled(False)
        self._set_edit_enabled(False)
        self._show_progress(Progress(0.0, "starting"))
        self._worker = create_worker(guarded, model.compute(segmentation=seed), _start_thread=False)
        self._worker.yielded.connect(self._show_progress)
        self._worker.returned.connect(self._on_run_returned)
        self._worker.finished.connect(self._on_worker_finished)
        self._worker.start()

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _on_worker_finished(self) -> None:
        self._worker = None
        self.run_button.setEnabled(True)
        if self.model is not None and self.model.labels is not None:
            self._set_edit_enabled(True)

    def _show_progress(self, p: Progress) -> None:
        if p.fraction is not None:
            self.progress.setValue(int(round(100 * p.fraction)))
        if p.message:
            self.status.setText(p.message)

    def _on_run_returned(self, result: RunResult | Failure) -> None:
        if isinstance(result, Failure):
            self._fail(result.message)
            return
        model = self._pending_model
        model.accept_run(result)
        self.model = model
        self._show_labels()
        self._show_needles()
        self._refresh_table()
        n = len(model.level_plans)
        self.status.setText(f"{n} level{'s' if n != 1 else ''} planned ({self.gauge_combo.currentText()}). "
                            "Click a row to go to the level; paint or erase in the labels layer to correct.")
        self.plan_updated.emit()

    # ------------------------------------------------------------------ layers
    def _layer(self, name: str):
        """The layer called ``name`` (unwrapped from napari's plugin proxy, so identity checks hold), or None."""
        return _unwrap(self.viewer.layers[name]) if name and name in self.viewer.layers else None

    def _has(self, layer) -> bool:
        return layer is not None and any(_unwrap(ly) is layer for ly in self.viewer.layers)

    def _show_labels(self) -> None:
        """Show the model's label map in the editable labels layer (reused across runs, created once)."""
        model = self.model
        if self._has(self.labels_layer):
            self._disconnect_labels()
            self.labels_layer.data = model.labels
            self.labels_layer.visible = True
        else:
            data, meta, _ = labels_layer_data(model.labels, model.ct, name="vertebral bodies (editable)")
            self.labels_layer = _unwrap(self.viewer.add_labels(data, **meta))
        if self._seed_layer_name and self._seed_layer_name in self.viewer.layers:
            seed_layer = self._layer(self._seed_layer_name)
            if seed_layer is not self.labels_layer:
                seed_layer.visible = False
        bodies = model.current_segmentation().bodies
        if bodies:
            self.labels_layer.selected_label = bodies[len(bodies) // 2].label
        self.labels_layer.events.paint.connect(self._on_paint)
        self.labels_layer.events.data.connect(self._on_data_replaced)
        self.labels_layer.events.set_data.connect(self._on_set_data)
        self._history_sig = self._history_signature()
        self._refresh_body_choices()
        self._refresh_layer_choices()
        self.seed_combo.setCurrentText(self.labels_layer.name)  # re-running keeps the corrections
        self.viewer.layers.selection.active = self.labels_layer

    def _disconnect_labels(self) -> None:
        layer = self.labels_layer
        for emitter, slot in ((layer.events.paint, self._on_paint), (layer.events.data, self._on_data_replaced),
                              (layer.events.set_data, self._on_set_data)):
            try:
                emitter.disconnect(slot)
            except (TypeError, RuntimeError, ValueError):
                pass

    def _show_needles(self) -> None:
        """(Re)draw the planned needle paths (:func:`~pvp_plan_napari._layers.needle_layers_data`)."""
        visible = [ly.visible for ly in self.needle_layers] or [True, True]
        for layer in list(self.needle_layers):
            if self._has(layer):
                self.viewer.layers.remove(layer.name)
        self.needle_layers = []
        paths = [p for lp in self.model.ordered_level_plans() for p in getattr(lp, "needle_paths", ())]
        for data, meta, kind in needle_layers_data(paths):
            features = meta.pop("features")
            layer = _unwrap(getattr(self.viewer, f"add_{kind}")(data, **meta))
            layer.features = features  # after the data: napari sizes the feature table from it
            self.needle_layers.append(layer)
        for layer, shown in zip(self.needle_layers, visible, strict=False):
            layer.visible = shown  # keep what the user hid hidden across re-plans
        if self.needle_layers and self.labels_layer is not None:
            self.viewer.layers.selection.active = self.labels_layer

    def _refresh_body_choices(self) -> None:
        current = self.body_combo.currentText()
        self.body_combo.clear()
        if self.model is None or self.model.segmentation is None:
            return
        self.body_combo.addItems([b.level.value for b in self.model.segmentation.bodies])
        if current:
            self.body_combo.setCurrentText(current)

    def _suggest_second_level(self, level: str) -> None:
        """Pre-select the caudal neighbour (the usual partner for merge) as the second level."""
        try:
            self.target_combo.setCurrentText(Level.parse(level).shifted(+1).value)
        except ValueError:
            pass

    # ------------------------------------------------------------------ table
    def _refresh_table(self) -> None:
        plans = self.model.ordered_level_plans() if self.model else []
        self.table.setRowCount(len(plans))
        for r, lp in enumerate(plans):
            texts = _table.level_row(lp)
            tip = _table.level_tooltip(lp)
            for c, (key, _, _) in enumerate(_table.COLUMNS):
                item = QTableWidgetItem(texts[key])
                item.setTextAlignment(Qt.AlignCenter if c else Qt.AlignLeft | Qt.AlignVCenter)
                if tip:
                    item.setToolTip(tip)
                if key == "level":
                    rgba = LEVEL_COLOURS.get(int(lp.label), (0.6, 0.6, 0.6, 1.0))
                    item.setBackground(QBrush(QColor.fromRgbF(*rgba[:3], 0.85)))
                    item.setForeground(QBrush(QColor("black")))
                    item.setData(Qt.UserRole, str(lp.level))
                elif _table.is_alert(key, lp):
                    item.setForeground(QBrush(QColor("#ff9a3c")))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)

    def row_texts(self) -> list[dict[str, str]]:
        """The table's text as dicts keyed by column key (for tests and scripting)."""
        out = []
        for r in range(self.table.rowCount()):
            out.append({key: self.table.item(r, c).text() for c, (key, _, _) in enumerate(_table.COLUMNS)})
        return out

    def _on_row_clicked(self, row: int, column: int = 0) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.go_to_level(item.data(Qt.UserRole))

    def go_to_level(self, level: str) -> None:
        """Centre the view on a level's body centroid (camera centre and current slice)."""
        try:
            world = self.model.centroid_world(level)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        dims = self.viewer.dims
        for axis in range(min(dims.ndim, 3)):
            if axis not in dims.displayed:
                dims.set_point(axis, float(world[axis]))
        camera(self.viewer).center = tuple(float(world[a]) for a in dims.displayed)
        self.body_combo.setCurrentText(level)
        if self.labels_layer is not None:
            self.labels_layer.selected_label = Level.parse(level).label

    # ------------------------------------------------------------------ edits
    def _history_signature(self) -> tuple[int, int] | None:
        """Lengths of the labels layer's undo/redo stacks (undo and redo emit no paint event).

        Private napari state, read defensively: None when absent, and then every refresh is checked.
        """
        undo = getattr(self.labels_layer, "_undo_history", None)
        redo = getattr(self.labels_layer, "_redo_history", None)
        return None if undo is None or redo is None else (len(undo), len(redo))

    def _on_paint(self, event) -> None:
        self._history_sig = self._history_signature()
        self._schedule(_labels_in_paint_event(event.value))

    def _on_data_replaced(self, event=None) -> None:
        layer, model = self.labels_layer, self.model
        if layer is not None and model is not None and layer.data is not model.labels:
            data = np.asarray(layer.data)
            try:
                if data.shape != model.ct.shape:
                    raise LabelMapError(f"the new label data {data.shape} does not match the CT {model.ct.shape}")
                check_verse_labels(data)
            except LabelMapError as exc:
                self._fail(exc)
                return
            model.labels = data.astype(np.uint8, copy=False)
        self._schedule(())

    def _on_set_data(self, event=None) -> None:
        sig = self._history_signature()
        if sig is None or sig != self._history_sig:  # undo / redo replays edits without a paint event
            self._history_sig = sig
            self._schedule(())

    def _schedule(self, labels_hint, *, edit: bool = True) -> None:
        """Re-plan ``labels_hint`` (and any body whose voxel count changed) after the debounce; ``edit``: the label
        map was changed by hand (False when only the names were confirmed)."""
        if self.model is None:
            return
        if edit:
            self.model.edited = True  # at once, so an export right after a stroke says so
        self._pending_edit |= edit
        self._pending |= {int(v) for v in labels_hint}
        self._pending.add(-1)  # "check counts" marker
        self._debounce.start()

    def _start_recompute(self) -> None:
        """Re-plan the levels whose voxels changed (debounced; one worker at a time)."""
        if self.model is None or not self._pending:
            return
        if self._recompute_worker is not None or self._worker is not None:
            self._debounce.start()  # one at a time: try again shortly
            return
        try:
            affected = self.model.changed_labels(v for v in self._pending if v > 0)
        except Exception as exc:  # noqa: BLE001
            self._pending.clear()
            self._pending_edit = False
            self._fail(exc)
            return
        self._pending.clear()
        edit, self._pending_edit = self._pending_edit, False
        if not affected:
            return
        self._stale = (self._stale | self.model.neighbours(affected)) - affected
        self._launch_recompute(affected, primary=True, edit=edit)

    def _launch_recompute(self, labels: set[int], *, primary: bool, edit: bool = True) -> None:
        verb = "re-planning" if primary else "updating neighbours"
        self.status.setText(f"{verb} {', '.join(_names(labels))}\u2026")
        self._t_edit = time.perf_counter()
        snapshot = self.model.labels.copy()
        worker = create_worker(guarded_call, self.model.recompute, labels, labels=snapshot, note_edit=edit,
                               _start_thread=False)
        worker.returned.connect(lambda update: self._on_recompute_returned(update, primary=primary))
        worker.finished.connect(self._on_recompute_finished)
        self._recompute_worker = worker
        worker.start()

    def _on_recompute_finished(self) -> None:
        self._recompute_worker = None
        if self._stale and not self._pending and self._worker is None and self.model is not None:
            stale, self._stale = self._stale, set()
            self._launch_recompute(stale, primary=False, edit=self.model.edited)  # neighbours: collapse ratios

    @property
    def idle(self) -> bool:
        """No run, export or re-plan in progress or waiting."""
        return (self._worker is None and self._recompute_worker is None and not self._pending and not self._stale
                and not self._debounce.isActive())

    def _on_recompute_returned(self, update: LevelUpdate | Failure, *, primary: bool = True) -> None:
        if isinstance(update, Failure):
            self._stale.clear()
            self._fail(update.message)
            return
        self.model.accept_update(update)
        seconds = time.perf_counter() - self._t_edit
        if primary:
            self.last_recompute_seconds = seconds
        self._refresh_table()
        self._refresh_body_choices()
        self._show_needles()
        names = _names(set(update.level_plans) | set(update.removed))
        what = "re-planned" if primary else "updated neighbours"
        why = "segmentation edited by hand" if self.model.edited else "level names confirmed"
        self.status.setText(f"{what} {', '.join(names) or 'nothing'} in {seconds:.2f} s ({why})")
        self.plan_updated.emit()

    def _edit(self, action, *args, edit: bool = True, **kwargs) -> None:
        """Run a model action (``edit``: it changes the label map) and re-plan the labels it returns."""
        if self.model is None or self.model.labels is None or self.labels_layer is None:
            self._fail("run the planner first (the editable labels layer is missing)")
            return
        try:
            affected = action(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self.labels_layer.refresh()
        self._history_sig = self._history_signature()
        self._schedule(affected, edit=edit)

    def rename(self, level: str, new_level: str) -> None:
        """Rename one body (the second level must not exist yet)."""
        self._edit(self.model and self.model.rename, level, new_level)

    def shift_names(self, steps: int) -> None:
        """Shift all names by ``steps`` (transitional anatomy / miscounted levels)."""
        self._edit(self.model and self.model.shift_names, steps)

    def confirm_names(self) -> None:
        """The level names were checked on the images: plan the levels whose names were uncertain."""
        self._edit(self.model and self.model.confirm_names, edit=False)  # names only: not an edit of the map

    def merge(self, keep: str, absorb: str) -> None:
        """Merge body ``absorb`` into body ``keep``."""
        self._edit(self.model and self.model.merge, keep, absorb)

    def split(self, level: str, *, at_current_slice: bool = False) -> None:
        """Split a body at its mid-plane, or by the axial plane of the current slice."""
        point = None
        if at_current_slice and self.model is not None:
            try:
                body = self.model.current_segmentation().body(level)
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
                return
            if 0 in self.viewer.dims.displayed:
                self._fail("split at the current slice works in the axial view (z on the slider); "
                           "roll the dims back or split at the mid-plane")
                return
            point = np.array(body.centroid_lps_mm, dtype=float)
            point[2] = float(self.viewer.dims.point[0])  # world z (mm) of the current axial slice = LPS z
        self._edit(self.model and self.model.split, level, plane_point_lps_mm=point)

    # ------------------------------------------------------------------ export
    def _choose_export_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the plan to folder")
        if folder:
            self.export(folder)

    def export(self, out_dir: str | Path) -> None:
        """Write plan.json, plan.csv, report.html and the label map (re-planned on the edited labels)."""
        if self.model is None or self.busy:
            self._fail("run the planner first" if self.model is None else "the planner is still working")
            return
        try:
            steps = self.model.export(out_dir)  # snapshots the label map now
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self.run_button.setEnabled(False)
        self._set_edit_enabled(False)
        self._worker = create_worker(guarded, steps, _start_thread=False)
        self._worker.yielded.connect(self._show_progress)
        self._worker.returned.connect(self._on_export_returned)
        self._worker.finished.connect(self._on_worker_finished)
        self._worker.start()

    def _on_export_returned(self, result: ExportResult | Failure) -> None:
        if isinstance(result, Failure):
            self._fail(result.message)
            return
        folder = Path(result.paths[0]).parent.name if result.paths else ""
        edited = " (segmentation edited by hand)" if result.edited else ""
        self.status.setText(f"exported {len(result.paths)} files to {folder}{edited}")
        show_info(f"pvp-plan: exported {', '.join(Path(p).name for p in result.paths)}{edited}")
        for note in result.notes:
            show_warning(f"pvp-plan: {note}")
        self.exported.emit([str(p) for p in result.paths])

    # ------------------------------------------------------------------ errors
    def _fail(self, exc: Any) -> None:
        message = str(exc)
        self.status.setText(f"error: {message}")
        self.progress.setValue(0)
        show_error(f"pvp-plan: {message}")


def _unwrap(obj):
    """The object behind napari's ``PublicOnlyProxy`` (plugin widgets receive a proxied viewer)."""
    return getattr(obj, "__wrapped__", obj)


def camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def _names(labels) -> list[str]:
    out = []
    for v in sorted(labels, key=lambda v: Level.from_label(v).order if v in LEVEL_COLOURS else 99):
        out.append(Level.from_label(v).value if v in LEVEL_COLOURS else str(v))
    return out


def _labels_in_paint_event(atoms) -> set[int]:
    """Label values touched by a napari paint event (old values and the new value), best effort.

    napari stores either mask atoms (``old_values``, ``new_value``) or ``(indices, old, new)`` tuples;
    anything unrecognised is ignored (the count check in :meth:`PlannerModel.changed_labels` catches it).
    """
    out: set[int] = set()
    for atom in atoms or ():
        try:
            if hasattr(atom, "new_value"):
                old, new = atom.old_values, atom.new_value
            else:
                _, old, new = atom
            out |= {int(v) for v in np.unique(np.asarray(old))}
            out |= {int(v) for v in np.unique(np.asarray(new))}
        except (TypeError, ValueError):
            continue
    return out - {0}
