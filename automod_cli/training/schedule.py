"""Where a run stands in the progressive schedule, as a pure function of the number of images seen."""

from __future__ import annotations

from dataclasses import dataclass

from automod_cli.config import TrainConfig


@dataclass(frozen=True)
class PhaseState:
    level: int  # decoder/encoder block index of the top resolution
    blocks: int  # decoder blocks that run at this level: level + 1, and one more with an active support block
    resolution: int
    alpha: float  # fade-in of the top block, 0 → 1 over the phase's first `fade_images` (fade_fraction of it)
    start: int  # images seen when this phase began
    end: int  # images seen when it ends
    batch_size: int
    lr: float
    kl_margin: float
    settled: bool = (
        True  # the phase is past its fade-in length (also at 4², which has no fade): match_x applies
    )


def fade_images(config: TrainConfig, length: int) -> int:
    """A phase's fade-in length in images: `fade_images` where set (at most the phase), else fade_fraction of it.
    The 4² phase has no fade-in, but its first `fade_images` still count as unsettled (match_x, the pool)."""
    if config.recipe.fade_images is not None:
        return min(config.recipe.fade_images, length)
    return int(config.fade_fraction * length)


def phase_at(config: TrainConfig, images_seen: int) -> PhaseState:
    """The phase that covers `images_seen` (the last phase once the schedule is complete)."""
    start = 0
    resolutions = config.resolutions
    for level, res in enumerate(resolutions):
        length = config.phase_images[res]
        if images_seen < start + length or level == len(resolutions) - 1:
            fade_length = fade_images(config, length)
            fade = 0 if level == 0 else fade_length
            alpha = 1.0 if fade == 0 else min(1.0, max(0.0, (images_seen - start) / fade))
            return PhaseState(
                level=level,
                blocks=config.model.active_blocks(level),
                resolution=res,
                alpha=alpha,
                start=start,
                end=start + length,
                batch_size=config.batch_size[res],
                lr=config.lr[res],
                kl_margin=config.kl_margin[res],
                settled=images_seen - start >= fade_length,
            )
        start += length
    raise AssertionError("unreachable: a config has at least one resolution")


def run_end(config: TrainConfig, end: int) -> tuple[PhaseState, bool]:
    """Where a run that stops at `end` images stands then, and whether that is short of the schedule's goal (its
    top resolution, faded in)."""
    phase = phase_at(config, end)
    short = phase.resolution < config.model.max_resolution or phase.alpha < 1.0
    return phase, short


def describe_end(config: TrainConfig, end: int) -> str:
    """One line on where a run stopping at `end` images will be: '104,000 images: 32² (α 1.00) of 32²'."""
    phase, _ = run_end(config, end)
    top = config.model.max_resolution
    return f"{end:,} images: {phase.resolution}² (α {phase.alpha:.2f}) of {top}²"
