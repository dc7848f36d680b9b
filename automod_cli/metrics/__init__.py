"""Evaluation: the papers' protocols (NeurIPS Sec. 4, Supp. App. A and G) and the built-in dataset's own metrics.

- `registry.py`: one record per metric (what `automod eval NAME` and `eval compare` run) and each score's protocol;
  `compare.py`: the Table-2-style comparison of several models.
- The papers' metrics: `fid.py` (FID, FID-mix), `lpips_recon.py`, `ppl.py`, `inversion.py` (encoder vs
  optimisation-based projection, which itself is `ops/projection.py`), on `frechet.py` and `data.py`.
- Their networks are `automod_cli.features` (Inception pool3, LPIPS, the face crop, SSIM, the offline weight
  lookup); `inventory.py` lists every pretrained file (`eval weights`).
- `builtin/`: metrics of models trained on the built-in dataset (ground truth, FD_builtin and its network).

The metrics measure the image operations, so `metrics` imports `ops`, never the reverse.

Every metric takes its feature extractor or distance network as an argument, so the pretrained networks can be
swapped for small random ones in tests.
"""
