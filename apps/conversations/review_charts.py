"""Small inline SVG charts for the admin dashboard.

Drawn on the server so the admin needs no chart library, no CDN and no JavaScript; each mark has a
``<title>`` so hovering shows its value, and each chart has a text title for screen readers. Only
three shapes are needed (bars over time, lines over time, horizontal rate bars), which is less code
than wiring a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

W, H = 320, 120
PAD_L, PAD_R, PAD_T, PAD_B = 34, 6, 8, 18
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea")
AXIS_TEXT = 'font-size="9" fill="#6b7280"'


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.0f}ms"
    if unit == "%":
        return f"{value * 100:.0f}%"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _frame(title: str, body: str, *, height: int = H) -> SafeString:
    t = escape(title)
    return mark_safe(  # noqa: S308 - every interpolated text is escaped above and in the callers
        f'<svg class="parley-chart" viewBox="0 0 {W} {height}" role="img" aria-label="{t}" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>{body}</svg>'
    )


def _axes(top: float, unit: str, labels: Sequence[str]) -> str:
    y0, y1 = H - PAD_B, PAD_T
    parts = [
        f'<line x1="{PAD_L}" y1="{y0}" x2="{W - PAD_R}" y2="{y0}" stroke="#9ca3af" stroke-width="1"/>',
        f'<line x1="{PAD_L}" y1="{y1}" x2="{W - PAD_R}" y2="{y1}" stroke="#e5e7eb" stroke-dasharray="3 3"/>',
        f'<text x="{PAD_L - 3}" y="{y1 + 4}" text-anchor="end" {AXIS_TEXT}>{escape(_fmt(top, unit))}</text>',
        f'<text x="{PAD_L - 3}" y="{y0}" text-anchor="end" {AXIS_TEXT}>0</text>',
    ]
    if labels:
        parts.append(f'<text x="{PAD_L}" y="{H - 4}" {AXIS_TEXT}>{escape(labels[0])}</text>')
        parts.append(f'<text x="{W - PAD_R}" y="{H - 4}" text-anchor="end" {AXIS_TEXT}>{escape(labels[-1])}</text>')
    return "".join(parts)


def bar_chart(values: Sequence[float], labels: Sequence[str], *, title: str, unit: str = "") -> SafeString:
    """Vertical bars, one per bucket (``labels`` name the buckets)."""
    top = max(max(values, default=0), 1)
    n = max(len(values), 1)
    slot = (W - PAD_L - PAD_R) / n
    span = H - PAD_T - PAD_B
    bars = []
    for i, v in enumerate(values):
        h = span * v / top
        x = PAD_L + i * slot + slot * 0.12
        label = escape(f"{labels[i] if i < len(labels) else i}: {_fmt(v, unit)}")
        bars.append(
            f'<rect x="{x:.1f}" y="{H - PAD_B - h:.1f}" width="{slot * 0.76:.1f}" height="{max(h, 0):.1f}" '
            f'fill="{COLORS[0]}"><title>{label}</title></rect>'
        )
    return _frame(title, _axes(top, unit, labels) + "".join(bars))


def line_chart(
    series: dict[str, Sequence[float | None]], labels: Sequence[str], *, title: str, unit: str = ""
) -> SafeString:
    """One line per series over the buckets; a missing value (None) breaks the line."""
    values = [v for s in series.values() for v in s if v is not None]
    top = max(max(values, default=0), 1)
    n = max((len(s) for s in series.values()), default=1)
    slot = (W - PAD_L - PAD_R) / n
    span = H - PAD_T - PAD_B
    parts = [_axes(top, unit, labels)]
    for k, (name, points) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        run: list[str] = []
        runs: list[list[str]] = []
        for i, v in enumerate(points):
            if v is None:
                if run:
                    runs.append(run)
                run = []
                continue
            x, y = PAD_L + (i + 0.5) * slot, H - PAD_B - span * v / top
            run.append(f"{x:.1f},{y:.1f}")
            tip = escape(f"{name} {labels[i] if i < len(labels) else i}: {_fmt(v, unit)}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{color}"><title>{tip}</title></circle>')
        if run:
            runs.append(run)
        for r in runs:
            parts.append(f'<polyline points="{" ".join(r)}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        parts.append(
            f'<text x="{PAD_L + 4 + k * 40}" y="{PAD_T + 9}" font-size="9" fill="{color}">{escape(name)}</text>'
        )
    return _frame(title, "".join(parts))


def rate_bars(items: Sequence[tuple], *, title: str) -> SafeString:
    """Horizontal bars for rates from 0 to 1: ``(name, value)`` shown as percent, or
    ``(name, value, text)`` with its own text; a None value reads "no data"."""
    row = 20
    height = PAD_T + row * len(items) + 2
    label_w = 92
    full = W - label_w - 40
    parts = []
    for i, item in enumerate(items):
        name, value = item[0], item[1]
        own_text = item[2] if len(item) > 2 else None
        y = PAD_T + i * row
        parts.append(f'<text x="0" y="{y + 12}" font-size="10" fill="#374151">{escape(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{full}" height="12" fill="#e5e7eb" rx="2"/>')
        if value is None:
            text = "no data"
        else:
            value = min(max(value, 0.0), 1.0)
            color = COLORS[2] if name.lower().startswith(("model", "cache")) else COLORS[0]
            parts.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{full * value:.1f}" height="12" fill="{color}" rx="2">'
                f"<title>{escape(name)}: {escape(own_text or _fmt(value, '%'))}</title></rect>"
            )
            text = own_text or _fmt(value, "%")
        parts.append(f'<text x="{label_w + full + 4}" y="{y + 12}" font-size="10" fill="#374151">{escape(text)}</text>')
    return _frame(title, "".join(parts), height=height)
