"""The answer's pictures as one PNG, for chats that show images but not SVG (Discord, Slack):
the breakdown bar against the usable memory above memory against context. Drawn with Pillow
(added for this: a small, widely packaged imaging library; imported only when a PNG is drawn,
so neither the CLI nor the service's start-up loads it)."""

from __future__ import annotations

import io

from adapters.charts import COLOURS
from core.curve import Curve
from core.report import Report
from core.units import format_bytes, format_tokens

W, BAR_H, CURVE_H, PAD = 720, 110, 240, 14


def answer_png(report: Report, curve: Curve | None) -> bytes:
    from PIL import Image, ImageDraw  # loads only here

    height = BAR_H + (CURVE_H if curve else 0)
    img = Image.new("RGB", (W, height), "white")
    draw = ImageDraw.Draw(img)
    _bar(draw, report)
    if curve is not None:
        _curve(draw, curve, BAR_H)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _bar(draw: object, report: Report) -> None:
    from PIL import ImageDraw

    assert isinstance(draw, ImageDraw.ImageDraw)
    b = report.breakdown
    parts = [("weights", b.weights), ("kv cache", b.kv_cache), ("activations", b.activations),
             ("gradients", b.gradients), ("optimizer", b.optimizer), ("overhead", b.overhead)]
    usable = report.gpu.usable_bytes
    scale = (W - 2 * PAD) / max(report.total_bytes, usable, 1)
    draw.text((PAD, 6), f"{format_bytes(report.total_bytes)} of {format_bytes(usable)} usable "
              f"({report.verdict})", fill="black")
    x = float(PAD)
    for n, (name, size) in enumerate(p for p in parts if p[1] > 0):
        w = size * scale
        draw.rectangle([x, 24, x + w, 54], fill=COLOURS[name])
        draw.text((PAD + (n % 3) * 230, 62 + (n // 3) * 16), f"{name} {format_bytes(size)}",
                  fill=COLOURS[name])
        x += w
    limit = PAD + usable * scale
    draw.line([limit, 18, limit, 60], fill="black", width=2)


def _curve(draw: object, curve: Curve, top: int) -> None:
    from PIL import ImageDraw

    assert isinstance(draw, ImageDraw.ImageDraw)
    left, bottom = 60, top + CURVE_H - 24
    top_ctx = max(curve.contexts)
    top_mem = max(max(curve.totals), curve.usable_bytes) * 1.08

    def xy(ctx: float, mem: float) -> tuple[float, float]:
        return (left + (W - left - PAD) * ctx / top_ctx,
                bottom - (bottom - top - 16) * mem / top_mem)

    draw.line([left, bottom, W - PAD, bottom], fill="#888888")
    draw.line([xy(c, t) for c, t in zip(curve.contexts, curve.totals, strict=True)],
              fill="#4c78a8", width=3)
    _, uy = xy(0, curve.usable_bytes)
    draw.line([left, uy, W - PAD, uy], fill="#e45756", width=1)
    draw.text((W - 170, uy - 14), f"usable {format_bytes(curve.usable_bytes)}", fill="#e45756")
    if curve.longest:
        lx, _ = xy(min(curve.longest, top_ctx), 0)
        draw.line([lx, top + 16, lx, bottom], fill="#54a24b", width=1)
        label = f"longest {format_tokens(curve.longest)}"
        at = lx + 4 if lx < W - 160 else lx - 8 - draw.textlength(label)  # stay in the picture
        draw.text((at, top + 18), label, fill="#54a24b")
    draw.text((left, bottom + 4), "0", fill="black")
    draw.text((W - 150, bottom + 4), f"{format_tokens(top_ctx)} tokens", fill="black")
    draw.text((4, top + 4), format_bytes(int(top_mem)), fill="black")
