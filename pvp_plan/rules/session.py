"""Per-session and per-level planning rules: levels per session, needle, plannability.

Sources: JSIR PVP guideline 2019 and the PVP + zoledronic-acid myeloma study quoted in the brief.
"""

from __future__ import annotations

from pvp_plan.rules import JSIR_2019, Rule
from pvp_plan.rules.cement import MYELOMA_STUDY

#: Usual maximum of levels treated in one session for lytic disease.
MAX_LEVELS_PER_SESSION = Rule(
    name="levels per session", unit="levels", source=f"{JSIR_2019}; {MYELOMA_STUDY}", value=3,
    note="usual limit in lytic disease: more levels raise the leakage and cement-embolism risk",
)
#: Outer diameter of the 11-gauge needle, the largest usually used (transpedicular access).
NEEDLE_11G_OD_MM = Rule(name="11-gauge needle outer diameter", unit="mm", source=JSIR_2019, value=3.05,
                        note="transpedicular access with an 11-gauge needle or thinner")
#: Needle tip target: anterior third of the body.
NEEDLE_TARGET_FRACTION = Rule(name="needle tip target", unit="fraction of antero-posterior depth from anterior",
                              source=JSIR_2019, high=1.0 / 3.0, note="tip in the anterior third of the body")
#: Below these confidences a level is not planned (its name or shape is too uncertain): pvp-plan choices.
MIN_LEVEL_CONFIDENCE = Rule(name="minimum level-naming confidence", unit="0-1",
                            source="pvp-plan default", value=0.5)
MIN_SEGMENTATION_CONFIDENCE = Rule(name="minimum segmentation confidence", unit="0-1",
                                   source="pvp-plan default", value=0.5)

#: Smaller "bodies" are segmentation fragments, not vertebrae (cervical bodies hold about 3 mL or more).
MIN_BODY_VOLUME_ML = Rule(name="minimum body volume", unit="mL", source="pvp-plan default", value=1.5)

NEEDLE_GAUGES = ("10G", "11G", "13G")
NEEDLE_TARGETS = ("anterior_third", "anterior_quarter")

ALL = (MAX_LEVELS_PER_SESSION, NEEDLE_11G_OD_MM, NEEDLE_TARGET_FRACTION, MIN_LEVEL_CONFIDENCE,
       MIN_SEGMENTATION_CONFIDENCE, MIN_BODY_VOLUME_ML)
