"""Where a run starts, as `automod train` asks for it: a new run's config (a preset, then a config file, `--set` and
the options given as settings, and a model to fine-tune) and run directory, or the checkpoint a resumed run
continues from. The command maps its options onto a `Request`; `plan` checks what goes together (the options of a
kind trained in stages, LIA, among them) and gives the `Start` that `training.launch` then runs (`new_run` and
`resumed_run` are its two halves, also callable alone).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automod_cli.checkpoint import read_meta, run_checkpoints
from automod_cli.config import TrainConfig
from automod_cli.errors import AutomodError
from automod_cli.kinds import DEFAULT, KINDS, STAGES, of_meta
from automod_cli.locate import find_checkpoint
from automod_cli.presets import resolve_train_config
from automod_cli.training.init import init_config, init_model
from automod_cli.training.lia.config import LiaTrainConfig, resolve_lia_config
from automod_cli.training.state import latest_resumable

RUNS_DIR = Path("runs")


@dataclass(frozen=True)
class Request:
    """What `automod train` is asked for, option by option (None: not given). `settings` are the options that stand
    for config settings, keyed as `--set` names (`model.decoder`, `total_kimg`, ...); of them a resumed run takes only
    `total_kimg`, its new length, and `time_budget_min`, its new time budget."""

    settings: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    model: str | None = None  # the kind: kinds.KINDS
    data: Path | None = None
    config_file: Path | None = None
    assignments: tuple[str, ...] = ()  # `--set NAME=VALUE`, in order
    init: str | None = None  # fine-tune from this model's weights
    out: Path | None = None
    resume: Path | None = None  # a run directory or one of its checkpoints
    stage: int | None = None  # LIA only: 1 or 2 (None: both in sequence)
    vgg_weights: Path | None = None  # LIA only: VGG16's weight file for stage 2


@dataclass(frozen=True)
class Start:
    """A run about to start: a new one (its config and run directory) or a resumed one (its checkpoint)."""

    run_dir: Path
    config: TrainConfig | LiaTrainConfig | None = None  # None: resumed, with the config its checkpoint holds
    checkpoint: Path | None = None  # the checkpoint a resumed run continues from
    notes: tuple[str, ...] = ()  # newer checkpoints a resume passed over, and why
    staged: bool = False  # a kind trained in stages with its own config type (LIA: --stage, --weights)
    total_kimg: float | None = None  # a resumed run's new length
    time_budget_min: float | None = None  # a resumed run's new time budget (0: none)
    stage: int | None = None  # a staged run's stage (None: every stage in sequence)
    vgg_weights: Path | None = None  # a staged run's VGG16 weight file
    origin: int | None = None  # where a fine-tuning run (--init) started, from which its images count

    def train_config(self) -> TrainConfig:
        """The config an automodulator (PIONEER, VAE, WAE) run trains with: a new run's, or the one its checkpoint
        holds, with its new length and time budget."""
        if self.config is not None:
            return self.config
        config = TrainConfig.from_dict(read_meta(self.checkpoint)["train_config"])
        return config.resumed(self.total_kimg, self.time_budget_min)


# The options a run trained in stages (LIA) has no use for, as the settings they stand for and their flags, in the
# order an error names them: the automodulator's loss options, and for a resumed run a new length (LIA's stage
# lengths are fixed when it starts).
NOT_STAGED = {
    "flip_invariance_layer": "--flip-invariance-layer",
    "reconstruction": "--reconstruction",
    "layer_loss": "--layer-loss",
    "recipe": "--recipe",
    "total_kimg": "--kimg",
    "time_budget_min": "--time-budget",
    "compile": "--compile",
}


def plan(request: Request) -> Start:
    """What `automod train` asked for, checked, as the run to start: the resumed run, or a new one (`new_run`). One
    line for options that do not go together: an unknown kind, `--init` with a resume or LIA, LIA's options for
    another kind, the automodulator's for LIA (`check_staged_options`)."""
    if request.model is not None and request.model not in KINDS:
        raise AutomodError(f"unknown model '{request.model}': choose one of {', '.join(KINDS)} (--model).")
    if request.init is not None and (request.resume is not None or staged(request.model)):
        raise AutomodError(
            "--init starts a new run from a model's weights: it cannot be combined with --resume or "
            "--model lia."
        )
    resumed = resumed_run(request.resume) if request.resume is not None else None
    is_staged = resumed.staged if resumed is not None else staged(request.model)
    check_staged_options(is_staged, request)
    if resumed is not None:
        settings = request.settings
        start = dataclasses.replace(
            resumed,
            total_kimg=settings.get("total_kimg"),
            time_budget_min=settings.get("time_budget_min"),
        )
    else:
        start = new_run(
            request.preset,
            request.model,
            request.settings,
            data=request.data,
            config_file=request.config_file,
            assignments=list(request.assignments),
            init=request.init,
            out=request.out,
        )
    # read now: the checkpoint resumed from may be rotated away by the time the run ends
    origin = fine_tune_start(start.config, start.checkpoint)
    return dataclasses.replace(start, stage=request.stage, vgg_weights=request.vgg_weights, origin=origin)


