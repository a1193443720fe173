"""Report images: a sagittal reconstruction with bodies coloured by level, and axial views at findings.

Matplotlib with the Agg backend only (no display); images come back as PNG bytes.
Display conventions: sagittal with anterior on the left and cranial at the top; axial with anterior at
the top and the patient's left on the image right (radiological convention).
"""

from __future__ import annotations

import io

import numpy as np

from pvp_plan.needle.draw import VERDICT_RGBA

#: CT display window (HU) of the report images (bone window).
WINDOW_HU = (-250.0, 1000.0)
_FLAG_COLOUR = "#ff3b30"


def _figure(width_in: float, height_in: float):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=110)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.05, facecolor="black")
    return buf.getvalue()


def level_colour(label: int) -> tuple[float, float, float]:
    """A stable colour per VerSe label (tab20 palette)."""
    from matplotlib import colormaps

    return tuple(colormaps["tab20"](label % 20)[:3])


def _needle_segments(plan, level_plan):
    """(entry, target) LPS pairs of a level's needle paths that have both points."""
    out = []
    for p in level_plan.needle_paths:
        entry = p.skin_entry_lps_mm or p.bone_entry_lps_mm
        if entry is not None and p.target_lps_mm is not None:
            out.append((np.asarray(entry, dtype=float), np.asarray(p.target_lps_mm, dtype=float), p.verdict))
    return out


def _draw_needle_paths(ax, ct, segments, h_axis: int, v_axis: int) -> None:
    """Draw (entry, target, verdict) paths projected on the image plane spanned by array axes ``h_axis``
    (horizontal) and ``v_axis`` (vertical), in mm at voxel centres (index x spacing); target marked x; coloured by
    verdict as in napari (``pvp_plan.needle.draw.VERDICT_RGBA``: safe cyan, safe but unverified yellow, unsafe
    red)."""
    sp = ct.spacing_mm
    for entry, target, verdict in segments:
        e, t = ct.lps_to_index(entry), ct.lps_to_index(target)
        colour = VERDICT_RGBA[verdict]
        ax.plot([e[h_axis] * sp[h_axis], t[h_axis] * sp[h_axis]], [e[v_axis] * sp[v_axis], t[v_axis] * sp[v_axis]],
                color=colour, lw=1.5)
        ax.plot(t[h_axis] * sp[h_axis], t[v_axis] * sp[v_axis], marker="x", color=colour, ms=6)


def _curved_sagittal(ct, seg) -> tuple[np.ndarray, np.ndarray]:
    """(z, y) HU and label images through the spine: at each slice the column x follows the body centroids.

    The label image takes each body from a +-4 mm slab around that column, so a slightly lateral body
    still shows. Outside the bodies' z range the nearest centroid's x is used.
    """
    sz, sy, sx = ct.spacing_mm
    if seg.bodies:
        idx = np.array([ct.lps_to_index(b.centroid_lps_mm) for b in seg.bodies])
        order = np.argsort(idx[:, 0])
        x_of_z = np.interp(np.arange(ct.shape[0]), idx[order, 0], idx[order, 2])
    else:
        x_of_z = np.full(ct.shape[0], ct.shape[2] / 2)
    cols = np.clip(np.round(x_of_z).astype(int), 0, ct.shape[2] - 1)
    half = max(1, int(round(4.0 / sx)))
    img = np.empty(ct.shape[:2], dtype=np.float32)
    lab = np.zeros(ct.shape[:2], dtype=seg.labels.dtype)
    for z, x in enumerate(cols):
        img[z] = ct.hu[z, :, x]
        lab[z] = seg.labels[z, :, max(x - half, 0):x + half + 1].max(axis=1)
    return img, lab


