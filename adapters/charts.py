"""Pictures of an answer as SVG, drawn by hand (no plotting library: the page and the service
stay light): the breakdown as a stacked bar against the usable memory, and memory against
context length with the usable line and the longest context that fits. Every text is escaped;
the sizes are fixed so the page lays out before the picture arrives."""

from __future__ import annotations

from html import escape

from core.compare import CompareAnswer
from core.curve import Curve
from core.report import Report
from core.units import format_bytes, format_tokens

WIDTH, BAR_HEIGHT = 640, 56
COLOURS = {"weights": "#4c78a8", "kv cache": "#f58518", "activations": "#54a24b",
           "gradients": "#e45756", "optimizer": "#b279a2", "overhead": "#9d755d"}


def breakdown_svg(report: Report) -> str:
    """One bar: each part's share of the larger of the total and the usable memory."""
    b = report.breakdown
    parts = [("weights", b.weights), ("kv cache", b.kv_cache), ("activations", b.activations),
             ("gradients", b.gradients), ("optimizer", b.optimizer), ("overhead", b.overhead)]
    usable = report.gpu.usable_bytes
    scale = (WIDTH - 20) / max(report.total_bytes, usable, 1)
    x, rects, legend = 10.0, [], []
    for n, (name, size) in enumerate(p for p in parts if p[1] > 0):
        w = size * scale
        label = f"{name} {format_bytes(size)}"
        rects.append(f'<rect x="{x:.1f}" y="8" width="{w:.1f}" height="24" '
                     f'fill="{COLOURS[name]}"><title>{escape(label)}</title></rect>')
        legend.append(f'<text x="{10 + (n % 3) * 210}" y="{48 + (n // 3) * 14}" '
                      f'font-size="11" fill="{COLOURS[name]}">■ {escape(label)}</text>')
        x += w
    limit = 10 + usable * scale
    line = (f'<line x1="{limit:.1f}" y1="2" x2="{limit:.1f}" y2="38" stroke="#222" '
            f'stroke-dasharray="4 2"><title>usable {escape(format_bytes(usable))}</title></line>')
    height = BAR_HEIGHT + 14 * ((len(legend) - 1) // 3)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
            f'role="img" aria-label="{escape(_bar_label(report))}" class="chart">'
            + "".join(rects) + line + "".join(legend) + "</svg>")


def _bar_label(report: Report) -> str:
    return (f"memory breakdown: {format_bytes(report.total_bytes)} of "
            f"{format_bytes(report.gpu.usable_bytes)} usable")


def context_svg(curve: Curve) -> str:
    """Memory per GPU against context, with the usable memory and the longest context marked."""
    w, h, left, bottom = WIDTH, 220, 56, 28
    top_ctx = max(curve.contexts)
    top_mem = max(max(curve.totals), curve.usable_bytes) * 1.08

    def xy(ctx: int, mem: float) -> tuple[float, float]:
        return (left + (w - left - 10) * ctx / top_ctx,
                h - bottom - (h - bottom - 10) * mem / top_mem)

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(c, t) for c, t in
                                                      zip(curve.contexts, curve.totals,
                                                          strict=True)))
    _, uy = xy(0, curve.usable_bytes)
    parts = [f'<polyline points="{points}" fill="none" stroke="#4c78a8" stroke-width="2"/>',
             f'<line x1="{left}" y1="{uy:.1f}" x2="{w - 10}" y2="{uy:.1f}" stroke="#e45756" '
             f'stroke-dasharray="5 3"/>',
             f'<text x="{w - 12}" y="{uy - 4:.1f}" font-size="11" text-anchor="end" '
             f'fill="#e45756">usable {escape(format_bytes(curve.usable_bytes))}</text>',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#888"/>',
             f'<text x="{left}" y="{h - 8}" font-size="11">0</text>',
             f'<text x="{w - 10}" y="{h - 8}" font-size="11" text-anchor="end">'
             f'{escape(format_tokens(top_ctx))} tokens</text>',
             f'<text x="4" y="16" font-size="11">{escape(format_bytes(int(top_mem)))}</text>']
    ax, ay = xy(curve.asked, curve.totals[curve.contexts.index(curve.asked)])
    parts.append(f'<circle cx="{ax:.1f}" cy="{ay:.1f}" r="4" fill="#222"><title>ctx='
                 f'{escape(format_tokens(curve.asked))}</title></circle>')
    if curve.longest:
        lx, _ = xy(min(curve.longest, top_ctx), 0)
        anchor, tx = ("start", lx + 3) if lx < w - 170 else ("end", lx - 3)
        parts.append(f'<line x1="{lx:.1f}" y1="10" x2="{lx:.1f}" y2="{h - bottom}" '
                     f'stroke="#54a24b" stroke-dasharray="3 3"/><text x="{tx:.1f}" y="22" '
                     f'font-size="11" text-anchor="{anchor}" fill="#54a24b">longest that fits '
                     f'{escape(format_tokens(curve.longest))}</text>')
    label = f"memory against context, up to {format_tokens(top_ctx)} tokens"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{escape(label)}" class="chart">' + "".join(parts) + "</svg>")


