"""Regenerate ``docs/screenshot_napari.png``: the bundled sample CT planned by the PVP planner in napari.

Run (a display, or headless): ``xvfb-run -a -s "-screen 0 1920x1200x24" env QT_API=pyqt5 .venv/bin/python
docs/make_screenshot.py [OUT.png]``. The sample is segmented by pvp-plan itself (the "Segment and plan" button),
the view is 3-D: the bodies coloured by level and the needle paths drawn at the needle's outer diameter, coloured
by verdict, with the planner's table beside.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

# napari's settings in a throw-away file: the view set here does not change the user's own
os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")
import napari  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

from pvp_plan.sample_data import sample_nifti_path  # noqa: E402

PLUGIN = "pvp-plan"
TIMEOUT_S = 300.0
#: napari camera Euler angles (degrees): the column seen obliquely from behind, the needles entering the pedicles.
CAMERA_ANGLES_DEG = (90.0, -30.0, -120.0)


def main(out: Path) -> int:
    viewer = napari.Viewer(title="pvp-plan")
    viewer.window.resize(1700, 1000)
    viewer.open(str(sample_nifti_path()), plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "PVP planner")
    widget.run()
    start = time.monotonic()
    while not widget.idle or widget.model is None:  # the plan runs in a worker thread
        QApplication.processEvents()
        time.sleep(0.05)
        if time.monotonic() - start > TIMEOUT_S:
            sys.exit("the planner did not finish in time")
    ct_layer = next(ly for ly in viewer.layers if ly.metadata.get("pvp_plan_ct") is not None)
    ct_layer.visible = False  # the bodies and the needles alone in 3-D
    viewer.dims.ndisplay = 3
    viewer.reset_view()  # frames the column seen along z; turned, it spans more of the canvas
    viewer.camera.angles = CAMERA_ANGLES_DEG
    viewer.camera.zoom *= 0.6
    end = time.monotonic() + 8.0  # let the notifications fade
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.05)
    for w in QApplication.allWidgets():  # a pop-up notification still showing (e.g. napari's own on Qt5)
        if "Notification" in type(w).__name__ and w.isVisible():
            w.hide()
    QApplication.processEvents()
    viewer.screenshot(str(out), canvas_only=False)
    print(f"wrote {out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("screenshot_napari.png")))
