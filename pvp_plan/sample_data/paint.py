"""Painting the scene into HU and masks: materials blended in anatomical order, then PSF and noise.

Shelled solids (bone) are painted in two passes, all shells then all cores, so a joint between two
parts of one bone never shows an internal cortical wall.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pvp_plan.levels import Level
from pvp_plan.sample_data.render import Grid, composite, union_into
from pvp_plan.sample_data.scene import Scene, ZEllipse

#: Material values (HU) before blur, partial volume and noise.
MATERIALS_HU: dict[str, float] = {
    "air": -1000.0,
    "lung": -850.0,
    "bowel_gas": -950.0,
    "fat": -100.0,
    "mesenteric_fat": -90.0,
    "skin": 40.0,
    "muscle": 50.0,
    "bowel_wall": 45.0,
    "bowel_fluid": 15.0,
    "liver": 60.0,
    "kidney": 140.0,
    "csf": 25.0,
    "cord": 35.0,
    "vessel_wall": 40.0,
    "aortic_blood": 300.0,
    "ivc_blood": 130.0,
    "calcification": 1100.0,
    "disc_annulus": 95.0,
    "disc_nucleus": 75.0,
    "cortical_bone": 1300.0,
    "trabecular_bone": 200.0,
    "cancellous_arch": 260.0,
    "rib_marrow": 240.0,
    "sclerotic": 900.0,
    "lytic": 35.0,
    "breach": 50.0,
    "impaction": 420.0,
}

#: Bone of an osteoporotic spine, to override :data:`MATERIALS_HU` (``generate_phantom(materials_hu=...)``):
#: trabecular bone at 80 HU, inside the range where an L1 attenuation of 110 HU or less was more than 90 % specific
#: for osteoporosis (Pickhardt PJ et al., Ann Intern Med 2013;158:588-595) and as dense as the discs (75-95 HU);
#: a thinned cortex (700 HU over the same 1 mm: a phantom choice); the arch, sacrum and rib marrow as sparse.
OSTEOPOROTIC_BONE_HU: dict[str, float] = {
    "trabecular_bone": 80.0,
    "cortical_bone": 700.0,
    "cancellous_arch": 140.0,
    "rib_marrow": 120.0,
}

#: Texture amplitude (HU, standard deviation) of cancellous bone; correlation length (mm).
TRABECULAR_TEXTURE_SD_HU = 35.0
TEXTURE_SIGMA_MM = 0.7


class LocalAcc:
    """A union-occupancy accumulator on the bounding box of a set of solids."""

    def __init__(self, grid: Grid, solids: list) -> None:
        boxes = [s.bbox() for s in solids]
        lo = np.min([b[0] for b in boxes], axis=0)
        hi = np.max([b[1] for b in boxes], axis=0)
        self.sl = grid.box_slices(lo, hi)
        shape = tuple(s.stop - s.start for s in self.sl) if self.sl else (0, 0, 0)
        self.acc = np.zeros(shape, np.float32)

    def add(self, sl, frac) -> None:
        if self.sl is None:
            return
        local = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(sl, self.sl, strict=True))
        union_into(self.acc, local, frac)

    def paint(self, target: np.ndarray, value, *, only_empty: bool = True) -> None:
        """Write ``value`` where the union occupancy exceeds 0.5 (majority)."""
        if self.sl is None:
            return
        view = target[self.sl]
        sel = self.acc > 0.5
        if only_empty:
            sel &= view == 0
        view[sel] = value

    def mask(self, shape: tuple[int, int, int]) -> np.ndarray:
        out = np.zeros(shape, bool)
        self.paint(out, True, only_empty=False)
        return out


class Painter:
    """Blends solids into a float32 HU volume on ``grid``; texture and noise from ``seed``."""

    def __init__(self, grid: Grid, *, seed: int, supersample_mm: float,
                 materials_hu: dict[str, float] | None = None) -> None:
        self.grid = grid
        self.materials_hu = dict(materials_hu or MATERIALS_HU)
        self.hard = grid.supersampling(supersample_mm)
        self.soft = grid.supersampling(1.0)
        rng = np.random.default_rng(seed)
        self._texture_seed = int(rng.integers(2**31))
        self._noise_seed = int(rng.integers(2**31))
        self._texture_count = 0
        self.hu = np.full(grid.shape, self.materials_hu["air"], np.float32)

    def texture(self, sl, sd: float = TRABECULAR_TEXTURE_SD_HU) -> np.ndarray:
        """Correlated Gaussian texture (HU) on the box ``sl``; a fresh deterministic draw per call."""
        self._texture_count += 1
        shape = tuple(s.stop - s.start for s in sl)
        rng = np.random.default_rng([self._texture_seed, self._texture_count])
        field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32),
                                        [TEXTURE_SIGMA_MM / s for s in self.grid.spacing_mm], mode="nearest")
        return field * (sd / (float(field.std()) or 1.0))

    def paint(self, solid, material: str, *, soft: bool = False, acc: LocalAcc | None = None,
              inner_material: str | None = None):
        """Blend one solid (and its core, if ``inner_material``); returns ``(slices, outer, inner)`` or None."""
        res = self.grid.fractions(solid, self.soft if soft else self.hard)
        if res is None:
            return None
        sl, outer, inner = res
        composite(self.hu, sl, outer, self.materials_hu[material])
        if inner is not None and inner_material is not None:
            composite(self.hu, sl, inner, self.materials_hu[inner_material])
        if acc is not None:
            acc.add(sl, outer)
        return res

    def paint_bone(self, solids: list, core_material: str, acc: LocalAcc | None = None) -> list:
        """Shells of all ``solids`` (cortical bone), then their textured cores."""
        results = [r for r in (self.grid.fractions(s, self.hard) for s in solids) if r is not None]
        for sl, outer, _ in results:
            composite(self.hu, sl, outer, self.materials_hu["cortical_bone"])
            if acc is not None:
                acc.add(sl, outer)
        for sl, _, inner in results:
            if inner is not None:
                composite(self.hu, sl, inner, self.materials_hu[core_material] + self.texture(sl))
        return results

    def paint_2d(self, solid, material: str, factor: int = 4) -> None:
        """Blend a z-invariant solid: supersampled in-plane once, applied to every slice."""
        g = self.grid
        ny, nx = g.shape[1:]
        sy, sx = g.spacing_mm[1:]
        yf = g.origin_lps_mm[1] + ((np.arange(ny * factor) + 0.5) / factor - 0.5) * sy
        xf = g.origin_lps_mm[0] + ((np.arange(nx * factor) + 0.5) / factor - 0.5) * sx
        inside = solid.inside(xf[None, :], yf[:, None], np.zeros((1, 1)))[0]
        frac = inside.reshape(ny, factor, nx, factor).mean(axis=(1, 3)).astype(np.float32)
        self.hu += frac[None] * (self.materials_hu[material] - self.hu)

    def image(self, *, psf_sigma_mm: float, noise_sd_hu: float) -> np.ndarray:
        """Blur by the PSF, add (slightly in-plane correlated) Gaussian noise, round to int16 HU."""
        hu = self.hu
        if psf_sigma_mm > 0:
            hu = ndimage.gaussian_filter(hu, [psf_sigma_mm / s for s in self.grid.spacing_mm], mode="nearest")
        if noise_sd_hu > 0:
            noise = np.random.default_rng(self._noise_seed).standard_normal(self.grid.shape, dtype=np.float32)
            noise = ndimage.gaussian_filter(noise, (0.0, 0.45, 0.45), mode="wrap")
            noise *= noise_sd_hu / float(noise.std())
            hu += noise
        np.clip(hu, -1024, 3071, out=hu)
        return np.rint(hu).astype(np.int16)


def paint_scene(scene: Scene, *, seed: int, supersample_mm: float, psf_sigma_mm: float, noise_sd_hu: float,
                materials_hu: dict[str, float] | None = None):
    """Render ``scene`` with ``materials_hu`` (default :data:`MATERIALS_HU`): returns ``(hu_int16, body_labels,
    body_fractions, masks)``."""
    p = Painter(scene.grid, seed=seed, supersample_mm=supersample_mm, materials_hu=materials_hu)
    _paint_soft_tissue(p, scene)
    canal_acc = LocalAcc(scene.grid, scene.canal)
    for s in scene.canal:
        p.paint(s, "csf", acc=canal_acc)
    for s in scene.cord:
        p.paint(s, "cord")
    aorta_acc = _paint_vessels(p, scene)
    for s in scene.discs:
        p.paint(s, "disc_annulus", inner_material="disc_nucleus")
    body_labels = np.zeros(scene.grid.shape, np.uint8)
    body_fracs, vert_accs = {}, []
    for m in scene.vertebrae:
        sl, outer, acc = _paint_vertebra(p, m)
        body_labels[sl][outer > 0.5] = Level(m.name).label
        body_fracs[m.name] = (sl, outer)
        vert_accs.append((acc, Level(m.name).label))
    rib_solids = [c for caps in scene.ribs.values() for c in caps]
    rib_acc = LocalAcc(scene.grid, rib_solids) if rib_solids else None
    if rib_solids:
        p.paint_bone(rib_solids, "rib_marrow", rib_acc)
    sacrum_acc = None
    if scene.sacrum_body is not None:
        solids = [scene.sacrum_body] + scene.sacrum_parts
        sacrum_acc = LocalAcc(scene.grid, solids)
        p.paint_bone(solids, "cancellous_arch", sacrum_acc)
    hu = p.image(psf_sigma_mm=psf_sigma_mm, noise_sd_hu=noise_sd_hu)
    del p
    masks = _masks(scene.grid.shape, body_labels, vert_accs, rib_acc, sacrum_acc, aorta_acc, canal_acc)
    return hu, body_labels, body_fracs, masks


def _paint_soft_tissue(p: Painter, scene: Scene) -> None:
    t = scene.torso
    layers = [(0.0, "skin"), (t["skin"], "fat"), (t["fat"], "muscle"), (t["fat"] + t["wall"], "mesenteric_fat")]
    for inset, material in layers:
        p.paint_2d(ZEllipse(0.0, t["center_y"], t["a"] - inset, t["b"] - inset), material)
    for solid, material in scene.organs:
        p.paint(solid, material, soft=True)
    for s in scene.psoas + scene.paraspinal:
        p.paint(s, "muscle", soft=True)


def _paint_vessels(p: Painter, scene: Scene) -> LocalAcc:
    for s in scene.ivc:
        p.paint(s, "ivc_blood", soft=True)
    acc = LocalAcc(scene.grid, scene.aorta["outer"])
    for s in scene.aorta["outer"]:
        p.paint(s, "vessel_wall", acc=acc)
    for s in scene.aorta["lumen"]:
        p.paint(s, "aortic_blood")
    p.paint(scene.aorta["patch"], "calcification")
    return acc


def _paint_vertebra(p: Painter, m):
    """Arch shells, body shell, arch cores, body core, then planted lesions; returns the body's fractions."""
    acc = LocalAcc(p.grid, [m.body] + m.arch)
    arch = [r for r in (p.grid.fractions(bar, p.hard) for bar in m.arch) if r is not None]
    for sl, outer, _ in arch:
        composite(p.hu, sl, outer, p.materials_hu["cortical_bone"])
        acc.add(sl, outer)
    sl, outer, inner = p.grid.fractions(m.body, p.hard)
    composite(p.hu, sl, outer, p.materials_hu["cortical_bone"])
    acc.add(sl, outer)
    for a_sl, _, a_inner in arch:  # pedicle cores open the body's posterior wall at the junction
        composite(p.hu, a_sl, a_inner, p.materials_hu["cancellous_arch"] + p.texture(a_sl))
    composite(p.hu, sl, inner, p.materials_hu["trabecular_bone"] + p.texture(sl))
    for solid, material in m.lesions:
        r = p.grid.fractions(solid, p.hard)
        if r is not None:
            extra = p.texture(r[0]) if material in ("sclerotic", "impaction") else 0.0
            composite(p.hu, r[0], r[1], p.materials_hu[material] + extra)
    return sl, outer, acc


def _masks(shape, body_labels, vert_accs, rib_acc, sacrum_acc, aorta_acc, canal_acc) -> dict:
    vert = np.zeros(shape, np.uint8)
    for acc, label in vert_accs:
        acc.paint(vert, label)
    vert[body_labels > 0] = body_labels[body_labels > 0]
    bone = vert > 0
    masks = {"vertebra_labels": vert}
    for name, acc in (("ribs", rib_acc), ("sacrum", sacrum_acc)):
        masks[name] = acc.mask(shape) & ~bone if acc is not None else np.zeros(shape, bool)
    masks["aorta"] = aorta_acc.mask(shape)
    masks["canal"] = canal_acc.mask(shape) & ~bone & ~masks["sacrum"]
    return masks
