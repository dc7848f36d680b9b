"""Metrics of a model trained on the built-in dataset, which need no downloaded network: scores against the
renderer's ground truth (`ground_truth.py`, with Wang et al.'s SSIM from `automod_cli/features/ssim.py`) and FD_builtin,
FID's distance in the features of a small network automod trains to read the dataset's factors (`factor_net.py`,
`factor_targets.py`, `fd_builtin.py`)."""
