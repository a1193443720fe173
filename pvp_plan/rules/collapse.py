"""Vertebral collapse grading (Genant semi-quantitative method), vertebra plana, and posterior-wall thresholds.

Height loss is the largest of: anterior or middle height below the level's own posterior
height (wedge, biconcave), and any height below the same height of the measured neighbours
(crush). Grades follow Genant et al., J Bone Miner Res 1993;8:1137-48.
"""

from __future__ import annotations

from pvp_plan.rules import JSIR_2019, Rule
from pvp_plan.rules.cement import MYELOMA_STUDY

GENANT_1993 = "Genant HK et al., J Bone Miner Res 1993;8:1137-48"

#: Height loss below which no fracture grade is given (grade 0).
GENANT_MILD = Rule(name="Genant grade 1 (mild)", unit="fraction of height lost", source=GENANT_1993,
                   low=0.20, high=0.25)
GENANT_MODERATE = Rule(name="Genant grade 2 (moderate)", unit="fraction of height lost", source=GENANT_1993,
                       low=0.25, high=0.40)
GENANT_SEVERE = Rule(name="Genant grade 3 (severe)", unit="fraction of height lost", source=GENANT_1993,
                     low=0.40, note="more than 40% height loss")
#: Height loss from which the body is called vertebra plana (near-complete collapse): a pvp-plan choice.
VERTEBRA_PLANA = Rule(
    name="vertebra plana", unit="fraction of height lost", source="pvp-plan default (near-complete collapse)",
    value=0.70, note="access and cement filling are difficult in a flattened body; the operator judges feasibility",
)



def genant_grade(height_loss: float | None) -> int | None:
    """Genant semi-quantitative grade (0-3) of a height-loss fraction, or None when not measured.

    >>> genant_grade(0.1), genant_grade(0.22), genant_grade(0.3), genant_grade(0.5)
    (0, 1, 2, 3)
    """
    if height_loss is None:
        return None
    if height_loss > GENANT_SEVERE.low:
        return 3
    if height_loss >= GENANT_MODERATE.low:
        return 2
    if height_loss >= GENANT_MILD.low:
        return 1
    return 0


GRADE_NAMES = {0: "none", 1: "mild", 2: "moderate", 3: "severe"}

# --- Posterior wall ------------------------------------------------------------------------------------------
#: Why a breach matters, quoted in every breach message.
WALL_BREACH_RISK = ("a destroyed posterior wall raises the risk of cement entering the spinal canal; "
                    "myeloma PVP series excluded such levels")
WALL_SOURCE = f"{JSIR_2019}; {MYELOMA_STUDY}"
#: Lowest HU across the posterior boundary still read as bone. At 3 mm voxels the thin posterior cortex blurs
#: to trabecular values (about 100-200 HU on normal lumbar bodies), so a gap is soft tissue across the whole
#: profile (tumour 40-60 HU, canal 0-20 HU), not merely a faint cortex.
WALL_BONE_HU = Rule(name="posterior wall bone density", unit="HU", source="pvp-plan default", value=90.0,
                    note="a wall point is a gap when no sample within 3 mm either side of the wall reaches it")
#: A gap patch grows from its soft-tissue core to wall points below this fraction of the wall's median HU
#: (hysteresis), so the blurred rim of a hole in a bright cortex counts with it; never below WALL_BONE_HU.
WALL_GAP_GROW_FRACTION = Rule(name="gap rim", unit="fraction of the median posterior-wall HU",
                              source="pvp-plan default", value=0.5)
#: How far behind the fitted wall surface a boundary point must lie to count as protruding into the canal.
WALL_PROTRUSION_MM = Rule(name="posterior protrusion", unit="mm", source="pvp-plan default", value=4.0,
                          note="normal lumbar walls deviate up to about 3 mm from the fitted surface at 3 mm voxels")
#: Smallest share of the assessed wall, in one connected patch, that is flagged as a breach.
WALL_MIN_PATCH_FRACTION = Rule(name="breach patch", unit="fraction of the assessed posterior wall",
                               source="pvp-plan default", value=0.08,
                               note="smaller gaps include the normal basivertebral-vein foramen")
#: Smallest cranio-caudal length (mm) of a flagged patch.
WALL_MIN_LENGTH_MM = Rule(name="breach length", unit="mm", source="pvp-plan default", value=5.0)

ALL = (GENANT_MILD, GENANT_MODERATE, GENANT_SEVERE, VERTEBRA_PLANA, WALL_BONE_HU, WALL_GAP_GROW_FRACTION,
       WALL_PROTRUSION_MM,        WALL_MIN_PATCH_FRACTION, WALL_MIN_LENGTH_MM)
