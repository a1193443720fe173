"""Structured messages: every statement the tool makes carries its source.

A :class:`Notice` is what the CLI prints, the report shows and ``plan.json`` stores.
``source`` names where the statement comes from: a guideline clinical question
("JSIR PVP guideline 2019, CQ5"), a paper ("Molloy 2003"), a DICOM rule, or
"pvp-plan measurement" for purely technical observations about the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum


class Severity(str, Enum):
    """How strongly a notice should be read."""

    INFO = "info"
    CAUTION = "caution"
    WARNING = "warning"


@dataclass(frozen=True)
class Notice:
    """One message with its source.

    Parameters
    ----------
    code : str
        Stable machine-readable identifier, e.g. ``"fill_exceeds_5ml"``.
    message : str
        Plain-language text, starting with its short source tag, e.g. ``"CQ5: ..."``.
    source : str
        Full reference of the statement, e.g. ``"JSIR PVP guideline 2019, CQ5"``.
    severity : Severity
        info, caution or warning.
    """

    code: str
    message: str
    source: str
    severity: Severity = Severity.INFO

    def __post_init__(self) -> None:
        if not self.code or not self.message or not self.source:
            raise ValueError("a Notice needs a code, a message and a source")
        object.__setattr__(self, "severity", Severity(self.severity))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = self.severity.value
        return d

    def __str__(self) -> str:
        return self.message
