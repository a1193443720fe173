"""Parameters of the spine-column segmenter, in physical units, with the reason for each default.

All HU values refer to the lightly smoothed working grid (see :mod:`pvp_plan.segment.working_grid`).
Defaults are anatomical or physical choices of pvp-plan, not tuned to one scan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnOptions:
    """Options of :func:`pvp_plan.segment.segment_vertebral_bodies`.

    Attributes
    ----------
    work_spacing_mm : float
        Target voxel size (mm) of the working grid; finer inputs are block-averaged to it.
    smooth_mm : float
        Gaussian sigma (mm) applied on the working grid against noise.
    bone_hu : float
        Bone for canal detection (cortex and dense trabecular bone).
    csf_max_hu : float
        Upper HU of the spinal canal content (CSF, cord, epidural fat).
    wall_hu : float
        The posterior body wall is the first voxel above this anterior to the canal.
    canal_bone_anterior_mm, canal_bone_lateral_mm : float
        The canal has bone (the body) within this distance in front and (pedicles, laminae) on both sides.
    body_half_width_mm, body_depth_mm : float
        Search region of a body around the canal's midline and in front of its posterior wall (lumbar
        bodies are up to ~55 mm wide, and the canal centre found at L5-S1 can be several mm off the midline).
    soft_tissue_hu : float
        Reference soft-tissue HU used for partial-volume mid-points.
    edge_ridge_mm : float
        On the CT grid, the cortical ridge of a boundary voxel is the brightest body voxel within this
        distance (mm).
    edge_fraction : float
        A boundary voxel is body if it reaches this fraction of the way from soft tissue to the cortical
        ridge (and at least the body threshold). 0.5 is exact for a wall much thicker than the blur; for a
        thin cortex the blurred profile is lower and wider and the true surface reads higher (about
        0.57-0.9 of the way for a 0.5-2 mm cortex under a 0.6-0.9 mm point-spread, 1-D model), so 0.5
        leaves a partial-volume layer outside the body (+5 to +9 % volume on the phantom). 0.6 is the low
        end of that range: a thick wall is never peeled by more than a fraction of a voxel.
    end_search_mm : float
        Along z, each column's end slice may move to the fitted endplate surface by up to this distance (mm),
        at least one slice (:mod:`pvp_plan.segment.end_slices`): the blurred cortex and one partial slice.
        0 turns the fit off.
    slice_psf_sigma_mm : float
        Least Gaussian blur (sigma, mm) of the slice's box profile along z in that fit: the scanner's point-spread
        (~0.5-0.7 mm in body CT). Where the scan's noise is correlated between adjacent slices (overlapping,
        z-filtered or resampled slices) the blur that explains that correlation is used instead, if larger:
        too sharp a profile misreads blur spilling into the next slice as an endplate lying nearer to it.
    endplate_mm : float
        Nominal thickness (mm) of the bony endplate in that fit (about 0.3-1 mm in adults, thinnest centrally);
        its density is fitted, not assumed.
    end_smooth_mm : float
        In-plane Gaussian sigma (mm) against noise in the profiles of that fit.
    end_rim_mm : float
        Columns within this distance (mm) of a body's outline are left out of that fit (their end slice meets
        the lateral wall, not the endplate).
    end_noise_margin_mm : float
        That noise correlation is read in the soft tissue within this distance (mm) of the bodies' bounding box.
    end_evidence : float
        A column's end moves only where the fit there beats the best fit at the current end by this many times
        the residual variance (3.84: the 95 % point of chi-square with one degree of freedom).
    endplate_min_hu : float
        Lower bound of the endplate threshold (endplates are denser than trabecular bone).
    disc_pair_max_mm : float
        Two endplate peaks at most this far apart enclose a disc (disc + endplates, adults).
    body_pitch_mm : tuple of float
        Plausible distance between consecutive discs (thoracic ~20 mm to lumbosacral ~45 mm).
    disc_band_mm : float
        Largest half-thickness of the band around a disc plane where low-HU voxels are removed as disc.
    disc_band_fraction : float
        That half-thickness as a fraction of the distance to the neighbouring disc (thin thoracic discs).
    disc_shift_fraction : float
        Largest shift of a disc plane, matched to the image, as a fraction of the distance to the
        neighbouring disc (keeps it off the dark basivertebral band mid-body).
    disc_tilt_search_deg : float
        Largest sagittal tilt of a disc plane away from the spine's axis (lumbosacral angle).
    opening_mm : float
        Ball radius (mm) of the opening that detaches osteophyte bridges and vessels.
    pedicle_root_mm : float
        Radius (mm) of the in-plane disk that a body section holds and a pedicle root (narrower than
        ~16 mm where it meets the body) does not; 0 disables the cut.
    root_regrow_mm : float
        Voxels within this distance (mm) of the opened section are given back (the body's cortex).
    defect_min_depth_mm, defect_max_hu, defect_full_section_fraction, defect_min_solidity : float
        A lesion open through the cortex is added to the body (:func:`body_mask.fill_cortical_defects`)
        where its soft tissue (below ``defect_max_hu``) reaches ``defect_min_depth_mm`` inside the convex
        hull of a whole section (hull at least ``defect_full_section_fraction`` of the level's largest,
        section at least ``defect_min_solidity`` of its hull).
    posterior_section_tolerance_mm : float
        The posterior corners of each whole section are redrawn to the level's median section (taken along
        the body's axis) where they stray more than this outside or inside it: pedicle stubs, notches cut at
        the pedicle roots (:mod:`pvp_plan.segment.posterior_sections`). 0 = off.
    vessel_opening_mm : float
        Ball radius (mm) a vessel section must hold (the aorta at the hiatus is ~15-20 mm wide).
    vessel_sd_noise_factor : float
        A vessel's local SD (3 mm box) is below this multiple of the image noise (soft tissue's local SD),
        and below 35 HU at least.
    vessel_hu : tuple of float
        HU range of contrast-enhanced blood (aorta, vena cava).
    vessel_min_length_mm : float
        A homogeneous enhanced blob at least this tall is a vessel; a body is shorter than ~40 mm.
    sacrum_width_mm : float
        Bone connected to a body section and wider than this is the sacrum with its alae
        (L5 transverse processes span ~70-90 mm; sacral alae ~100-120 mm).
    min_coverage_mm : float
        Cranio-caudal coverage below which a CT cannot hold a whole vertebral body.
    """

    work_spacing_mm: float = 1.5
    smooth_mm: float = 0.7
    bone_hu: float = 150.0
    csf_max_hu: float = 70.0
    wall_hu: float = 100.0
    canal_bone_anterior_mm: float = 14.0
    canal_bone_lateral_mm: float = 16.0
    body_half_width_mm: float = 38.0
    body_depth_mm: float = 55.0
    soft_tissue_hu: float = 40.0
    edge_ridge_mm: float = 2.0
    edge_fraction: float = 0.6
    end_search_mm: float = 2.0
    slice_psf_sigma_mm: float = 0.6
    endplate_mm: float = 0.5
    end_smooth_mm: float = 1.0
    end_rim_mm: float = 1.0
    end_noise_margin_mm: float = 30.0
    end_evidence: float = 3.84
    endplate_min_hu: float = 180.0
    disc_pair_max_mm: float = 12.0
    body_pitch_mm: tuple[float, float] = (17.0, 45.0)
    disc_band_mm: float = 6.0
    disc_band_fraction: float = 0.25
    disc_shift_fraction: float = 0.2
    disc_tilt_search_deg: float = 25.0
    opening_mm: float = 2.0
    pedicle_root_mm: float = 8.0
    root_regrow_mm: float = 1.5
    defect_min_depth_mm: float = 4.0
    defect_max_hu: float = 100.0
    defect_full_section_fraction: float = 0.7
    defect_min_solidity: float = 0.5
    posterior_section_tolerance_mm: float = 1.0
    vessel_opening_mm: float = 3.0
    vessel_sd_noise_factor: float = 4.0
    vessel_hu: tuple[float, float] = (140.0, 600.0)
    vessel_min_length_mm: float = 45.0
    sacrum_width_mm: float = 90.0
    min_coverage_mm: float = 30.0

    def __post_init__(self) -> None:
        if self.work_spacing_mm <= 0 or self.smooth_mm < 0:
            raise ValueError("work_spacing_mm must be positive and smooth_mm non-negative")
        if not 0.0 < self.edge_fraction < 1.0:
            raise ValueError("edge_fraction must lie between 0 and 1 (exclusive)")
        if self.end_search_mm < 0 or self.slice_psf_sigma_mm <= 0 or self.endplate_mm <= 0:
            raise ValueError(f"end_search_mm must be >= 0 (0 = off), slice_psf_sigma_mm and endplate_mm > 0; got "
                             f"{self.end_search_mm}, {self.slice_psf_sigma_mm}, {self.endplate_mm}")
        if not self.body_pitch_mm[0] < self.body_pitch_mm[1]:
            raise ValueError("body_pitch_mm must be (shortest, longest)")
