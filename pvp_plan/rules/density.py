"""Bone-density thresholds (HU) used to classify the trabecular bone of a vertebral body.

All cut-offs are options (:class:`DensityThresholds`) with documented defaults; every
classification states the thresholds it used. HU depend on the scanner, kVp and contrast
phase: the classes inform, they do not diagnose.

Sources
-------
* Pickhardt PJ et al., Ann Intern Med 2013;158:588-595 (opportunistic screening on abdominal CT, L1 trabecular
  attenuation against DXA; intravenous contrast did not change its performance there): <= 110 HU more than 90%
  specific for osteoporosis; a 160 HU threshold 90% sensitive, so values above it make osteoporosis unlikely.
* JSIR PVP guideline 2019, CQ3: PVP is not recommended for osteoblastic (sclerotic) metastases
  (hard to puncture, high injection pressure, sudden leaks).
* Soft-tissue and sclerotic cut-offs are pvp-plan defaults (soft tissue and tumour lie below
  about 60 HU; sclerotic bone is well above normal trabecular bone, roughly 100-300 HU). On the 3 mm
  abdominal reference CT (normal T12-L5) the largest cluster below 60 HU held up to 2.6% of the
  trabecular volume (noise tails at about 30 HU SD); with the noise guard (``lytic_noise_sd``) at most
  0.6%, against the 1.5% lytic share. The largest cluster above 500 HU held 0.5% (sclerotic share 5%).
"""

from __future__ import annotations

from dataclasses import dataclass

from pvp_plan.rules import Rule, cq

PICKHARDT_2013 = "Pickhardt PJ et al., Ann Intern Med 2013;158:588-595"
CQ3 = cq(3)


@dataclass(frozen=True)
class DensityThresholds:
    """HU thresholds for the trabecular-bone classification (all configurable).

    Attributes
    ----------
    osteoporosis_hu : float
        Median trabecular HU at or below which bone is in the osteoporotic range (Pickhardt 2013, L1: 110 HU).
    normal_hu : float
        Median trabecular HU at or above which osteoporosis is unlikely (Pickhardt 2013, L1: 160 HU).
    lytic_hu : float
        Voxels below this HU are soft-tissue density (possible lytic lesion).
    lytic_min_fraction : float
        Share of the trabecular volume in one connected soft-tissue-density cluster that makes the body lytic.
    lytic_noise_sd : float
        A voxel counts as soft-tissue density only if it also lies this many robust standard deviations below
        the body's median (noise and trabecular texture): a focal lytic lesion in noisy or osteoporotic bone
        may then go undetected, but noise is not read as a lesion.
    sclerotic_hu : float
        Voxels above this HU inside the trabecular region are sclerotic density.
    sclerotic_min_fraction : float
        Share of the trabecular volume above ``sclerotic_hu`` (in one cluster) that makes the body sclerotic.
    cortex_margin_mm : float
        Distance from the body surface (mm) excluded from the trabecular statistics (cortex, partial volume).
    """

    osteoporosis_hu: float = 110.0
    normal_hu: float = 160.0
    lytic_hu: float = 60.0
    lytic_min_fraction: float = 0.015
    lytic_noise_sd: float = 3.0
    sclerotic_hu: float = 500.0
    sclerotic_min_fraction: float = 0.05
    cortex_margin_mm: float = 3.0

    def __post_init__(self) -> None:
        if not self.osteoporosis_hu <= self.normal_hu:
            raise ValueError(f"osteoporosis_hu ({self.osteoporosis_hu}) must not exceed normal_hu ({self.normal_hu})")
        if not self.lytic_hu < self.osteoporosis_hu:
            raise ValueError(f"lytic_hu ({self.lytic_hu}) must be below osteoporosis_hu ({self.osteoporosis_hu})")
        if not self.normal_hu < self.sclerotic_hu:
            raise ValueError(f"sclerotic_hu ({self.sclerotic_hu}) must exceed normal_hu ({self.normal_hu})")
        for name in ("lytic_min_fraction", "sclerotic_min_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)}")
        if self.lytic_noise_sd < 0:
            raise ValueError(f"lytic_noise_sd must be >= 0, got {self.lytic_noise_sd}")
        if self.cortex_margin_mm < 0:
            raise ValueError(f"cortex_margin_mm must be >= 0, got {self.cortex_margin_mm}")

    def rules(self) -> tuple[Rule, ...]:
        """These thresholds as :class:`Rule` objects with their sources (stated in every output)."""
        return (
            Rule(name="osteoporotic range", unit="HU (median trabecular)", source=PICKHARDT_2013,
                 value=self.osteoporosis_hu, note="L1, abdominal CT: <= 110 HU more than 90% specific"),
            Rule(name="osteoporosis unlikely", unit="HU (median trabecular)", source=PICKHARDT_2013,
                 value=self.normal_hu, note="L1, abdominal CT: a 160 HU threshold is 90% sensitive"),
            Rule(name="soft-tissue (lytic) density", unit="HU", source="pvp-plan default", value=self.lytic_hu,
                 note=f"lytic when one cluster below it (and {self.lytic_noise_sd:g} robust SD below the median) holds "
                      f">= {self.lytic_min_fraction:.1%} of the trabecular volume"),
            Rule(name="sclerotic density", unit="HU", source="pvp-plan default", value=self.sclerotic_hu,
                 note=f"sclerotic when one cluster above it holds >= {self.sclerotic_min_fraction:.0%} "
                      "of the trabecular volume; CQ3: PVP not recommended for osteoblastic metastases"),
            Rule(name="cortex margin", unit="mm", source="pvp-plan default", value=self.cortex_margin_mm),
        )

    def to_dict(self) -> dict:
        return dict(self.__dict__)


DEFAULT_THRESHOLDS = DensityThresholds()
