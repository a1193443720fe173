"""Result types of transpedicular needle planning (issue 5 fills in the planner).

All points are LPS (x, y, z) in millimetres; angles in degrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pvp_plan.messages import Notice

#: Cautions after which a path that passes every safety check is reported "safe_unverified", not "safe": on the
#: shared real CT (abdomen L1-L5 and chest T12, planned on the reference bodies and on pvp-plan's own), 3 of the 8
#: paths called safe with an isthmus figure outside its published range left the reference vertebra over 3-7 mm of
#: their bone course, none of the 10 without one; the needle crossing the pedicle's superior wall marks the only
#: path called safe that leaves the vertebra on the study's perturbed bodies (reference grown by a slice, L4 right)
#: and one of the three above (2026-11-22, ``benchmarks/study_needle_robustness.py``).
UNVERIFIED_BY = frozenset({"isthmus_outside_published_range", "breaches_superior_wall"})
#: Each verdict in a word, for narrow tables (the terminal's, the report's and the napari plugin's) ...
VERDICT_SHORT = {"safe": "ok", "safe_unverified": "chk", "unsafe": "NO"}
#: ... and what the words mean, for their legends.
VERDICT_LEGEND = ("ok = every safety check passed; chk = passed, but a caution says it may leave the pedicle (check "
                  "it on the images); NO = not acceptable; - = no path on that side")


@dataclass(frozen=True)
class PedicleMeasurement:
    """Isthmus of one pedicle (narrowest cross-section), cortex included, in mm."""

    side: str  # "left" or "right" (patient side)
    width_mm: float | None  # mediolateral
    height_mm: float | None  # cranio-caudal; the shortest of the isthmus section tilted toward the axis
    isthmus_center_lps_mm: tuple[float, float, float] | None
    axis_lps: tuple[float, float, float] | None = None  # unit, pointing anteriorly into the body
    axis_mediolateral_angle_deg: float | None = None  # same conventions as NeedlePath's angles
    axis_craniocaudal_angle_deg: float | None = None


@dataclass(frozen=True)
class NeedlePath:
    """One planned transpedicular path for one level and side.

    ``safe`` is False when no acceptable straight path exists; ``notices`` then say why.
    Points may be None when the pedicle could not be found.
    """

    level: str
    side: str  # "left" / "right" (patient side)
    gauge: str  # "10G", "11G", "13G"
    pedicle: PedicleMeasurement
    skin_entry_lps_mm: tuple[float, float, float] | None
    bone_entry_lps_mm: tuple[float, float, float] | None
    target_lps_mm: tuple[float, float, float] | None
    mediolateral_angle_deg: float | None
    craniocaudal_angle_deg: float | None
    skin_to_target_mm: float | None
    bone_entry_to_target_mm: float | None
    min_distance_to_medial_wall_mm: float | None
    min_distance_to_inferior_wall_mm: float | None
    safe: bool
    notices: tuple[Notice, ...] = field(default_factory=tuple)
    unipedicular_reaches_midline: bool | None = None  # this path alone reaches the anterior-third midline
    target_offset_from_midline_mm: float | None = None
    skin_entry_slice_index: int | None = None  # axial slice (z index) of the skin entry on the internal grid
    min_distance_to_superior_wall_mm: float | None = None  # as the inferior: from the path to the pedicle's roof

    @property
    def verdict(self) -> str:
        """``"safe"``: every safety check passed and the pedicle reading is within its published ranges;
        ``"safe_unverified"``: every check passed, but a caution in ``UNVERIFIED_BY`` says the path may leave the
        pedicle (an isthmus figure outside its published range, or the needle through the pedicle's roof): check
        the pedicle and the path on the images before relying on either; ``"unsafe"``."""
        if not self.safe:
            return "unsafe"
        return "safe_unverified" if any(n.code in UNVERIFIED_BY for n in self.notices) else "safe"

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["verdict"] = self.verdict
        d["pedicle"] = dict(self.pedicle.__dict__)
        d["notices"] = [n.to_dict() for n in self.notices]
        return d


def verdicts_in_words(paths: Sequence[NeedlePath], mark: Callable[[str, str], str] | None = None) -> str:
    """A level's paths as ``left/right`` words (``VERDICT_SHORT``; ``-`` for a side without a path), an em dash
    when it has none; ``mark(verdict, word)`` may dress each word (e.g. the terminal's colour)."""
    if not paths:
        return "\u2014"
    by_side = {p.side: p.verdict for p in paths}
    words = []
    for side in ("left", "right"):
        verdict = by_side.get(side)
        word = "-" if verdict is None else VERDICT_SHORT[verdict]
        words.append(word if verdict is None or mark is None else mark(verdict, word))
    return "/".join(words)
