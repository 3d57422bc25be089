"""The gate report's plot: the overall difference and each slice's, with their intervals, as an
inline SVG (no plotting library on the gate path: the page is written in every pipeline run)."""

from __future__ import annotations

import html

ROW, LEFT, WIDTH = 22, 190, 420  # pixels: row height, label column, plot width


def comparison_svg(result) -> str:
    """Dot-and-whisker chart of `no_regression` evidence; empty when nothing was re-scored."""
    e = result.evidence
    if e.get("baseline_rescored") is None:
        return ""
    allowed = e.get("allowed_change") or 0.0
    items = [("overall", e["difference"], e["ci_low"], e["ci_high"], result.passed)]
    items += [(f"{s['column']}={s['value']}", s["difference"], s.get("ci_low"), s.get("ci_high"), s["passed"])
              for s in e.get("slices", []) if "skipped" not in s]
    values = [v for _, d, lo, hi, _ in items for v in (d, lo, hi) if v is not None] + [0.0, -allowed]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 1e-3
    low, high = low - pad, high + pad
    x = lambda v: LEFT + (v - low) / (high - low) * WIDTH
    height = ROW * (len(items) + 2)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 20}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - ROW}" stroke="#888"/>',
             f'<line x1="{x(-allowed):.1f}" y1="0" x2="{x(-allowed):.1f}" y2="{height - ROW}" stroke="#c33" '
             f'stroke-dasharray="4 3"/>',
             f'<text x="{x(-allowed):.1f}" y="{height - 6}" fill="#c33" text-anchor="middle">-allowed</text>']
    for i, (label, difference, ci_low, ci_high, passed) in enumerate(items):
        y = ROW * (i + 1)
        color = "#2a7" if passed else "#c33"
        parts.append(f'<text x="4" y="{y + 4}">{html.escape(str(label))}</text>')
        if ci_low is not None:
            parts.append(f'<line x1="{x(ci_low):.1f}" y1="{y}" x2="{x(ci_high):.1f}" y2="{y}" stroke="{color}" '
                         f'stroke-width="2"/>')
        parts.append(f'<circle cx="{x(difference):.1f}" cy="{y}" r="4" fill="{color}">'
                     f'<title>{html.escape(label)}: {difference:+.4g}</title></circle>')
    parts.append("</svg>")
    return "<p>difference, candidate minus champion (positive is better)" + (
        ", with its interval" if e.get("ci_low") is not None else "") + "</p>" + "".join(parts)

