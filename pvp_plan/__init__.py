"""pvp-plan: CT-based planning for percutaneous vertebroplasty (PVP).

The core package imports neither Qt nor napari. Array axis order inside the core is
(z, y, x) on a grid aligned with the patient LPS frame (see :mod:`pvp_plan.io`).
Decision support only: the operator decides.
"""

from pvp_plan._version import __version__

__all__ = ["__version__"]
