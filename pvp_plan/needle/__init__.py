"""Transpedicular needle path planning (issue 5)."""

from pvp_plan.needle.types import NeedlePath, PedicleMeasurement

__all__ = ["NeedlePath", "PedicleMeasurement"]
