"""Where a run stands in the progressive schedule, as a pure function of the number of images seen."""

from __future__ import annotations

from dataclasses import dataclass

from automod_cli.config import TrainConfig


@dataclass(frozen=True)
class PhaseState:
    level: int  # decoder/encoder block index of the top resolution
    blocks: int  # decoder blocks that run at this level: level + 1, and one more with an active support block
    resolution: int
    alpha: float  # fade-in of the top block, 0 → 1 over the first `fade_fraction` of the phase
    start: int  # images seen when this phase began
    end: int  # images seen when it ends
    batch_size: int
    lr: float
    kl_margin: float


def phase_at(config: TrainConfig, images_seen: int) -> PhaseState:
    """The phase that covers `images_seen` (the last phase once the schedule is complete)."""
    start = 0
    resolutions = config.resolutions
    for level, res in enumerate(resolutions):
        length = config.phase_images[res]
        if images_seen < start + length or level == len(resolutions) - 1:
            fade = 0 if level == 0 else int(config.fade_fraction * length)
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
            )
        start += length
    raise AssertionError("unreachable: a config has at least one resolution")
