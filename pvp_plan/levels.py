"""Vertebral levels and label conventions.

pvp-plan labels vertebral bodies with the VerSe numbering:
C1-C7 = 1-7, T1-T12 = 8-19, L1-L5 = 20-24, L6 = 25, T13 = 28
(Sekuboyina et al., VerSe, Medical Image Analysis 2021).
TotalSegmentator v2 ``total`` task numbers whole vertebrae differently
(S1 = 26, L5 = 27 ... L1 = 31, T12 = 32 ... T1 = 43, C7 = 44 ... C1 = 50).
"""

from __future__ import annotations

from enum import Enum


class Region(str, Enum):
    CERVICAL = "cervical"
    THORACIC = "thoracic"
    LUMBAR = "lumbar"


class Level(str, Enum):
    """A vertebral level, convertible to and from its VerSe label.

    >>> Level("L1").label
    20
    >>> Level.from_label(19)
    <Level.T12: 'T12'>
    """

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"
    C6 = "C6"
    C7 = "C7"
    T1 = "T1"
    T2 = "T2"
    T3 = "T3"
    T4 = "T4"
    T5 = "T5"
    T6 = "T6"
    T7 = "T7"
    T8 = "T8"
    T9 = "T9"
    T10 = "T10"
    T11 = "T11"
    T12 = "T12"
    T13 = "T13"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"
    L5 = "L5"
    L6 = "L6"

    @classmethod
    def parse(cls, text: str) -> Level:
        """Parse a level name case-insensitively (``"l1"`` -> ``Level.L1``); raise ValueError naming the choices."""
        try:
            return cls(text.strip().upper())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown vertebral level {text!r}; expected one of {names}") from None

    @property
    def label(self) -> int:
        """VerSe label value."""
        return VERSE_LABELS[self]

    @classmethod
    def from_label(cls, label: int) -> Level:
        try:
            return _LEVEL_BY_LABEL[int(label)]
        except KeyError:
            raise ValueError(f"{label} is not a VerSe vertebra label (1-25, 28)") from None

    @property
    def region(self) -> Region:
        if self.value.startswith("C"):
            return Region.CERVICAL
        if self.value.startswith("T"):
            return Region.THORACIC
        return Region.LUMBAR

    @property
    def order(self) -> int:
        """Cranio-caudal rank: C1 = 0, increasing caudally (T13 sits between T12 and L1, L6 after L5)."""
        return _ORDER.index(self)

    def shifted(self, steps: int) -> Level:
        """The level ``steps`` positions caudal (positive) or cranial (negative) in the standard C1-L5 column."""
        standard = _STANDARD_ORDER
        if self not in standard:
            raise ValueError(f"{self.value} is transitional; shift from a standard level")
        i = standard.index(self) + steps
        if not 0 <= i < len(standard):
            raise ValueError(f"no level {steps:+d} from {self.value}")
        return standard[i]


_ORDER = [Level(f"C{i}") for i in range(1, 8)] + [Level(f"T{i}") for i in range(1, 14)] + [
    Level(f"L{i}") for i in range(1, 7)
]
_STANDARD_ORDER = [lv for lv in _ORDER if lv not in (Level.T13, Level.L6)]

VERSE_LABELS: dict[Level, int] = {
    **{Level(f"C{i}"): i for i in range(1, 8)},
    **{Level(f"T{i}"): 7 + i for i in range(1, 13)},
    **{Level(f"L{i}"): 19 + i for i in range(1, 6)},
    Level.L6: 25,
    Level.T13: 28,
}
_LEVEL_BY_LABEL = {v: k for k, v in VERSE_LABELS.items()}

#: TotalSegmentator v2 ``total`` task label of each whole vertebra.
TOTALSEGMENTATOR_TOTAL_LABELS: dict[Level, int] = {
    **{Level(f"L{i}"): 32 - i for i in range(1, 6)},
    **{Level(f"T{i}"): 44 - i for i in range(1, 13)},
    **{Level(f"C{i}"): 51 - i for i in range(1, 8)},
}
#: TotalSegmentator label of S1 (the sacrum), used as an anatomical anchor below L5.
TOTALSEGMENTATOR_S1_LABEL = 26
