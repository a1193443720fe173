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
BODY_OUTLINE_HU = Rule(name="body outline threshold (air / soft tissue)", unit="HU", value=-500.0,
                       source="pvp-plan default")
LUNG_HU = Rule(name="lung inside the body outline", unit="HU", high=-400.0, source="pvp-plan safety check")
TARGET_DEPTH_FRACTION: dict[str, Rule] = {
    "anterior_third": Rule(name="tip depth from the anterior cortex, fraction of body AP depth", unit="fraction",
                           value=0.25, source=cq(5), note="tip inside the anterior third"),
    "anterior_quarter": Rule(name="tip depth from the anterior cortex, fraction of body AP depth", unit="fraction",
                             value=0.15, source=cq(5), note="tip inside the anterior quarter"),
}
PATH_SOFT_TISSUE_GAP_MM = Rule(name="soft tissue crossed between the bone entry and the tip", unit="mm", value=1.0,
                               source="pvp-plan safety check",
                               note="a transpedicular needle stays in bone from its entry to its tip; a run of soft "
                                    "tissue this long means it leaves the pedicle or passes between two bones")
ANTERIOR_CORTEX_CLEARANCE_MM = Rule(name="tip clearance to the anterior cortex", unit="mm", value=3.0,
                                    source="pvp-plan safety check")
#: Published pedicle morphometry that could be read and checked (abstracts, PMC full texts). The classic series
#: (Zindrick MR et al., Spine 1987;12:160; Panjabi MM et al., Spine 1991;16:888-901 thoracic and Spine 1992
#: lumbar) were not re-checked against their tables, so they are not cited for these figures.
_LIEN_2007 = "Lien SB et al., Eur Spine J 2007;16:1215-1222"
_KAUR_2016 = "Kaur K et al., J Clin Orthop Trauma 2016;7:101-108"
#: Level means by CT: T1 9.3, narrowest T4 4.5, T12 8.3 mm (Kaur 2016); per pedicle 3.4-7.7 mm at T1-T10
#: (Lien 2007).
PEDICLE_WIDTH_THORACIC_MM = Rule(name="thoracic pedicle isthmus width", unit="mm", low=4.0, high=8.0,
                                 source=f"{_KAUR_2016} (CT level means T4 4.5 to T12 8.3 mm); {_LIEN_2007}",
                                 note="T4-T12 typical range of level means; T1-T2 wider; single pedicles fall below 4")
#: Per pedicle 7.2-17.8 mm at T11-L5 (Lien 2007, 15 dry-bone spines).
PEDICLE_WIDTH_LUMBAR_MM = Rule(name="lumbar pedicle isthmus width", unit="mm", low=7.0, high=18.0,
                               source=f"{_LIEN_2007} (7.2-17.8 mm, T11-L5)")

# --- is the path transpedicular at all? (pvp_plan.needle.planner._transpedicular_notices) ---
_MORPHOMETRY = f"{_LIEN_2007}; {_KAUR_2016}"
#: Isthmus height (cranio-caudal). Published means run from about 10 mm (mid-thoracic) to about 15-16 mm (T12-L2);
#: Lien 2007 gives 8.6-13.7 mm at T1-T10 and 13.9-16.7 mm at T11-L5 (safe-zone height).
#: The pedicle arises from the cranial half of the body, so its centre lies at least half the smallest height below
#: the body's superior endplate (``pvp_plan.needle.isthmus._pedicle_band_mm``).
PEDICLE_HEIGHT_MM = Rule(name="pedicle isthmus height", unit="mm", low=10.0, high=18.0, source=_MORPHOMETRY,
                         note="T4-L5 typical range of means")
#: Cortex of the pedicle isthmus. An imaged cortex is never thinner than the voxel along the measured direction,
#: so the apparent cortex is ``max(value, voxel)``; a "pedicle" narrower than ``PEDICLE_SLIVER_FACTOR`` x that
#: is one cortical plate (or partial volume), not a bone bridge with two walls.
#: Medial wall thicker than lateral: Zellner AA et al., J Orthop Surg Res 2024;19:668 (thoracic CT, 768 pedicles).
#: Kothe R et al., Spine 1996 (thoracic pedicle architecture) is the usual citation but was not re-checked here;
#: "about 1 mm" is a round figure (CT medial walls T1-L5 0.75-0.92 mm in scoliosis, PMID 38408520).
PEDICLE_CORTEX_MM = Rule(name="pedicle isthmus cortical thickness", unit="mm", value=1.0,
                         source="Zellner AA et al., J Orthop Surg Res 2024;19:668 (thoracic pedicles: medial cortex "
                                "thicker than lateral); about 1 mm: pvp-plan round figure",
                         note="apparent thickness on CT: max(this, voxel size along the measured direction)")
