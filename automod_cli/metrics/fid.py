"""FID of generated samples against a reference set, and FID of samples decoded from latent mixtures.

Protocol (NeurIPS Sec. 4, Supp. App. A): 50,000 random samples against the training set, Inception-v3 pool3
features, the Fréchet distance between the two fitted Gaussians. Samples are decoded by the EMA decoder with
layer noise on (the model as trained; NeurIPS Sec. 4 adds the noise "also improving FID") and quantised to
uint8 like the reference images. FID-mix (NeurIPS Table 1) decodes each sample from two random latents, z_A
driving blocks 0..j-1 and z_B the rest, with the split j uniform over 1..B-1 so that both latents take part.
Random latents are draws from the model's own prior (`model.sample_latents`): unit-sphere latents for the
automodulator and PIONEER, N(0, I) for the VAE and WAE, y = φ⁻¹(z) with z ~ N(0, I) for LIA.

Reference statistics depend only on the images and the feature network, so they are cached per dataset
content (the HDF5 file's checksum), resolution and feature network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from automod_cli.defaults import FID_BATCH, FID_SAMPLES
from automod_cli.errors import AutomodError
from automod_cli.metrics.data import EvalData, image_batches, quantize
from automod_cli.features.nets import FeatureExtractor
from automod_cli.metrics.frechet import RunningMoments, Statistics, statistics_distance
from automod_cli.models import Automodulator
from automod_cli.ops.reconstruct import ProgressCallback

DEFAULT_SAMPLES = FID_SAMPLES  # NeurIPS Sec. 4: "50k batch of generated samples"
DEFAULT_BATCH = FID_BATCH  # pytorch-fid's default batch


@dataclass(frozen=True)
class FIDResult:
    fid: float
    samples: int
    reference: str
    reference_count: int
    reference_cached: bool
    mixed: bool
    statistics_file: Path | None = None  # the cached reference statistics (None: not cached)


def default_cache_dir() -> Path:
    """~/.cache/automod/fid (or under $XDG_CACHE_HOME)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "automod" / "fid"


def feature_statistics(
    batches: Iterable[torch.Tensor],
    extractor: FeatureExtractor,
    stage: str,
    total: int,
    progress: ProgressCallback | None = None,
) -> Statistics:
    """Mean and covariance of the features of uint8 image batches, accumulated batch by batch."""
    moments = RunningMoments()
    with torch.inference_mode():
        for batch in batches:
            moments.add(extractor(batch))
            if progress is not None:
                progress(stage, moments.count, total)
    return moments.statistics()


def statistics_file(data: EvalData, extractor: FeatureExtractor, cache_dir: Path | None) -> Path | None:
    """Where the reference statistics of `data` in `extractor`'s features are cached (None: they are not)."""
    name = getattr(extractor, "name", None)
    return (
        cache_dir / f"{data.key}-{data.resolution}px-{name}.npz" if cache_dir is not None and name else None
    )


def dataset_statistics(
    data: EvalData,
    extractor: FeatureExtractor,
    batch_size: int = DEFAULT_BATCH,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Statistics, bool]:
    """Feature statistics of every image of `data`, read from the cache when present; (statistics, was cached).

    Only extractors with a `name` are cached (the name is part of the key, beside content and resolution)."""
    cached = statistics_file(data, extractor, cache_dir)
    if cached is not None and cached.is_file():
        return Statistics.load(cached), True
    device = _device_of(extractor)
    batches = (quantize(batch).to(device) for batch in image_batches(data, None, batch_size))
    stats = feature_statistics(batches, extractor, f"features of {data.label}", len(data), progress)
    if cached is not None:
        stats.save(cached)
    return stats, False


def random_mixtures(
    z_a: torch.Tensor, z_b: torch.Tensor, num_blocks: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n, num_blocks, D) assignments of two draws z_a, z_b (n, D): z_A on blocks < j, z_B on the rest, j uniform in
    1..num_blocks-1 per row (drawn on the CPU from `generator`)."""
    if num_blocks < 2:
        raise AutomodError("a model trained only at 4×4 has one block: there is nothing to mix.")
    split = torch.randint(1, num_blocks, (len(z_a), 1), generator=generator).to(z_a.device)
    takes_a = torch.arange(num_blocks, device=z_a.device)[None, :] < split
    return torch.where(takes_a[..., None], z_a[:, None, :], z_b[:, None, :])


def sample_statistics(
    model: Automodulator,
    extractor: FeatureExtractor,
    n: int,
    batch_size: int = DEFAULT_BATCH,
    seed: int = 0,
    mix: bool = False,
    progress: ProgressCallback | None = None,
) -> Statistics:
    """Feature statistics of `n` random samples (or mixtures of two) of the model, quantised to uint8.

    Latents are the model's prior draws (`sample_latents`) from a generator seeded with `seed`; layer noise draws
    from torch's global generator."""
    if mix and not model.supports_mixing:
        raise AutomodError(
            "FID-mix needs an AdaIN (automodulator) decoder; this model's classic decoder cannot mix."
        )
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device

    def batches() -> Iterable[torch.Tensor]:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            latents = model.sample_latents(count, generator)
            if mix:
                latents = random_mixtures(
                    latents, model.sample_latents(count, generator), model.num_active_blocks, generator
                )
            yield quantize(model.decode(latents.to(device), noise=True))

    return feature_statistics(batches(), extractor, "mixed samples" if mix else "samples", n, progress)


def fid(
    model: Automodulator,
    reference: EvalData,
    extractor: FeatureExtractor,
    n: int = DEFAULT_SAMPLES,
    batch_size: int = DEFAULT_BATCH,
    seed: int = 0,
    mix: bool = False,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> FIDResult:
    """FID (or FID-mix) of `n` samples of `model` against every image of `reference`."""
    ref_stats, was_cached = dataset_statistics(reference, extractor, batch_size, cache_dir, progress)
    gen_stats = sample_statistics(model, extractor, n, batch_size, seed, mix, progress)
    value = statistics_distance(gen_stats, ref_stats)
    return FIDResult(
        value,
        n,
        reference.label,
        ref_stats.count,
        was_cached,
        mix,
        statistics_file(reference, extractor, cache_dir),
    )


def _device_of(extractor: FeatureExtractor) -> torch.device:
    parameters = extractor.parameters() if isinstance(extractor, torch.nn.Module) else iter(())
    first = next(parameters, None)
    return first.device if first is not None else torch.device("cpu")