def answer_svg(report: Report, curve: Curve | None) -> str:
    """Both pictures in one SVG file (the CLI's --plot): the bar above the curve."""
    bar = breakdown_svg(report)
    height = int(bar.split('viewBox="0 0 ', 1)[1].split('"', 1)[0].split()[1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{height + (230 if curve else 0) + 24}">',
             f'<text x="10" y="16" font-size="13">{escape(_bar_label(report))}</text>',
             f'<svg y="22" width="{WIDTH}" height="{height}"{bar[4:]}']
    if curve is not None:
        parts.append(f'<svg y="{height + 30}" width="{WIDTH}" height="220"'
                     f'{context_svg(curve)[4:]}')
    return "".join(parts) + "</svg>"


VERDICT_COLOURS = {"fits": "#54a24b", "tight": "#f58518", "split": "#eeca3b", "no": "#e45756"}


def compare_svg(answer: CompareAnswer) -> str:
    """Grouped bars: one group per setup, one bar per GPU, its height the memory per GPU and its
    colour the verdict; each GPU's usable memory is a tick on its bar."""
    cells = [c for c in answer.cells if c.report is not None]
    if not cells:
        return ""
    top = max(max(c.report.total_bytes, c.report.gpu.usable_bytes) for c in cells
              if c.report is not None) * 1.1
    n_cols = len(answer.columns)
    group_w = (WIDTH - 20) / max(1, len(answer.rows))
    bar_w = max(4.0, min(36.0, (group_w - 16) / max(1, n_cols)))
    h, bottom = 240, 200
    parts = [f'<line x1="10" y1="{bottom}" x2="{WIDTH - 10}" y2="{bottom}" stroke="#888"/>']
    for r, row in enumerate(answer.rows):
        x0 = 10 + r * group_w + 8
        parts.append(f'<text x="{x0:.1f}" y="{bottom + 16}" font-size="10">'
                     f'{escape(row[:40])}</text>')
        for c, column in enumerate(answer.columns):
            cell = answer.cell(row, column)
            if cell.report is None:
                continue
            rep = cell.report
            x = x0 + c * bar_w
            bar_h = (bottom - 10) * rep.total_bytes / top
            usable_y = bottom - (bottom - 10) * rep.gpu.usable_bytes / top
            label = f"{row} on {column}: {cell.summary}"
            parts.append(f'<rect x="{x:.1f}" y="{bottom - bar_h:.1f}" width="{bar_w - 2:.1f}" '
                         f'height="{bar_h:.1f}" fill="{VERDICT_COLOURS[rep.verdict]}">'
                         f'<title>{escape(label)}</title></rect>')
            parts.append(f'<line x1="{x:.1f}" y1="{usable_y:.1f}" x2="{x + bar_w - 2:.1f}" '
                         f'y2="{usable_y:.1f}" stroke="#222" stroke-width="2"/>')
    legend = " · ".join(f"{i + 1}: {col}" for i, col in enumerate(answer.columns))
    parts.append(f'<text x="10" y="{h - 6}" font-size="10">bars in each group, left to right: '
                 f'{escape(legend)}; the black tick is the GPU\'s usable memory</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {h}" role="img" '
            f'aria-label="memory of each setup on each GPU" class="chart">' + "".join(parts)
            + "</svg>")
