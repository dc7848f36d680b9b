"""A small line chart drawn with Pillow (no plotting library needed): LPIPS against time per image, log time
axis, as Supp. Fig. 16 (right) — the projection's curve and the encoder's level as a dashed line."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from automod_cli.outputs import atomic_write

WIDTH, HEIGHT = 720, 460
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 40, 60  # margins around the plot area
CURVE, LEVEL, AXES, GRID = (31, 119, 180), (214, 39, 40), (40, 40, 40), (225, 225, 225)


def _log_range(values: list[float]) -> tuple[float, float]:
    low = math.floor(math.log10(min(values)))
    high = math.ceil(math.log10(max(values)))
    return low, max(high, low + 1)


def _y_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 0.1
    return low - pad, high + pad


def _dashed(draw: ImageDraw.ImageDraw, y: float, x0: float, x1: float, dash: int = 8) -> None:
    for x in range(int(x0), int(x1), 2 * dash):
        draw.line([(x, y), (min(x + dash, x1), y)], fill=LEVEL, width=2)


def time_curve_chart(
    path: Path,
    seconds: list[float],
    values: list[float],
    level_seconds: float,
    level: float,
    curve_label: str,
    level_label: str,
    y_label: str = "LPIPS",
) -> None:
    """Write a PNG: `values` over `seconds` (log axis) as a line with dots, and `level` as a dashed line with
    a dot at `level_seconds`."""
    xs = [max(s, 1e-6) for s in [*seconds, level_seconds]]
    x_low, x_high = _log_range(xs)
    y_low, y_high = _y_range([*values, level])
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def to_px(x: float, y: float) -> tuple[float, float]:
        u = (math.log10(max(x, 1e-6)) - x_low) / (x_high - x_low)
        return LEFT + u * width, TOP + (1 - (y - y_low) / (y_high - y_low)) * height

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for k in range(int(x_low), int(x_high) + 1):
        x, _ = to_px(10.0**k, y_low)
        draw.line([(x, TOP), (x, TOP + height)], fill=GRID)
        draw.text((x, TOP + height + 8), f"1e{k}", fill=AXES, font=font, anchor="mt")
    for i in range(6):
        y_value = y_low + (y_high - y_low) * i / 5
        _, y = to_px(10.0**x_low, y_value)
        draw.line([(LEFT, y), (LEFT + width, y)], fill=GRID)
        draw.text((LEFT - 8, y), f"{y_value:.3f}", fill=AXES, font=font, anchor="rm")
    draw.rectangle([LEFT, TOP, LEFT + width, TOP + height], outline=AXES)
    draw.text(
        (LEFT + width / 2, HEIGHT - 18), "seconds per image (log scale)", fill=AXES, font=font, anchor="mm"
    )
    draw.text((12, TOP - 22), y_label, fill=AXES, font=font)
    level_x, level_y = to_px(level_seconds, level)
    _dashed(draw, level_y, LEFT, LEFT + width)
    draw.ellipse([level_x - 4, level_y - 4, level_x + 4, level_y + 4], fill=LEVEL)
    points = [to_px(x, y) for x, y in zip(seconds, values)]
    if len(points) > 1:
        draw.line(points, fill=CURVE, width=2)
    for x, y in points:
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=CURVE)
    draw.text((LEFT + width - 10, TOP + 10), curve_label, fill=CURVE, font=font, anchor="rt")
    draw.text((LEFT + width - 10, TOP + 26), level_label, fill=LEVEL, font=font, anchor="rt")
    atomic_write(Path(path), lambda tmp: image.save(tmp, format="PNG"))


PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75)]


def line_chart(
    path: Path, series: dict[str, list[tuple[list[float], list[float]]]], x_label: str, y_label: str
) -> None:
    """Write a PNG with linear axes: each named series is one colour and may hold several lines (e.g. one per
    seed), each a list of x values and a list of y values."""
    xs = [x for lines in series.values() for line in lines for x in line[0]]
    ys = [y for lines in series.values() for line in lines for y in line[1]]
    x_low, x_high = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_low, y_high = _y_range(ys)
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def to_px(x: float, y: float) -> tuple[float, float]:
        return LEFT + (x - x_low) / (x_high - x_low) * width, TOP + (
            1 - (y - y_low) / (y_high - y_low)
        ) * height

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for i in range(6):
        x_value, y_value = x_low + (x_high - x_low) * i / 5, y_low + (y_high - y_low) * i / 5
        x, _ = to_px(x_value, y_low)
        _, y = to_px(x_low, y_value)
        draw.line([(x, TOP), (x, TOP + height)], fill=GRID)
        draw.line([(LEFT, y), (LEFT + width, y)], fill=GRID)
        draw.text((x, TOP + height + 8), f"{x_value:,.0f}", fill=AXES, font=font, anchor="mt")
        draw.text((LEFT - 8, y), f"{y_value:.3f}", fill=AXES, font=font, anchor="rm")
    draw.rectangle([LEFT, TOP, LEFT + width, TOP + height], outline=AXES)
    draw.text((LEFT + width / 2, HEIGHT - 18), x_label, fill=AXES, font=font, anchor="mm")
    draw.text((12, TOP - 22), y_label, fill=AXES, font=font)
    for n, (label, lines) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        for line_xs, line_ys in lines:
            points = [to_px(x, y) for x, y in zip(line_xs, line_ys)]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
        draw.text((LEFT + width - 10, TOP + 10 + 16 * n), label, fill=colour, font=font, anchor="rt")
    atomic_write(Path(path), lambda tmp: image.save(tmp, format="PNG"))
