"""Sample conditioned on some scales of an input: its coarse (or mid) layers stay, the rest are random
(Supp. App. H, Fig. 18).

    python examples/conditional_sampling.py runs/demo              # a built-in picture
    python examples/conditional_sampling.py runs/demo face.png --n 12 --out conditional.png

Writes one row per scale: the input's reconstruction, then samples that keep that scale of it.
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
    parser.add_argument("image", type=Path, nargs="?", help="the input (default: a built-in picture)")
    parser.add_argument("--n", type=int, default=7, help="samples per scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("conditional-sampling.png"))
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    return parser.parse_args()


def run(args: argparse.Namespace) -> None:
    model = ops.load_model(args.checkpoint)
    x = (
        ops.load_images([args.image], model.resolution)
        if args.image
        else ops.builtin_images(1, model.resolution, 11)
    )
    z = ops.encode(model, x)
    reconstruction = ops.decode(model, z)
    generator = torch.Generator().manual_seed(args.seed)

    rows, names = [], []
    for name in ("coarse", "mid"):
        if SCALES[name][0] > model.resolution:
            continue  # a low-resolution model has no such layers yet
        blocks = ops.scale_range(model, name)
        rows += [reconstruction, ops.conditional_sample(model, z, blocks, args.n, generator)]
        names.append(f"{name} ({ops.describe(blocks)})")
    text = f"Each row: the input's reconstruction, then samples that keep its {' / '.join(names)} scales."
    save_image(args.out, ops.captioned_grid(torch.cat(rows), args.n + 1, text), overwrite=args.force)
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
