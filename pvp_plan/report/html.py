"""report.html: one self-contained page (images inline as base64 PNG), readable on a phone.

Sections: disclaimer, case notices, sagittal overview, the level table, one card per level (fill guidance
with the 5 mL caution beside it, posterior-third stop volume, density, collapse, posterior wall, needle
paths, warnings with sources, an axial image at each finding), the thresholds used, and the disclaimer again.
"""

from __future__ import annotations

import base64
import html

from pvp_plan.needle.types import VERDICT_LEGEND, verdicts_in_words
from pvp_plan.report.figures import axial_png, level_colour, level_sagittal_png, sagittal_png

_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;
 padding:12px;line-height:1.45;color:#1c1c1e;background:#f2f2f7;font-size:16px}
main{max-width:1000px;margin:0 auto}
h1{font-size:1.4rem;margin:.2em 0}h2{font-size:1.15rem;margin:1.2em 0 .4em}h3{font-size:1.05rem;margin:.2em 0}
.card{background:#fff;border-radius:10px;padding:12px 14px;margin:10px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.disclaimer{background:#fff4e5;border-left:5px solid #ff9500;padding:10px 12px;border-radius:6px;font-weight:600}
.meta{color:#555;font-size:.85rem;word-break:break-word}
.notice{margin:6px 0;padding:8px 10px;border-radius:6px;border-left:5px solid #8e8e93;background:#fafafa}
.notice.caution{border-color:#ff9500;background:#fff8ef}.notice.warning{border-color:#ff3b30;background:#fff1f0}
.src{display:block;color:#666;font-size:.8rem;margin-top:2px}
.figs{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
figure{margin:0;flex:1 1 260px;max-width:380px}figure.overview{max-width:520px;margin:0 auto}figure img{width:100%;height:auto;border-radius:6px;display:block;background:#000}
figcaption{font-size:.85rem;color:#444;margin-top:4px}
.tablewrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.88rem;background:#fff}
th,td{border-bottom:1px solid #e5e5ea;padding:4px 5px;text-align:right;white-space:nowrap}th{white-space:normal;vertical-align:bottom}
th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:#fff}
.flag{color:#c00;font-weight:700}.na{color:#888}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:4px;vertical-align:middle}
dl.kv{display:grid;grid-template-columns:minmax(9em,max-content) 1fr;gap:2px 12px;margin:6px 0}
dl.kv dt{color:#555}dl.kv dd{margin:0}
.conflict{background:#fff8ef;border:1px dashed #ff9500;border-radius:6px;padding:6px 8px;margin:6px 0}
.context{color:#555;font-style:italic}
@media (max-width:600px){body{padding:6px;font-size:15px}figure{max-width:100%}.card{padding:10px}dl.kv{grid-template-columns:1fr}
 dl.kv dt{font-weight:600;color:#333;margin-top:4px}}
"""


def _e(v) -> str:
    return html.escape(str(v))


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _num(v, fmt: str = "{:.1f}", unit: str = "") -> str:
    return '<span class="na">not measured</span>' if v is None else _e(fmt.format(v) + unit)


def _notice(n) -> str:
    return (f'<div class="notice {_e(n.severity.value)}">{_e(n.message)}'
            f'<span class="src">Source: {_e(n.source)}</span></div>')


def _swatch(label: int) -> str:
    r, g, b = (int(255 * c) for c in level_colour(label))
    return f'<span class="swatch" style="background:rgb({r},{g},{b})"></span>'


def _table(plan) -> str:
    head = ("<tr><th>Level</th><th>Plannable</th><th>Body mL</th><th>Fill 50-70% mL</th><th>&gt; 5 mL</th>"
            "<th>Ant. 2/3 mL</th><th>Density</th><th>HU med.</th><th>A/M/P mm</th><th>Genant</th>"
            "<th>Post. wall</th><th>Needle L/R</th></tr>")
    rows = []
    for lp, r in zip(plan.levels, plan.table_rows(), strict=True):
        fill = "—" if r["fill_low_ml"] is None else f"{r['fill_low_ml']:.1f}-{r['fill_high_ml']:.1f}"
        heights = "/".join("—" if r[k] is None else f"{r[k]:.0f}" for k in ("anterior_mm", "middle_mm", "posterior_mm"))
        dens = r["density_class"] or "—"
        dens_cls = ' class="flag"' if dens in ("sclerotic", "lytic", "mixed") else ""
        grade = "—" if r["genant_grade"] is None else str(r["genant_grade"])
        grade_cls = ' class="flag"' if (r["genant_grade"] or 0) >= 1 else ""
        wall = "—" if r["wall_breach"] is None else ("BREACH " + r["wall_breach_side"] if r["wall_breach"] else "no breach")
        wall_cls = ' class="flag"' if r["wall_breach"] else ""
        rows.append(
            f"<tr><td>{_swatch(lp.label)}{_e(lp.level)}</td><td>{'yes' if lp.plannable else 'no'}</td>"
            f"<td>{_e('—' if r['body_volume_ml'] is None else r['body_volume_ml'])}</td><td>{_e(fill)}</td>"
            f"<td>{_e('—' if r['exceeds_5ml_caution'] is None else ('yes' if r['exceeds_5ml_caution'] else 'no'))}</td>"
            f"<td>{_e('—' if r['posterior_third_stop_ml'] is None else r['posterior_third_stop_ml'])}</td>"
            f"<td{dens_cls}>{_e(dens)}</td><td>{_e('—' if r['hu_median'] is None else int(r['hu_median']))}</td>"
            f"<td>{_e(heights)}</td><td{grade_cls}>{_e(grade)}</td><td{wall_cls}>{_e(wall)}</td>"
            f"<td>{_e(verdicts_in_words(lp.needle_paths))}</td></tr>")
    legend = f"<p class='context'>Needle L/R: {_e(VERDICT_LEGEND)}. Each level's card says why.</p>"
    return f'<div class="tablewrap"><table>{head}{"".join(rows)}</table></div>{legend}'


#: A needle path's verdict (``NeedlePath.verdict``) in the level card; the notices saying why follow the card.
_VERDICT_HTML = {
    "safe": "acceptable (every safety check passed)",
    "safe_unverified": ("<b class='flag'>acceptable but UNVERIFIED</b>: every safety check passed, but a caution "
                        "below says the path may leave the pedicle: check the pedicle and the path on the images "
                        "before relying on either"),
    "unsafe": "<b class='flag'>NOT acceptable</b> (warnings below)",
}

#: Level notices summarised once in the "Cement volume" card instead of repeated on every level.
_SUMMARISED = ("fill_exceeds_5ml", "posterior_third_stop", "typical_volume", "biomechanics_context",
               "not_plannable")  # the reason is shown in red at the top of the card


def _cement_card(plan) -> str:
    """CQ5's figures and advice, stated once, with the conflict spelled out."""
    from pvp_plan.rules import cement

    fills = [lp.fill for lp in plan.levels if lp.fill is not None]
    if not fills:
        return ""
    over = [lp.level for lp in plan.levels if lp.fill is not None and lp.fill.exceeds_5ml_caution]
    conflict = (f"<p class='conflict'>For {_e(', '.join(over))} the 50-70% figure exceeds the "
                f"{cement.CAUTION_VOLUME_ML.value:g} mL caution. Both figures are shown; neither is hidden.</p>"
                if over else "")
    return (
        "<h2>Cement volume (JSIR 2019, CQ5)</h2><div class='card'>"
        "<ul><li><b>No fixed upper limit</b> for cement (CQ5).</li>"
        "<li>One reference puts sufficient fill at <b>50-70% of the vertebral-body volume</b>.</li>"
        "<li>Several reports advise <b>5 mL or less</b>; usually 3-5 mL is injected.</li>"
        "<li>Inject from the anterior body; <b>stop when cement reaches the posterior third</b> of the body "
        "(the 'anterior 2/3' volume per level below), or <b>at once on any leak</b>.</li>"
        "<li>Typical volumes: myeloma about 2.5 mL thoracic / 4.5 mL lumbar; osteoporotic fractures about "
        "3 / 5 mL.</li></ul>" + conflict +
        "<p class='context'>Context, not guideline: in cadaver studies about 16% fill restored strength and about "
        "30% restored stiffness (Molloy 2003).</p><p>The operator decides the volume during the procedure.</p>"
        "</div>")


def _level_card(plan, lp) -> str:
    parts = [f'<section class="card" id="{_e(lp.level)}"><h3>{_swatch(lp.label)}{_e(lp.level)}'
             + (f' — <span class="flag">{_e(", ".join(lp.flags))}</span>' if lp.flags else "") + "</h3>"]
    if not lp.plannable:
        parts.append(f'<p class="flag">Not plannable: {_e(lp.not_plannable_reason)}</p>')
    kv = []
    if lp.body_volume_ml is not None:
        kv.append(("Body volume", f"{lp.body_volume_ml:.1f} mL (one-voxel band {lp.volume_low_ml:.1f}-"
                                  f"{lp.volume_high_ml:.1f} mL at {'x'.join(f'{v:g}' for v in lp.voxel_size_mm)} mm voxels)"))
    f = lp.fill
    if f is not None:
        kv.append(("CQ5 fill 50-70%", f"{f.low_ml:.1f}-{f.high_ml:.1f} mL (one reference; no fixed upper limit)"))
        kv.append(("Anterior 2/3 (to the posterior third)", _num(f.posterior_third_stop_ml, unit=" mL")))
    d = lp.density
    if d is not None:
        kv.append(("Density", f"{_e(d.density_class)}: median {d.hu_median:.0f} HU (mean {d.hu_mean:.0f}, 5-95% "
                              f"{d.hu_p05:.0f}-{d.hu_p95:.0f}); soft-tissue cluster {d.lytic_cluster_fraction:.0%}, "
                              f"sclerotic cluster {d.sclerotic_cluster_fraction:.0%}"
                              + (f"<br><small>{_e(d.osteoporosis_note)}</small>" if d.osteoporosis_note else "")))
    c = lp.collapse
    if c is not None:
        loss = "not measured" if c.height_loss is None else f"{c.height_loss:.0%}"
        margins = ("" if c.anterior_margin_mm is None or c.posterior_margin_mm is None else
                   f"; margins (fitted) anterior {c.anterior_margin_mm:.1f} / posterior {c.posterior_margin_mm:.1f} mm")
        kv.append(("Heights A/M/P", f"{_num(c.anterior_mm)} / {_num(c.middle_mm)} / {_num(c.posterior_mm)} mm "
                                    f"(along the spine axis{margins}); height loss {loss}, Genant grade "
                                    f"{'—' if c.genant_grade is None else c.genant_grade} ({_e(c.genant_name or '—')})"
                                    + (" — <b>vertebra plana</b>" if c.vertebra_plana else "")))
    w = lp.wall
    if w is not None:
        text = (f"<b class='flag'>BREACH</b>: {_e(w.finding)}, {_e(w.side)}, {w.craniocaudal_length_mm:.0f} mm "
                f"cranio-caudal, {w.missing_fraction:.0%} of the wall, confidence {w.confidence:.2f}"
                if w.flag else f"{_e(w.finding)}; confidence {w.confidence:.2f}")
        kv.append(("Posterior wall", text))
    if lp.needle_paths:
        lines = []
        for p in lp.needle_paths:
            lines.append(f"{_e(p.side)} {_e(p.gauge)}: {_VERDICT_HTML[p.verdict]}"
                         + (f", {p.skin_to_target_mm:.0f} mm skin to target" if p.skin_to_target_mm else ""))
        kv.append(("Needle paths", "<br>".join(lines)))
    parts.append('<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in kv) + "</dl>")
    if f is not None and f.exceeds_5ml_caution:
        parts.append(f'<div class="conflict">CQ5 figures conflict: 50-70% of this body is {f.low_ml:.1f}-'
                     f'{f.high_ml:.1f} mL, above the {f.caution_ml:g} mL caution (see "Cement volume" above).</div>')
    if f is not None:
        parts.append(f'<p class="context">Context, not guideline (Molloy 2003, cadaver): 16% fill = '
                     f'{f.context_strength_ml:.1f} mL, 30% = {f.context_stiffness_ml:.1f} mL here.</p>')
    images = []
    if w is not None and w.flag and w.location_zyx is not None:
        images.append((axial_png(plan, lp, marker_zyx=w.location_zyx), f"{lp.level}: posterior wall breach (circled)"))
    if d is not None and d.density_class in ("sclerotic", "lytic", "mixed") and d.location_zyx is not None:
        images.append((axial_png(plan, lp, marker_zyx=d.location_zyx), f"{lp.level}: {d.density_class} region (circled)"))
    if c is not None and (c.genant_grade or 0) >= 1:
        images.append((level_sagittal_png(plan, lp), f"{lp.level}: sagittal through the body centre (collapse)"))
    if lp.needle_paths and not images:
        tz = [plan.ct.lps_to_index(p.target_lps_mm)[0] for p in lp.needle_paths if p.target_lps_mm is not None]
        images.append((axial_png(plan, lp, z_index=float(sum(tz) / len(tz)) if tz else None),
                       f"{lp.level}: needle paths (entry to target)"))
    if images:
        parts.append('<div class="figs">' + "".join(
            f"<figure>{_img(png, cap)}<figcaption>{_e(cap)}</figcaption></figure>" for png, cap in images) + "</div>")
    shown = [n for n in lp.warnings if n.code not in _SUMMARISED]
    parts.append("".join(_notice(n) for n in shown))
    parts.append("</section>")
    return "".join(parts)


#: What the measurements cannot see, stated in every report (the tool never claims more than the evidence).
LIMITS = (
    "Posterior wall: gaps are read as soft-tissue density across the wall and protrusion as the body outline "
    "bulging behind the wall; tumour in the canal that the segmentation left out is not assessed.",
    "Lytic regions are only counted where they lie well below the body's own noise (3 robust SD): a small lytic "
    "lesion in noisy or osteoporotic bone can be missed.",
    "HU thresholds come from L1 on abdominal CT (Pickhardt 2013); kVp, the scanner and contrast shift HU.",
    "Heights and volumes come from a voxel mask: each end of a height is known to about half a voxel along the "
    "spine axis; the volume band shows a one-voxel change of the outline.",
    "A Genant grade says the body is shorter than expected; telling a fracture from a normal shape (e.g. "
    "thoracolumbar wedging) is the operator's judgement.",
)


def render_report_html(plan) -> str:
    """Self-contained HTML report of a :class:`~pvp_plan.pipeline.CasePlan` (no external resources)."""
    from pvp_plan.pipeline import DISCLAIMER

    d = plan.to_dict()
    inp = d["input"]
    vox = " x ".join(f"{v:g}" for v in plan.ct.spacing_xyz_mm)
    rules = "".join(
        f"<tr><td>{_e(r['name'])}</td><td>{_e(r.get('value', ''))}{_e(' ' + str(r.get('low', '')) + '-' + str(r.get('high', '')) if 'low' in r else '')}"
        f"</td><td>{_e(r['unit'])}</td><td style='white-space:normal;text-align:left'>{_e(r['source'])}</td></tr>"
        for r in d["rules"])
    flagged = [lp.level for lp in plan.levels if lp.flags]
    summary = (f"Flagged levels: <b class='flag'>{_e(', '.join(flagged))}</b>" if flagged
               else "No level flagged for collapse, density or posterior wall.")
    skipped = [f"{lp.level} ({lp.not_plannable_reason.split(':')[0]})" for lp in plan.levels if not lp.plannable]
    if skipped:
        summary += f"<br>Not plannable: {_e('; '.join(skipped))}"
    body = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>PVP plan report</title><style>{_CSS}</style></head><body><main>",
        "<h1>Percutaneous vertebroplasty plan</h1>",
        f"<p class='disclaimer'>{_e(DISCLAIMER)}</p>",
        f"<p class='meta'>Series {_e(inp['series_ref'])} ({_e(inp['source_format'])}), voxel {vox} mm (x, y, z); "
        f"segmentation: {_e(plan.segmentation.method or 'unknown')}; {_e(d['software'])}; plan.json schema "
        f"{_e(d['schema_version'])}. Needle {_e(plan.options.needle_gauge)}, target "
        f"{_e(plan.options.needle_target.replace('_', ' '))}.</p>",
        f"<div class='card'><p>{summary}</p>{''.join(_notice(n) for n in plan.notices)}</div>",
        "<h2>Overview (sagittal)</h2><div class='card figs'><figure class='overview'>",
        _img(sagittal_png(plan), "sagittal reconstruction with vertebral bodies coloured by level"),
        "<figcaption>Sagittal reconstruction, anterior on the left. Bodies coloured by level; "
        "<span class='flag'>red level names (!)</span> carry a finding; red circle: posterior wall breach; "
        "(n/p): not plannable; cyan lines: needle paths (entry to target).</figcaption></figure></div>",
        "<h2>Levels</h2><div class='card'>", _table(plan), "</div>",
        _cement_card(plan),
        "".join(_level_card(plan, lp) for lp in plan.levels),
        "<h2>Limits of these measurements</h2><div class='card'><ul>",
        "".join(f"<li>{_e(t)}</li>" for t in LIMITS), "</ul></div>",
        "<h2>Thresholds and sources used</h2><div class='card tablewrap'><table>"
        "<tr><th>Rule</th><th>Value</th><th>Unit</th><th style='text-align:left'>Source</th></tr>",
        rules, "</table></div>",
        f"<p class='disclaimer'>{_e(DISCLAIMER)}</p>",
        "</main></body></html>",
    ]
    return "".join(body)
