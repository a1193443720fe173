"""Case-level rules: levels per session, needle gauge, plannability of a body."""

from __future__ import annotations

from pvp_plan.messages import Notice, Severity
from pvp_plan.rules import JSIR_2019
from pvp_plan.rules.session import (
    MAX_LEVELS_PER_SESSION,
    MIN_BODY_VOLUME_ML,
    MIN_LEVEL_CONFIDENCE,
    MIN_SEGMENTATION_CONFIDENCE,
    NEEDLE_11G_OD_MM,
)
from pvp_plan.segment.types import BodyInfo


def not_plannable_reason(body: BodyInfo, *, voxel_volume_ml: float | None = None) -> str | None:
    """Why a body must not be planned (cut by the field of view, uncertain name or shape, a fragment), or None."""
    if body.cut_by_fov:
        return "cut by the field of view: the body is incomplete, its volume cannot be measured"
    if voxel_volume_ml is not None and body.voxel_count * voxel_volume_ml < MIN_BODY_VOLUME_ML.value:
        return (f"implausibly small body ({body.voxel_count * voxel_volume_ml:.2f} mL < "
                f"{MIN_BODY_VOLUME_ML.value:g} mL): a segmentation fragment; check the segmentation")
    if body.level_confidence < MIN_LEVEL_CONFIDENCE.value:
        return (f"level name uncertain (confidence {body.level_confidence:.2f} < {MIN_LEVEL_CONFIDENCE.value:g}): "
                "confirm the level (e.g. --anchor) before planning")
    if body.segmentation_confidence < MIN_SEGMENTATION_CONFIDENCE.value:
        return (f"segmentation uncertain (confidence {body.segmentation_confidence:.2f} < "
                f"{MIN_SEGMENTATION_CONFIDENCE.value:g}): check or edit the body outline")
    return None


def session_notices(levels: list[str], *, selected_by_user: bool = True) -> tuple[Notice, ...]:
    """Notices for the set of levels planned in one session (more than 3 selected -> caution).

    When the user selected no levels, every level found is described for information only: the
    caution about treating more than 3 levels is then replaced by an informational notice.
    """
    limit = int(MAX_LEVELS_PER_SESSION.value)
    if len(levels) <= limit:
        return ()
    if not selected_by_user:
        return (Notice(
            code="levels_not_selected",
            message=(f"No levels were selected: all {len(levels)} plannable levels found are described for "
                     f"information. Choose the levels to treat (--levels); up to {limit} levels per session is the "
                     "usual limit in lytic disease."),
            source=MAX_LEVELS_PER_SESSION.source, severity=Severity.INFO),)
    return (Notice(
        code="more_than_3_levels",
        message=(f"{len(levels)} levels planned ({', '.join(levels)}): up to {limit} levels per session is the "
                 "usual limit in lytic disease; more levels raise the risk of cement leakage and embolism. "
                 "Myeloma shows more venous leakage. Consider staging the treatment."),
        source=MAX_LEVELS_PER_SESSION.source, severity=Severity.CAUTION),)


def needle_notices(gauge: str) -> tuple[Notice, ...]:
    """A caution when the needle is thicker than 11-gauge (10G)."""
    if gauge == "10G":
        return (Notice(
            code="needle_thicker_than_11g",
            message=(f"{JSIR_2019}: transpedicular access is usually done with an 11-gauge needle "
                     f"({NEEDLE_11G_OD_MM.value:g} mm outer diameter) or thinner; 10G is thicker."),
            source=NEEDLE_11G_OD_MM.source, severity=Severity.CAUTION),)
    return ()
