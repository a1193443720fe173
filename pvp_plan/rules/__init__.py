"""Clinical rules as data: every threshold and guideline figure, with its unit and source.

Sub-modules group them by topic (``cement``, ``density``, ``collapse``, ``needle``...).
A newcomer should find every number the tool uses to inform a decision here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The sources quoted in messages. Short tags are what messages start with ("CQ5: ...").
JSIR_2019 = "JSIR PVP guideline 2019"


def cq(number: int) -> str:
    """Full source string of a clinical question of the JSIR 2019 guideline, e.g. ``cq(5)``."""
    return f"{JSIR_2019}, CQ{number}"


@dataclass(frozen=True)
class Rule:
    """A guideline figure or threshold.

    Attributes
    ----------
    name : str
        What it is, e.g. ``"fill fraction"``.
    unit : str
        Unit of ``low``/``high``/``value`` (``"mL"``, ``"fraction of body volume"``, ``"HU"``, ``"mm"``).
    source : str
        Where the figure comes from (guideline CQ, paper, or "pvp-plan default" when it is a tool choice).
    value, low, high : float or None
        A single value, or a range.
    note : str
        How the figure may be read (e.g. "one reference; no fixed upper limit").
    """

    name: str
    unit: str
    source: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.value is None and self.low is None and self.high is None:
            raise ValueError(f"rule {self.name!r} needs a value or a range")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"rule {self.name!r}: low {self.low} > high {self.high}")
        if not self.source:
            raise ValueError(f"rule {self.name!r} needs a source")

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}
