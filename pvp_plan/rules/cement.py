"""Cement-volume figures (JSIR PVP guideline 2019, CQ5) and their biomechanical context.

CQ5 sets no fixed upper limit for cement. One reference it cites puts sufficient fill at
50-70% of the vertebral-body volume; several reports advise 5 mL or less, usually 3-5 mL,
injected from the anterior body and stopped when cement reaches the posterior third, or at
once on any leak. The 50-70% figure almost always exceeds 5 mL: pvp-plan shows both and never
hides the conflict. The operator decides during the procedure.
"""

from __future__ import annotations

from pvp_plan.rules import Rule, cq

CQ5 = cq(5)
#: The effect of vertebral body percentage fill on mechanical behavior during percutaneous vertebroplasty
#: (PMID 12865843): 120 osteoporotic cadaver bodies T6-L5; mean fill 16.2% restored strength, 29.8% stiffness,
#: both weakly correlated (r2 0.21, 0.27). The 16% / 30% figures are this paper's (its abstract), not those of
#: Belkoff et al., Spine 2001.
MOLLOY_2003 = "Molloy S et al., Spine 2003;28:1549-54, PMID 12865843 (cadaver study)"
MYELOMA_STUDY = "PVP + zoledronic acid myeloma study"

#: Fraction of the body volume one CQ5 reference calls sufficient fill.
FILL_FRACTION = Rule(
    name="sufficient fill fraction", unit="fraction of body volume", source=CQ5, low=0.50, high=0.70,
    note="one reference cited by CQ5; CQ5 sets no fixed upper limit",
)
#: The volume several reports cited by CQ5 advise not to exceed.
CAUTION_VOLUME_ML = Rule(
    name="volume caution", unit="mL", source=CQ5, value=5.0,
    note="several reports advise 5 mL or less; not a fixed limit",
)
#: The volume usually injected per level.
USUAL_VOLUME_ML = Rule(name="usual injected volume", unit="mL", source=CQ5, low=3.0, high=5.0)
#: Where injection stops: when cement reaches the posterior third of the body (plane at 2/3 of the AP depth).
POSTERIOR_THIRD_FRACTION = Rule(
    name="posterior-third stop plane", unit="fraction of antero-posterior depth from the anterior cortex",
    source=CQ5, value=2.0 / 3.0,
    note="inject from the anterior body; stop when cement reaches the posterior third, or at once on any leak",
)
#: Typical volumes injected in myeloma (thoracic, lumbar).
TYPICAL_MYELOMA_ML = {
    "thoracic": Rule(name="typical volume, myeloma, thoracic", unit="mL", source=MYELOMA_STUDY, value=2.5),
    "lumbar": Rule(name="typical volume, myeloma, lumbar", unit="mL", source=MYELOMA_STUDY, value=4.5),
}
#: Typical volumes injected for osteoporotic fractures (thoracic, lumbar).
TYPICAL_OSTEOPOROTIC_ML = {
    "thoracic": Rule(name="typical volume, osteoporotic, thoracic", unit="mL", source=CQ5, value=3.0),
    "lumbar": Rule(name="typical volume, osteoporotic, lumbar", unit="mL", source=CQ5, value=5.0),
}
#: Biomechanical context (not guideline): fill that restored strength and stiffness in cadaver vertebrae.
MOLLOY_STRENGTH_FILL = Rule(
    name="fill restoring strength", unit="fraction of body volume", source=MOLLOY_2003, value=0.16,
    note="context from cadaver studies, not a guideline recommendation; 16.2% on average, weakly correlated "
         "(r2 0.21)",
)
MOLLOY_STIFFNESS_FILL = Rule(
    name="fill restoring stiffness", unit="fraction of body volume", source=MOLLOY_2003, value=0.30,
    note="context from cadaver studies, not a guideline recommendation; 29.8% on average, weakly correlated "
         "(r2 0.27)",
)

#: CQ5's own words on what to do, quoted whenever the fill guidance exceeds the 5 mL caution.
CQ5_PROCEDURE_ADVICE = (
    "CQ5 sets no fixed upper limit: decide the volume during the procedure; inject from the anterior body "
    "and stop when cement reaches the posterior third of the body, or at once on any leak"
)

ALL = (FILL_FRACTION, CAUTION_VOLUME_ML, USUAL_VOLUME_ML, POSTERIOR_THIRD_FRACTION, *TYPICAL_MYELOMA_ML.values(),
       *TYPICAL_OSTEOPOROTIC_ML.values(), MOLLOY_STRENGTH_FILL, MOLLOY_STIFFNESS_FILL)
