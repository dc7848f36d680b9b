"""Evaluation with the papers' protocols (NeurIPS Sec. 4, Supp. App. A and G): FID and FID of mixtures, LPIPS
reconstruction, perceptual path length, optimisation-based projection, and a Table-2-style comparison.

Every metric takes its feature extractor or distance network as an argument, so the pretrained networks of
`features.py` (loaded offline by `weights.py`) can be swapped for small random ones in tests.
"""