def sagittal_png(plan) -> bytes:
    """Curved sagittal reconstruction along the spine, each body outlined in its level colour, flags marked."""
    ct, seg = plan.ct, plan.segmentation
    sz, sy, sx = ct.spacing_mm
    labels = seg.labels
    img, lab = _curved_sagittal(ct, seg)
    zs, ys = np.nonzero(labels.any(axis=2))
    if zs.size:
        pad_z, pad_y = int(30 / sz), int(40 / sy)
        z_lo, z_hi = max(zs.min() - pad_z, 0), min(zs.max() + pad_z + 1, ct.shape[0])
        y_lo, y_hi = max(ys.min() - pad_y, 0), min(ys.max() + pad_y + 1, ct.shape[1])
    else:
        z_lo, z_hi, y_lo, y_hi = 0, ct.shape[0], 0, ct.shape[1]
    img, lab = img[z_lo:z_hi, y_lo:y_hi], lab[z_lo:z_hi, y_lo:y_hi]
    h_mm, w_mm = img.shape[0] * sz, img.shape[1] * sy
    fig = _figure(5.0, 5.0 * h_mm / max(w_mm, 1.0))
    ax = fig.add_axes([0, 0, 1, 1])
    # (left, right, bottom, top) in mm at voxel edges; voxel centres sit at index * spacing
    ext = ((y_lo - 0.5) * sy, (y_hi - 0.5) * sy, (z_lo - 0.5) * sz, (z_hi - 0.5) * sz)
    cy, cz = np.arange(y_lo, y_hi) * sy, np.arange(z_lo, z_hi) * sz
    ax.imshow(img, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], origin="lower", extent=ext,
              interpolation="bilinear")
    by_label = {lp.label: lp for lp in plan.levels}
    for body in seg.bodies:
        m = (lab == body.label).astype(float)
        if not m.any():
            continue
        colour = level_colour(body.label)
        ax.contourf(cy, cz, m, levels=[0.5, 1.5], colors=[colour], alpha=0.30)
        ax.contour(cy, cz, m, levels=[0.5], colors=[colour], linewidths=1.2)
        zc = np.nonzero(m.any(axis=1))[0].mean()
        yc = np.nonzero(m.any(axis=0))[0].min()
        lp = by_label.get(body.label)
        flagged = lp is not None and bool(lp.flags)
        text = body.level.value + (" !" if flagged else "") + ("" if lp is None or lp.plannable else " (n/p)")
        ax.text((y_lo + yc) * sy - 4, (z_lo + zc) * sz, text, color=_FLAG_COLOUR if flagged else "white",
                fontsize=9, fontweight="bold", ha="right", va="center",
                bbox={"facecolor": "black", "alpha": 0.6, "pad": 1.5, "edgecolor": "none"})
        if lp is not None and lp.wall is not None and lp.wall.flag and lp.wall.location_zyx is not None:
            zz, yy, _ = lp.wall.location_zyx
            ax.plot(yy * sy, zz * sz, marker="o", ms=12, mfc="none", mec=_FLAG_COLOUR, mew=2)
    for lp in plan.levels:
        _draw_needle_paths(ax, ct, _needle_segments(plan, lp), h_axis=1, v_axis=0)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.text(ext[0] + 2, ext[3] - 2, "A", color="white", fontsize=10, va="top")
    ax.text(ext[1] - 2, ext[3] - 2, "P", color="white", fontsize=10, va="top", ha="right")
    ax.set_axis_off()
    return _png(fig)


