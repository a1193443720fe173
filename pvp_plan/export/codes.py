"""Coded concepts of the DICOM exports: SNOMED CT vertebrae, UCUM units, and pvp-plan's local codes.

Standard codes come from pydicom's code dictionary (``pydicom.sr.codedict.codes``), never typed by hand:
each vertebra C1-L5 has its SNOMED CT concept (``codes.SCT.L1Vertebra`` = 66794005 "L1 vertebra").
pydicom's dictionary holds no SNOMED CT concept for the vertebral *body* alone, and none for the
transitional T13 / L6 vertebrae: segments therefore carry the vertebra's code as property type (T13 / L6:
``codes.SCT.Vertebra``), and say "vertebral body" in their label and description.

Concepts no standard names (cement fill guidance, the 5 mL caution, the plannable flag, density class)
use the private coding scheme :data:`PVP_SCHEME` ("99" prefix, DICOM PS3.16 8.2), declared in each SR's
Coding Scheme Identification Sequence.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from pvp_plan.levels import Level

#: Private coding scheme designator of pvp-plan's local concepts.
PVP_SCHEME = "99PVPPLAN"
PVP_SCHEME_NAME = "pvp-plan local codes"

#: SNOMED CT concept of each vertebra (pydicom code dictionary); T13 and L6 fall back to "Vertebra".
VERTEBRA_CODES: dict[Level, Code] = {
    **{Level(f"C{i}"): getattr(codes.SCT, f"C{i}Vertebra") for i in range(1, 8)},
    **{Level(f"T{i}"): getattr(codes.SCT, f"T{i}Vertebra") for i in range(1, 13)},
    **{Level(f"L{i}"): getattr(codes.SCT, f"L{i}Vertebra") for i in range(1, 6)},
    Level.T13: codes.SCT.Vertebra,
    Level.L6: codes.SCT.Vertebra,
}
_LEVEL_BY_CODE = {code.value: level for level, code in VERTEBRA_CODES.items() if code != codes.SCT.Vertebra}
#: TotalSegmentator-style and older SNOMED "bone structure of ..." codes that mean the same vertebra.
_EXTRA_CODES = {codes.SCT.BoneStructureOfAtlas.value: Level.C1, codes.SCT.BoneStructureOfAxis.value: Level.C2}

SEGMENT_CATEGORY = codes.SCT.AnatomicalStructure  # CID 7150 "Anatomical Structure"
UCUM_ML = Code("mL", "UCUM", "milliliter")

BODY_VOLUME = codes.SCT.Volume  # 118565006 "Volume"
FILL_GUIDANCE_LOW = Code("FILL-LOW", PVP_SCHEME, "Cement fill guidance, lower bound")
FILL_GUIDANCE_HIGH = Code("FILL-HIGH", PVP_SCHEME, "Cement fill guidance, upper bound")
EXCEEDS_5ML_CAUTION = Code("CAUTION-5ML", PVP_SCHEME, "Fill guidance exceeds the 5 mL caution (JSIR 2019 CQ5)")
POSTERIOR_WALL_BREACH = Code("PW-BREACH", PVP_SCHEME, "Posterior wall breach suspected")
PLANNABLE = Code("PLANNABLE", PVP_SCHEME, "Level plannable")
DENSITY_CLASS = Code("DENSITY-CLASS", PVP_SCHEME, "Trabecular bone density class")
YES, NO = codes.SCT.Yes, codes.SCT.No


def vertebra_code(level: Level | str) -> Code:
    """SNOMED CT code of a vertebra (``"L1"`` -> 66794005 "L1 vertebra")."""
    return VERTEBRA_CODES[Level.parse(str(getattr(level, "value", level)))]


def level_of_code(value: str, scheme: str = "SCT") -> Level | None:
    """The level a SNOMED CT vertebra code names, or None (``"Vertebra"`` alone names no level)."""
    if scheme not in ("SCT", "SRT"):
        return None
    return _LEVEL_BY_CODE.get(str(value)) or _EXTRA_CODES.get(str(value))


_DENSITY_CODE_VALUES = {"sclerotic": "DENS-SCLEROTIC", "lytic": "DENS-LYTIC", "mixed": "DENS-MIXED",
                        "osteoporotic": "DENS-OSTEOPOROT", "normal": "DENS-NORMAL"}


def density_code(density_class: str) -> Code:
    """Local code of a density class of :mod:`pvp_plan.plan.density` (``"osteoporotic"`` -> ``DENS-OSTEOPOROT``).

    Code values are SH (at most 16 characters); the meaning keeps the whole name.
    """
    key = str(getattr(density_class, "value", density_class)).strip().lower()
    value = _DENSITY_CODE_VALUES.get(key) or ("DENS-" + key.upper().replace(" ", "-"))[:16]
    return Code(value, PVP_SCHEME, f"Density class: {key}")


def yes_no(flag: bool) -> Code:
    return YES if flag else NO
