"""The `stats` charts as inline SVG for the status page: pure string
building, no plotting library (matplotlib stays optional), no script.
Each chart scales to its container's width (viewBox) so it reads on a
phone; every number drawn is also in the SVG's <title> for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

W, H = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 24, 40


def _frame(title: str, body: str, height: int = H) -> str:
    return (f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
            f'<text x="{PAD_L}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>{body}</svg>')


def _empty(title: str, note: str) -> str:
    return _frame(title, f'<text x="{W // 2}" y="{H // 2}" text-anchor="middle" fill="#666">{escape(note)}</text>')


def _num(v: float) -> str:
    return f"{v / 1000:.1f}k" if abs(v) >= 10_000 else f"{v:,.0f}"


def line_chart(title: str, points: Sequence[tuple[datetime, int]], *, empty: str = "no data yet") -> str:
    if not points:
        return _empty(title, empty)
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    span = (t1 - t0) or 1.0
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def xy(t: datetime, v: int) -> tuple[float, float]:
        x = PAD_L + (t.timestamp() - t0) / span * iw if len(points) > 1 else PAD_L + iw / 2
        return x, PAD_T + (hi - v) / (hi - lo) * ih

    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(t, v) for t, v in points))
    body = [f'<polyline fill="none" stroke="#1d9bf0" stroke-width="2" points="{path}"/>']
    for v in (lo, hi):
        _, y = xy(points[0][0], v)
        body.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_num(v)}</text>')
    body.append(f'<text x="{PAD_L}" y="{H - 12}" font-size="11">{points[0][0]:%Y-%m-%d}</text>')
    body.append(f'<text x="{W - PAD_R}" y="{H - 12}" font-size="11" text-anchor="end">{points[-1][0]:%Y-%m-%d}</text>')
    return _frame(title, "".join(body))


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, empty: str = "no data yet",
              color: str = "#7c3aed") -> str:
    if not bars or not any(v for _, v in bars):
        return _empty(title, empty)
    hi = max(v for _, v in bars) or 1.0
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    step = iw / len(bars)
    body = []
    for i, (label, value) in enumerate(bars):
        h = value / hi * ih
        x = PAD_L + i * step + step * 0.15
        y = PAD_T + ih - h
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
                    f'<title>{escape(label)}: {value:g}</title></rect>')
        body.append(f'<text x="{x + step * 0.35:.1f}" y="{H - 22}" font-size="10" text-anchor="middle">'
                    f'{escape(label)}</text>')
        if value:
            body.append(f'<text x="{x + step * 0.35:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">'
                        f'{value:g}</text>')
    return _frame(title, "".join(body))


def hbar_chart(title: str, bars: Sequence[tuple[str, float]], *, empty: str = "no data yet",
               unit: str = "") -> str:
    """Horizontal bars, one row per label (feeds: long names read better)."""
    if not bars:
        return _empty(title, empty)
    row = 24
    height = PAD_T + row * len(bars) + 12
    hi = max(v for _, v in bars) or 1.0
    label_w = 150
    iw = W - label_w - PAD_R - 60
    body = []
    for i, (label, value) in enumerate(bars):
        y = PAD_T + i * row + 4
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" font-size="12" text-anchor="end">{escape(label[:22])}</text>')
        body.append(f'<rect x="{label_w}" y="{y}" width="{max(1.0, value / hi * iw):.1f}" height="{row - 8}" '
                    f'fill="#0f766e"><title>{escape(label)}: {value:.1f}{unit}</title></rect>')
        body.append(f'<text x="{label_w + value / hi * iw + 6:.1f}" y="{y + 13}" font-size="11">{value:.1f}{unit}</text>')
    return _frame(title, "".join(body), height)
