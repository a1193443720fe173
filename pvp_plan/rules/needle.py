"""Needle rules: gauges, bone margins, HU cut-offs and published pedicle widths (issue 5)."""

from __future__ import annotations

from pvp_plan.rules import Rule, cq

#: Outer diameter of bone-biopsy / vertebroplasty needles (Stubs gauge table).
GAUGE_OD_MM: dict[str, Rule] = {
    "10G": Rule(name="10G needle outer diameter", unit="mm", value=3.40, source="Stubs wire gauge (standard needle OD)"),
    "11G": Rule(name="11G needle outer diameter", unit="mm", value=3.05, source="Stubs wire gauge (standard needle OD)"),
    "13G": Rule(name="13G needle outer diameter", unit="mm", value=2.41, source="Stubs wire gauge (standard needle OD)"),
}
#: Thinnest first: the order in which thinner gauges are suggested.
GAUGES_THIN_TO_THICK = ("13G", "11G", "10G")

RECOMMENDED_GAUGE = Rule(name="recommended needle gauge", unit="G", value=11.0, source=cq(5),
                         note="11G or thinner")
BONE_MARGIN_MM = Rule(name="bone left on each side of the needle in the pedicle isthmus", unit="mm", value=1.0,
                      source="pvp-plan safety check", note="flag when isthmus width < OD + 2 x margin")
BONE_HU = Rule(name="bone threshold", unit="HU", value=200.0, source="pvp-plan default",
               note="between soft tissue (< 100 HU) and pedicle cortex; an option of the planner")
BODY_OUTLINE_HU = Rule(name="body outline threshold (air / soft tissue)", unit="HU", value=-500.0,
                       source="pvp-plan default")
LUNG_HU = Rule(name="lung inside the body outline", unit="HU", high=-400.0, source="pvp-plan safety check")
TARGET_DEPTH_FRACTION: dict[str, Rule] = {
    "anterior_third": Rule(name="tip depth from the anterior cortex, fraction of body AP depth", unit="fraction",
                           value=0.25, source=cq(5), note="tip inside the anterior third"),
    "anterior_quarter": Rule(name="tip depth from the anterior cortex, fraction of body AP depth", unit="fraction",
                             value=0.15, source=cq(5), note="tip inside the anterior quarter"),
}
ANTERIOR_CORTEX_CLEARANCE_MM = Rule(name="tip clearance to the anterior cortex", unit="mm", value=3.0,
                                    source="pvp-plan safety check")
PEDICLE_WIDTH_THORACIC_MM = Rule(name="thoracic pedicle isthmus width", unit="mm", low=4.0, high=8.0,
                                 source="Zindrick et al., Spine 1987; Panjabi et al., Spine 1992",
                                 note="T4-T12 typical range; T1-T2 wider")
PEDICLE_WIDTH_LUMBAR_MM = Rule(name="lumbar pedicle isthmus width", unit="mm", low=7.0, high=18.0,
                               source="Zindrick et al., Spine 1987; Panjabi et al., Spine 1992")
CORTEX_EDGE_HU = Rule(name="outer cortex edge for isthmus widths", unit="HU", value=400.0,
                      source="pvp-plan default", note="about half-way from soft tissue to pedicle cortex (FWHM edge)")
