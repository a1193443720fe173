"""Measurements on one vertebral body: volume, body frame, heights, trabecular density, posterior wall.

Plain functions on (z, y, x) arrays with the voxel spacing passed in (mm); no clinical rules here
(those live in :mod:`pvp_plan.rules` and are applied in :mod:`pvp_plan.plan`).
"""

from pvp_plan.measure.density import TrabecularDensity, trabecular_density
from pvp_plan.measure.frame import BodyFrame, body_frame
from pvp_plan.measure.heights import BodyHeights, body_heights
from pvp_plan.measure.volume import VolumeEstimate, body_volume_ml, posterior_third_stop_ml, volume_estimate
from pvp_plan.measure.wall import PosteriorWall, posterior_wall

__all__ = [
    "BodyFrame",
    "BodyHeights",
    "PosteriorWall",
    "TrabecularDensity",
    "VolumeEstimate",
    "body_frame",
    "body_heights",
    "body_volume_ml",
    "posterior_third_stop_ml",
    "posterior_wall",
    "trabecular_density",
    "volume_estimate",
]