def check_staged_options(is_staged: bool, request: Request) -> None:
    """`--stage` and `--weights` only for a kind trained in stages (LIA); for it, none of NOT_STAGED (`total_kimg`
    only for a resume: a new LIA run takes its length)."""
    if not is_staged and (request.stage is not None or request.vgg_weights is not None):
        raise AutomodError(
            "--stage and --weights belong to LIA: use them with --model lia (or --resume a LIA run)."
        )
    asked = {key: request.settings.get(key) for key in NOT_STAGED}
    asked["compile"] = asked["compile"] or None  # --no-compile asks for nothing
    if request.resume is None:
        asked["total_kimg"] = None
    given = [NOT_STAGED[key] for key, value in asked.items() if value is not None]
    if is_staged and given:
        raise AutomodError(
            f"{given[0]} does not apply to a LIA run (the automodulator's loss options, a time budget, or a new "
            "length for a resumed run: LIA's stage lengths are fixed when it starts)."
        )


def staged(kind: str | None) -> bool:
    """Whether `--model KIND` trains in stages of its own (kinds.STAGES: LIA)."""
    return KINDS[kind or DEFAULT].step == STAGES


def resume_point(path: str | Path) -> tuple[Path, list[str]]:
    """The checkpoint a resume of `path` starts from: a run directory's newest pair that can be resumed from (with a
    note on each newer pair passed over), or the checkpoint file `path` names."""
    path = Path(path)
    if path.is_dir():
        return latest_resumable(path)
    if not path.exists():
        raise AutomodError(
            f"there is no run at '{path}' to resume: --resume takes a run directory (e.g. runs/demo) "
            "or one of its checkpoints."
        )
    return find_checkpoint(path), []


def resumed_run(path: str | Path) -> Start:
    """Continue the run of `path` (a run directory or one of its checkpoints)."""
    checkpoint, notes = resume_point(path)
    is_staged = of_meta(read_meta(checkpoint)).step == STAGES
    return Start(checkpoint.parent.parent, checkpoint=checkpoint, notes=tuple(notes), staged=is_staged)


def new_run(
    preset: str | None,
    kind: str | None,
    settings: dict[str, Any],
    *,
    data: Path | None = None,
    config_file: Path | None = None,
    assignments: list[str] = (),
    init: str | None = None,
    out: Path | None = None,
) -> Start:
    """A new run of model `kind` (None: the automodulator) on `data` (None: the built-in dataset): the `preset`'s
    schedule (default builtin, or custom with data), then the settings of `config_file`, `assignments` (NAME=VALUE,
    `--set`) and `settings` (the options given, as `--set` keys; None values are left out), resolved; with `init`,
    fine-tuning from that model. Its run directory is `out`, else runs/PRESET (-KIND for a baseline) numbered if
    taken."""
    name = preset or ("builtin" if data is None else "custom")
    is_staged = staged(kind)
    settings = {"kind": None if is_staged else kind, **settings}
    if init is not None:  # the schedule must reach the init model's resolution
        init_path, settings["model.max_resolution"] = init_model(
            init, settings.get("model.max_resolution"), name
        )
    resolve = resolve_lia_config if is_staged else resolve_train_config
    config = resolve(name, _overrides(data, config_file, list(assignments), settings))
    if init is not None:
        config = init_config(config, init_path)
    kind_name = (kind or DEFAULT) if is_staged else config.kind
    run_dir = _run_dir(out, name if kind_name == DEFAULT else f"{name}-{kind_name}")
    return Start(run_dir, config=config, staged=is_staged)


def _overrides(
    data: Path | None, config_file: Path | None, assignments: list[str], settings: dict[str, Any]
) -> dict:
    overrides: dict = {}
    if config_file is not None:
        try:
            overrides.update(json.loads(Path(config_file).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise AutomodError(f"cannot read config file '{config_file}': {exc}.") from None
        overrides.pop("preset", None)
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AutomodError(f"--set takes NAME=VALUE (e.g. --set lr.64=0.001), got '{item}'.")
        overrides[key.strip()] = value.strip()
    if data is not None:
        if not Path(data).is_file():
            raise AutomodError(f"data file '{data}' does not exist: make one with `automod prep`.")
        overrides["data"] = str(data)
    overrides.update({key: value for key, value in settings.items() if value is not None})
    return overrides


def _run_dir(out: Path | None, name: str) -> Path:
    if out is None:
        out = RUNS_DIR / name
        n = 1
        while run_checkpoints(out) or (out / "config.json").exists():
            n += 1
            out = RUNS_DIR / f"{name}-{n}"
    elif run_checkpoints(out):
        raise AutomodError(
            f"'{out}' already holds a run: continue it with --resume {out}, or choose another --out."
        )
    return Path(out)


def fine_tune_start(config: TrainConfig | LiaTrainConfig | None, checkpoint: Path | None) -> int | None:
    """Where a fine-tuning run (`--init`) started on its schedule, from which its own images count; None for any
    other run. `config` is None for a resumed run: its checkpoint's config then."""
    if config is None:
        recorded = read_meta(checkpoint).get("train_config") or {}
    else:
        recorded = {"init": getattr(config, "init", None), "start_images": getattr(config, "start_images", 0)}
    return int(recorded.get("start_images", 0)) if recorded.get("init") else None
