"""Build an attribute vector from a few exemplars and apply it to all layers or only the scales where the
attribute lives (NeurIPS Sec. 4, Supp. App. C, Fig. 8).

    python examples/attribute_vector.py runs/demo                  # built-in: "low horizon", at coarse scales
    python examples/attribute_vector.py runs/ffhq --pos smiling/ --neg neutral/ --image me.png --scales mid

With no folders it picks, from 64 built-in pictures, the 4 with the lowest horizon (much sky) as positives
and the 4 with the highest as negatives: a layout attribute, so it belongs to the coarse scales. The vector
is saved as safetensors and read back, as `automod edit --save-vector / --vector` do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from automod_cli import ops
from automod_cli.errors import one_line_errors
from automod_cli.images import from_uint8, save_image
from automod_cli.outputs import check_outputs
from data_prep.builtin import generate

STRENGTHS = [-1.0, -0.5, 0.0, 0.5, 1.0]
EXEMPLARS = 4  # Supp. Fig. 8 uses 4 of each


def builtin_exemplars(resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positives, negatives, an image to edit) from the built-in dataset, chosen by its known horizon factor."""
    pictures, factors = generate(64, seed=5, size=resolution)
    order = np.argsort(factors.column("horizon_height"))  # fraction of the height from the top
    images = from_uint8(pictures.transpose(0, 2, 3, 1))
    middle = order[len(order) // 2]
    return images[order[-EXEMPLARS:]], images[order[:EXEMPLARS]], images[middle : middle + 1]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    parser.add_argument("--pos", type=Path, help="folder of images with the attribute")
    parser.add_argument("--neg", type=Path, help="folder of images without it")
    parser.add_argument("--image", type=Path, help="image to edit")
    parser.add_argument("--scales", default="coarse", help="coarse | mid | fine | i:j")
    parser.add_argument("--out", type=Path, default=Path("attribute-vector"), help="output folder")
    parser.add_argument("--force", action="store_true", help="replace existing outputs")
    args = parser.parse_args()
    if (args.pos is None) != (args.neg is None) or (args.pos is not None and args.image is None):
        parser.error("give --pos, --neg and --image together, or none of them")
    return args


def run(args: argparse.Namespace) -> None:
    model = ops.load_model(args.checkpoint)
    if args.pos is None:
        positives, negatives, image = builtin_exemplars(model.resolution)
    else:
        positives = ops.load_images(ops.image_paths([args.pos]), model.resolution)
        negatives = ops.load_images(ops.image_paths([args.neg]), model.resolution)
        image = ops.load_images([args.image], model.resolution)

    vector = ops.attribute_vector(model, positives, negatives)  # mean latent with - mean latent without
    info = {"positives": str(len(positives)), "negatives": str(len(negatives))}
    vector_path = ops.save_vector(args.out / "attribute.safetensors", vector, info, overwrite=args.force)
    vector, _ = ops.load_vector(vector_path, model.config.latent_dim)

    z = ops.encode(model, image)
    everywhere = ops.edit(model, z, vector, STRENGTHS)
    restricted = ops.edit(model, z, vector, STRENGTHS, ops.scale_range(model, args.scales))
    cells = torch.cat([image, everywhere.cpu(), image, restricted.cpu()])
    text = (
        f"Input, then strengths {', '.join(f'{s:g}' for s in STRENGTHS)}. Top: all layers; bottom: only "
        f"{ops.scale_label(args.scales, ops.scale_range(model, args.scales))}."
    )
    figure_path = args.out / "edits.png"
    save_image(figure_path, ops.captioned_grid(cells, len(STRENGTHS) + 1, text), overwrite=args.force)
    print(f"wrote {vector_path} and {figure_path}")


def main() -> None:
    """Check the outputs before any work; an AutomodError (an existing output, an unreadable image, ...) is one line on
    stderr and exit code 2, as in the automod commands."""
    args = arguments()
    with one_line_errors():
        check_outputs([args.out / "attribute.safetensors", args.out / "edits.png"], args.force)
        run(args)


if __name__ == "__main__":
    main()
