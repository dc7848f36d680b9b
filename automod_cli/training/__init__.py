"""Progressive training of every model kind, as a Python API: `train(config, run_dir)` starts a run and
`resume(path)` continues one; both pick the model kind (the config's type, or the checkpoint's metadata) and run
the one training loop (training/loop.py). `automod train` maps its options onto a start (training/start.py: a new
run's config and run directory, or the checkpoint a resume continues from) and hands it to `launch`, which makes
one of these calls.

    from automod_cli.presets import resolve_train_config
    from automod_cli import training
    result = training.train(resolve_train_config("builtin", {"total_kimg": 8}), "runs/try")
    result = training.resume("runs/try", stop_after_images=16_000)
"""

from __future__ import annotations

from pathlib import Path

from automod_cli.checkpoint import is_lia_checkpoint, read_meta
from automod_cli.config import TrainConfig
from automod_cli.errors import AutomodError
from automod_cli.features.vgg import FeatureNet
from automod_cli.training.automodulator import train_automodulator
from automod_cli.training.lia.config import LiaTrainConfig
from automod_cli.training.lia.run import train_lia
from automod_cli.training.loop import TrainResult
from automod_cli.training.run import Report
from automod_cli.training.start import Start, resume_point

__all__ = ["TrainResult", "launch", "resume", "resume_point", "train"]


def train(
    config: TrainConfig | LiaTrainConfig,
    run_dir: str | Path,
    *,
    device: str = "auto",
    report: Report | None = None,
    stop_after_images: int | None = None,
    stage: int | None = None,
    features: FeatureNet | None = None,
    vgg_weights: Path | None = None,
) -> TrainResult:
    """Start a new run in `run_dir`: LIA for a LiaTrainConfig (`stage` 1, 2 or both; stage 2's ε is `features`
    or VGG16 from `vgg_weights`), else the automodulator or the baseline `config.kind` names. `report(event, data)`
    receives the loop's events (start, step, log, phase, checkpoint, grids, done); `stop_after_images` stops early
    with a checkpoint."""
    if isinstance(config, LiaTrainConfig):
        return train_lia(
            config,
            Path(run_dir),
            stage,
            device=device,
            report=report,
            stop_after_images=stop_after_images,
            features=features,
            vgg_weights=vgg_weights,
        )
    if stage is not None or features is not None or vgg_weights is not None:
        raise AutomodError(
            "stages and the VGG16 weights belong to LIA: pass a LIA config (resolve_lia_config)."
        )
    return train_automodulator(
        config, Path(run_dir), device=device, report=report, stop_after_images=stop_after_images
    )


def resume(
    path: str | Path,
    *,
    device: str = "auto",
    report: Report | None = None,
    stop_after_images: int | None = None,
    total_kimg: float | None = None,
    time_budget_min: float | None = None,
    stage: int | None = None,
    features: FeatureNet | None = None,
    vgg_weights: Path | None = None,
) -> TrainResult:
    """Continue the run of `path` (a run directory or one of its checkpoints) exactly where it stopped, as the
    model kind its checkpoint holds, with the config saved in it. `total_kimg` gives an automodulator run a new
    length, `time_budget_min` a new time budget (0: none); for LIA, `stage` 2 continues a finished stage 1 (other
    arguments as for `train`)."""
    checkpoint, _ = resume_point(path)
    run_dir = checkpoint.parent.parent
    if is_lia_checkpoint(read_meta(checkpoint)):
        if total_kimg is not None or time_budget_min is not None:
            raise AutomodError(
                "a LIA run's stage lengths are fixed when it starts: resume it without a new length or time "
                "budget."
            )
        return train_lia(
            None,
            run_dir,
            stage,
            device=device,
            resume=checkpoint,
            report=report,
            stop_after_images=stop_after_images,
            features=features,
            vgg_weights=vgg_weights,
        )
    if stage is not None or features is not None or vgg_weights is not None:
        raise AutomodError(f"'{checkpoint}' is not a LIA run: stages and the VGG16 weights belong to LIA.")
    return train_automodulator(
        None,
        run_dir,
        device=device,
        resume=checkpoint,
        report=report,
        stop_after_images=stop_after_images,
        total_kimg=total_kimg,
        time_budget_min=time_budget_min,
    )


def launch(
    start: Start, *, device: str = "auto", report: Report | None = None, stop_after_images: int | None = None
) -> TrainResult:
    """Run a `Start` (training/start.py's `plan`: what `automod train` asked for): resume its checkpoint, with its
    new length, or train its new run; a staged run (LIA) in the stage it names."""
    staged = {"stage": start.stage, "vgg_weights": start.vgg_weights} if start.staged else {}
    if start.checkpoint is not None:
        return resume(
            start.checkpoint,
            device=device,
            report=report,
            stop_after_images=stop_after_images,
            total_kimg=start.total_kimg,
            time_budget_min=start.time_budget_min,
            **staged,
        )
    return train(
        start.config,
        start.run_dir,
        device=device,
        report=report,
        stop_after_images=stop_after_images,
        **staged,
    )
