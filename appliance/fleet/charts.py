"""Small inline SVG line charts for the hub page: no JS, no images, a few KB each."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 640, 130
PAD_L, PAD_R, PAD_T, PAD_B = 44, 8, 10, 22
MAX_POINTS = 240


def downsample(points: list[tuple[float, float]], n: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most ``n`` points, keeping each bucket's maximum: a spike must stay visible."""
    if len(points) <= n:
        return points
    t0, t1 = points[0][0], points[-1][0]
    span = (t1 - t0) or 1.0
    buckets: dict[int, tuple[float, float]] = {}
    for t, v in points:
        i = min(n - 1, int((t - t0) / span * n))
        cur = buckets.get(i)
        if cur is None or v > cur[1]:
            buckets[i] = (t, v)
    return [buckets[i] for i in sorted(buckets)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.1f}"


def line_chart(title: str, unit: str, points: list[tuple[float, float | None]], *,
               threshold: float | None = None, step: bool = False) -> str:
    """An SVG chart of (epoch seconds, value) points; ``None`` values are gaps."""
    pts = [(t, float(v)) for t, v in points if v is not None]
    label = escape(f"{title} ({unit})" if unit else title)
    head = (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-label="{label}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>')
    if not pts:
        return (head + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                'class="muted">no data</text></svg>')
    pts = downsample(pts)
    t0, t1 = pts[0][0], pts[-1][0]
    values = [v for _, v in pts] + ([threshold] if threshold is not None else [])
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * 0.08
    lo, hi = (0.0 if lo >= 0 and lo - margin < 0 else lo - margin), hi + margin
    iw, ih = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(t: float) -> float:
        return PAD_L + (0.5 if t1 == t0 else (t - t0) / (t1 - t0)) * iw

    def y(v: float) -> float:
        return PAD_T + (1 - (v - lo) / (hi - lo)) * ih

    coords: list[str] = []
    prev_y = None
    for t, v in pts:
        if step and prev_y is not None:
            coords.append(f"{x(t):.1f},{prev_y:.1f}")
        prev_y = y(v)
        coords.append(f"{x(t):.1f},{prev_y:.1f}")
    parts = [head,
             f'<line class="axis" x1="{PAD_L}" y1="{PAD_T + ih}" x2="{WIDTH - PAD_R}" '
             f'y2="{PAD_T + ih}"/>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{_fmt(hi)}</text>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + ih}" text-anchor="end">{_fmt(lo)}</text>',
             f'<text x="{PAD_L}" y="{HEIGHT - 6}">{_clock(t0)}</text>',
             f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 6}" text-anchor="end">{_clock(t1)}</text>']
    if threshold is not None:
        ty = y(threshold)
        parts.append(f'<line class="limit" x1="{PAD_L}" y1="{ty:.1f}" x2="{WIDTH - PAD_R}" '
                     f'y2="{ty:.1f}"><title>alert above {_fmt(threshold)}</title></line>')
    if len(coords) == 1:
        cx, cy = coords[0].split(",")
        parts.append(f'<circle class="pt" cx="{cx}" cy="{cy}" r="3"/>')
    else:
        parts.append(f'<polyline class="series" points="{" ".join(coords)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %H:%M")