PEDICLE_SLIVER_FACTOR = Rule(name="smallest isthmus width or height, in apparent cortical thicknesses",
                             unit="factor", value=1.5, source="pvp-plan safety check",
                             note="two walls need at least 2 thicknesses; below 1.5 the section is a single plate")
#: Width / height of the isthmus. Published means run from about 0.35 (mid-thoracic, about 4.5 x 12 mm) to about
#: 1.25 (L5, about 16 x 13 mm); the range is about half the smallest and 1.6 x the largest mean.
PEDICLE_WIDTH_TO_HEIGHT = Rule(name="pedicle isthmus width / height", unit="ratio", low=0.2, high=2.0,
                               source=_MORPHOMETRY, note="outside it the section read is not a pedicle's")
#: Mean transverse pedicle angle (convergence from the sagittal plane, degrees) of the lumbar levels, as commonly
#: quoted from Zindrick 1987 (L1 about 11, L2 12, L3 14, L4 18, L5 30 degrees). The per-level values could not be
#: checked against the paper's table; only the trend (rising from L1 to L5) is confirmed (Lien 2007).
PEDICLE_TRANSVERSE_ANGLE_DEG: dict[str, Rule] = {
    lv: Rule(name=f"{lv} mean transverse pedicle angle", unit="deg", value=v,
             source="Zindrick MR et al., Spine 1987;12:160 (values as commonly quoted, not re-checked against "
                    f"its table; L1-to-L5 rise confirmed by {_LIEN_2007})")
    for lv, v in {"L1": 10.9, "L2": 12.0, "L3": 14.4, "L4": 17.7, "L5": 29.8}.items()
}
#: How far the needle's mediolateral angle may fall below the level's mean transverse pedicle angle: a needle
#: through the isthmus centre that converges 10 degrees less than the pedicle lies about 3 mm off its axis 15 mm
#: behind the isthmus (about a lumbar pedicle's length), i.e. beyond the wall of a 7 mm pedicle for an 11G needle.
TRANSPEDICULAR_ANGLE_TOLERANCE_DEG = Rule(name="needle convergence below the mean transverse pedicle angle",
                                          unit="deg", value=10.0, source=f"pvp-plan safety check; {_MORPHOMETRY}")
#: Mediolateral needle angle of a transpedicular path at any level (positive = converging). Thoracic pedicles
#: converge about 30-35 degrees at T1 (CT level means 35.4, Kaur 2016; 31.6, Kim JH et al., J Korean Neurosurg
#: Soc 2009;46:181-188) and about 0 at T12 (means -9.8, Kaur 2016, to +3, Demiroz S, Erdem S, Turk Neurosurg,
#: doi:10.5137/1019-5149.JTN.26848-19.2): some T11-T12 pedicles point laterally. The needle converges more than
#: the pedicle to reach the midline, but beyond about 45 degrees it runs along the canal.
TRANSPEDICULAR_ML_ANGLE_DEG = Rule(name="mediolateral angle of a transpedicular needle", unit="deg",
                                   low=-10.0, high=45.0, source=f"pvp-plan safety check; {_MORPHOMETRY}")

# --- spinal canal read on the CT (pvp_plan.needle.canal.canal_extent_mm) ---
#: A slice's canal is read from the body's posterior wall to its back, and from the midline to its lateral wall.
#: Outside these bounds the slice's canal is a misread (leaked out through an open arch, or a sliver left between
#: bones) and the level's other slices are used. Adult thoracolumbar canals: midsagittal depth about 13-20 mm
#: (lumbar, down to about 10 mm in stenosis), interpediculate distance about 17-30 mm (T10-L5).
CANAL_DEPTH_MM = Rule(name="spinal canal depth behind the body's posterior wall", unit="mm", low=8.0, high=26.0,
                      source="Eisenstein, J Bone Joint Surg Br 1977; Hinck et al., AJR 1966",
                      note="bounds for a plausible read, wider than the normal adult range")
CANAL_HALF_WIDTH_MM = Rule(name="spinal canal half-width (half the interpediculate distance)", unit="mm", low=6.0,
                           high=17.0, source="Hinck et al., AJR 1966",
                           note="bounds for a plausible read, wider than the normal adult range")
