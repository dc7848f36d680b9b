#!/usr/bin/env python3
"""The end of `make demo`: a built-in model's held-out reconstruction error beside the mean image's and its mixing
error against the renderer's truth (the numbers the README quotes; `automod eval recon-truth` and `automod eval
mix-truth` measure the same), and one picture of held-out pairs: A, B, their reconstructions, the truth and the
model's mix (automod_cli/metrics/builtin/showcase.py).
Usage: python scripts/demo_report.py RUN [PICTURE] [--json FILE] [--images N] [--pairs N]
(default picture: RUN/demo.png, replaced)"""

import argparse
import json
from pathlib import Path

from automod_cli.images import save_image
from automod_cli.locate import load_model
from automod_cli.metrics.builtin import showcase


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "run", type=Path, help="a run directory or checkpoint of a model trained on the built-in data"
    )
    parser.add_argument(
        "picture", type=Path, nargs="?", help="where to write the picture (default RUN/demo.png)"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    parser.add_argument(
        "--images", type=int, default=1024, help="held-out images reconstructed (default: all 1,024)"
    )
    parser.add_argument("--pairs", type=int, default=512, help="held-out pairs mixed (default: all 512)")
    args = parser.parse_args()
    model = load_model(args.run).eval()
    result = showcase.summary(model, images=args.images, pairs=args.pairs)
    print("\n".join(result.lines()))
    picture = args.picture or (args.run if args.run.is_dir() else args.run.parent.parent) / "demo.png"
    save_image(picture, showcase.figure(model, result), overwrite=True)
    print(f"picture: {picture}")
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_dict(), indent=1) + "\n")


if __name__ == "__main__":
    main()
