"""Small presentational helpers for the console templates."""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def status_colour(state) -> str:
    """The console's one colour rule for backfill, chunk and cutover states (backfills.states)."""
    from backfills.states import status_colour as colour

    return colour(state)


@register.simple_tag
def sparkline(points, threshold_ms=None, width=220, height=44):
    """An inline SVG line of (label, value) points, with a dashed threshold line."""
    values = [v for _, v in points]
    if not values:
        return mark_safe('<span class="muted">no data in the last hour</span>')
    top = max(values + ([threshold_ms * 1.1] if threshold_ms else []))
    top = top or 1
    step = width / max(1, len(values) - 1)

    def y(v):
        return round(height - 2 - (v / top) * (height - 4), 1)

    coords = " ".join(f"{round(i * step, 1)},{y(v)}" for i, v in enumerate(values))
    threshold = ""
    if threshold_ms:
        threshold = format_html(
            '<line x1="0" x2="{}" y1="{}" y2="{}" stroke="#d0342c" stroke-dasharray="3,3" stroke-width="1"/>',
            width, y(threshold_ms), y(threshold_ms),
        )
    title = format_html_join(", ", "{} {} ms", ((label, round(v)) for label, v in points[-5:]))
    return format_html(
        '<svg class="spark" width="{}" height="{}" viewBox="0 0 {} {}" role="img"><title>p99 per minute: …{}</title>'
        '{}<polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="{}"/></svg>',
        width, height, width, height, title, threshold, coords,
    )


@register.filter
def ms(value):
    if not isinstance(value, (int, float)):
        return "–"
    if value >= 10_000:
        return f"{value / 1000:.0f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms"


@register.filter
def duration(seconds):
    if not isinstance(seconds, (int, float)):
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


@register.filter
def diff_html(lines):
    """Unified diff lines (a list or text) as spans coloured by added / removed / hunk header."""
    if isinstance(lines, str):
        lines = lines.splitlines()

    def kind(line):
        if line.startswith(("+++", "---")):
            return "file"
        return {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")

    return format_html_join("", '<span class="{}">{}</span>', ((kind(line), line) for line in lines))
