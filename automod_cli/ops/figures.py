"""Figures people look at: image grids with a caption band of text above them (PIL's built-in font)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from automod_cli.images import from_uint8, make_grid

FONT_SIZE = 12
LINE_SPACING = 3
MARGIN = 4  # pixels around the text


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_SIZE)


def wrap(text: str, width: int) -> list[str]:
    """Split `text` into lines no wider than `width` pixels in the caption font (a long word keeps its own line)."""
    font, lines = _font(), []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and font.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def caption_height(text: str, width: int) -> int:
    """Pixel height of the band `captioned` adds for `text` above an image `width` pixels wide."""
    return 2 * MARGIN + len(wrap(text, width - 2 * MARGIN)) * (FONT_SIZE + LINE_SPACING)


def captioned(image: torch.Tensor, text: str) -> torch.Tensor:
    """(3, H, W) image in [-1, 1] with a white band of black text above it: (3, H + caption_height, W)."""
    width = image.shape[-1]
    band = Image.new("RGB", (width, caption_height(text, width)), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(wrap(text, width - 2 * MARGIN)):
        draw.text((MARGIN, MARGIN + i * (FONT_SIZE + LINE_SPACING)), line, fill=(0, 0, 0), font=_font())
    return torch.cat([from_uint8(np.array(band)).to(image), image], dim=1)


def captioned_grid(cells: torch.Tensor, columns: int, text: str) -> torch.Tensor:
    """`images.make_grid` of the cells (enlarged so they can be seen) under a caption."""
    return captioned(make_grid(cells.float().cpu(), columns), text)