def axial_png(plan, level_plan, *, z_index: float | None = None, marker_zyx: tuple[float, float, float] | None = None
              ) -> bytes:
    """Axial image of one level at ``z_index`` (default: the body centre), body outlined, finding circled."""
    ct, seg = plan.ct, plan.segmentation
    sz, sy, sx = ct.spacing_mm
    mask = seg.labels == level_plan.label
    idx = np.argwhere(mask)
    if z_index is None:
        z_index = marker_zyx[0] if marker_zyx is not None else idx[:, 0].mean()
    z = int(np.clip(round(float(z_index)), 0, ct.shape[0] - 1))
    y_lo, y_hi = max(idx[:, 1].min() - int(20 / sy), 0), min(idx[:, 1].max() + int(45 / sy), ct.shape[1])
    x_lo, x_hi = max(idx[:, 2].min() - int(30 / sx), 0), min(idx[:, 2].max() + int(30 / sx), ct.shape[2])
    img = ct.hu[z, y_lo:y_hi, x_lo:x_hi].astype(np.float32)
    m = mask[z, y_lo:y_hi, x_lo:x_hi].astype(float)
    ext = ((x_lo - 0.5) * sx, (x_hi - 0.5) * sx, (y_hi - 0.5) * sy, (y_lo - 0.5) * sy)  # anterior at the top
    fig = _figure(4.0, 4.0 * (img.shape[0] * sy) / max(img.shape[1] * sx, 1.0))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(img, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], extent=ext, interpolation="bilinear")
    if m.any():
        ax.contour(np.arange(x_lo, x_hi) * sx, np.arange(y_lo, y_hi) * sy, m, levels=[0.5],
                   colors=[level_colour(level_plan.label)], linewidths=1.2)
    if marker_zyx is not None:
        ax.plot(marker_zyx[2] * sx, marker_zyx[1] * sy, marker="o", ms=16, mfc="none", mec=_FLAG_COLOUR, mew=2)
    _draw_needle_paths(ax, ct, _needle_segments(plan, level_plan), h_axis=2, v_axis=1)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.text(ext[0] + 2, ext[3] + 2, "R", color="white", fontsize=10, va="top")
    ax.text(ext[1] - 2, ext[3] + 2, "L", color="white", fontsize=10, va="top", ha="right")
    ax.text(ext[0] + 2, ext[2] - 2, f"{level_plan.level}  z={z}", color="white", fontsize=9, va="bottom")
    ax.set_axis_off()
    return _png(fig)


def level_sagittal_png(plan, level_plan) -> bytes:
    """Sagittal close-up of one body through its centre (anterior left), outlined, heights written on it; the
    level's needle paths projected on it (they run lateral to this plane)."""
    ct, seg = plan.ct, plan.segmentation
    sz, sy, sx = ct.spacing_mm
    mask = seg.labels == level_plan.label
    idx = np.argwhere(mask)
    x = int(round(float(idx[:, 2].mean())))
    z_lo, z_hi = max(idx[:, 0].min() - int(15 / sz), 0), min(idx[:, 0].max() + int(15 / sz) + 1, ct.shape[0])
    y_lo, y_hi = max(idx[:, 1].min() - int(15 / sy), 0), min(idx[:, 1].max() + int(25 / sy) + 1, ct.shape[1])
    img = ct.hu[z_lo:z_hi, y_lo:y_hi, x].astype(np.float32)
    m = mask[z_lo:z_hi, y_lo:y_hi, x].astype(float)
    ext = ((y_lo - 0.5) * sy, (y_hi - 0.5) * sy, (z_lo - 0.5) * sz, (z_hi - 0.5) * sz)
    fig = _figure(4.0, 4.0 * (img.shape[0] * sz) / max(img.shape[1] * sy, 1.0))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(img, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], origin="lower", extent=ext,
              interpolation="bilinear")
    if m.any():
        ax.contour(np.arange(y_lo, y_hi) * sy, np.arange(z_lo, z_hi) * sz, m, levels=[0.5],
                   colors=[level_colour(level_plan.label)], linewidths=1.2)
    _draw_needle_paths(ax, ct, _needle_segments(plan, level_plan), h_axis=1, v_axis=0)
    c = level_plan.collapse
    if c is not None:
        text = "A/M/P " + " / ".join("—" if v is None else f"{v:.0f}" for v in (c.anterior_mm, c.middle_mm,
                                                                               c.posterior_mm)) + " mm"
        ax.text(ext[0] + 2, ext[2] + 2, text, color="white", fontsize=9, va="bottom",
                bbox={"facecolor": "black", "alpha": 0.6, "pad": 1.5, "edgecolor": "none"})
    ax.text(ext[0] + 2, ext[3] - 2, f"{level_plan.level}  A", color="white", fontsize=9, va="top")
    ax.text(ext[1] - 2, ext[3] - 2, "P", color="white", fontsize=9, va="top", ha="right")
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_axis_off()
    return _png(fig)
