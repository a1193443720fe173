"""``pvp-plan view INPUT``: open napari with the CT (bone window, physical space) and the PVP planner docked.

napari is imported inside the command only, so the rest of the CLI works without a GUI install.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def view(
        input: Path = typer.Argument(..., help="DICOM folder or file, DICOMDIR, NIfTI, NRRD or MHA/MHD."),  # noqa: B008
        series: str = typer.Option(None, "--series", help="SeriesInstanceUID to load when several are present."),
    ) -> None:
        """Review, correct and re-plan interactively in napari (needs napari: the package's napari extra)."""
        from pvp_plan.errors import InputError
        from pvp_plan.io import load_ct

        ct = load_ct(input, series=series)  # errors print like every other command, before any window opens
        try:
            import napari
            from pvp_plan_napari._layers import ct_layer_data
            from pvp_plan_napari._reader import _layer_name
        except ImportError as exc:
            raise InputError(f"napari is not installed ({exc.name}); install it with pip install 'pvp-plan[napari]'") \
                from None
        viewer = napari.Viewer(title="pvp-plan")
        data, meta, _ = ct_layer_data(ct, name=_layer_name(str(input), ct))
        viewer.add_image(data, **meta)
        viewer.window.add_plugin_dock_widget("pvp-plan", "PVP planner")
        napari.run()
