"""Mix two photos: decode A with B's coarse, then mid, then fine scales (NeurIPS Sec. 4, Supp. Figs. 14-15).

    python examples/mix_two_photos.py runs/demo                    # two built-in pictures
    python examples/mix_two_photos.py runs/demo a.jpg b.jpg --out mixed.png

Writes one captioned strip: A, B, their reconstructions, then A with each of B's scales that the model has.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from automod_cli import ops
from automod_cli.errors import one_line_errors
from automod_cli.images import save_image
from automod_cli.models.latents import SCALES
from automod_cli.outputs import check_outputs


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    parser.add_argument("images", type=Path, nargs="*", help="A and B (default: two built-in pictures)")
    parser.add_argument("--out", type=Path, default=Path("mix-two-photos.png"))
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args()
    if len(args.images) not in (0, 2):
        parser.error("give two images (A and B) or none")
    return args


def run(args: argparse.Namespace) -> None:
    model = ops.load_model(args.checkpoint)
    if args.images:
        x = ops.load_images(args.images, model.resolution)  # any size or mode: cropped and resized
    else:
        x = ops.builtin_images(2, model.resolution, seed=7)
    z = ops.encode(model, x)  # (2, D) unit latents
    z_a, z_b = z[:1], z[1:]

    cells = [x[0], x[1], *ops.decode(model, z)]
    names = [name for name, (low, _) in SCALES.items() if low <= model.resolution]
    for name in names:
        cells.append(ops.mix(model, z_a, z_b, ops.scale_range(model, name))[0])  # B's scales replace A's
    text = f"A, B, their reconstructions, then A with B's {', '.join(names)} scales."
    save_image(args.out, ops.captioned_grid(torch.stack(cells), len(cells), text), overwrite=args.force)
    print(f"wrote {args.out}")


def main() -> None:
    """Check the outputs before any work; an AutomodError (an existing output, an unreadable image, ...) is one line on
    stderr and exit code 2, as in the automod commands."""
    args = arguments()
    with one_line_errors():
        check_outputs([args.out], args.force)
        run(args)


if __name__ == "__main__":
    main()
