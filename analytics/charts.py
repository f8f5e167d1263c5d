"""Small server-side SVG charts for the dashboard: no JavaScript, nothing fetched, works offline.

Labels are escaped by format_html; numbers are formatted here. Each function returns safe HTML.
"""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT, PAD = 640, 180, 28
COLOURS = ["#417690", "#79aec8", "#e0a800", "#c0392b"]


def _scale(values):
    top = max([float(value) for value in values] + [0.0])
    return top if top > 0 else 1.0


def bar_chart(labels, series: dict, *, title: str = "") -> str:
    """Grouped bars: `series` maps a legend name to one value per label."""
    if not labels:
        return ""
    names = list(series)
    top = _scale([value for values in series.values() for value in values])
    slot = (WIDTH - PAD) / len(labels)
    bar = max(slot / (len(names) + 1), 1)
    rects = []
    for index, label in enumerate(labels):
        for number, name in enumerate(names):
            value = float(series[name][index])
            height = (HEIGHT - PAD) * value / top
            x = PAD + index * slot + number * bar + bar / 2
            rects.append(
                (
                    f"{x:.1f}",
                    f"{HEIGHT - PAD - height:.1f}",
                    f"{bar:.1f}",
                    f"{height:.1f}",
                    COLOURS[number % len(COLOURS)],
                    f"{label} · {name}: {value:,.2f}".replace(".00", ""),
                )
            )
    return _frame(
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            rects,
        ),
        labels,
        slot,
        top,
        names,
        title,
    )


def line_chart(labels, series: dict, *, title: str = "") -> str:
    """Lines with dots: `series` maps a legend name to one value per label."""
    if not labels:
        return ""
    names = list(series)
    top = _scale([value for values in series.values() for value in values])
    slot = (WIDTH - PAD) / len(labels)
    parts = []
    for number, name in enumerate(names):
        points = [
            (PAD + index * slot + slot / 2, HEIGHT - PAD - (HEIGHT - PAD) * float(value) / top)
            for index, value in enumerate(series[name])
        ]
        colour = COLOURS[number % len(COLOURS)]
        parts.append(
            format_html(
                '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>',
                colour,
                " ".join(f"{x:.1f},{y:.1f}" for x, y in points),
            )
        )
        parts.append(
            format_html_join(
                "",
                '<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}</title></circle>',
                (
                    (f"{x:.1f}", f"{y:.1f}", colour, f"{labels[index]} · {name}: {float(series[name][index]):,.0f}")
                    for index, (x, y) in enumerate(points)
                ),
            )
        )
    return _frame(mark_safe("".join(parts)), labels, slot, top, names, title)  # noqa: S308 (built by format_html)


def _frame(body, labels, slot, top, names, title):
    step = max(1, len(labels) // 12)
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
        (
            (f"{PAD + index * slot + slot / 2:.1f}", HEIGHT - PAD + 14, label)
            for index, label in enumerate(labels)
            if index % step == 0
        ),
    )
    legend = format_html_join(
        "",
        '<tspan fill="{}">■ {}</tspan> ',
        ((COLOURS[number % len(COLOURS)], name) for number, name in enumerate(names)),
    )
    return format_html(
        '<svg class="crm-chart" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{title}">'
        '<text x="{pad}" y="12" font-size="11">{legend}</text>'
        '<text x="2" y="{top_y}" font-size="10">{top}</text>'
        '<line x1="{pad}" y1="{base}" x2="{w}" y2="{base}" stroke="#999"/>{body}{ticks}</svg>',
        w=WIDTH,
        h=HEIGHT,
        title=title,
        pad=PAD,
        legend=legend,
        top_y=PAD - 4,
        top=f"{top:,.0f}",
        base=HEIGHT - PAD,
        body=body,
        ticks=ticks,
    )
