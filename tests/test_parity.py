"""Step parity with the authors' training code, on recordings of it (../shared/fixtures/authors-training, README
there; without it the copy of case a in tests/data/authors-training; or the folder AUTOMOD_PARITY_FIXTURES names,
in the same layout).

Each case starts from `automod import` of the recorded checkpoint and `train --init`'s loading of it, replays the
recorded random draws (training/draws.py's ReplayDraws) through automod's `--recipe authors` training iteration
(training/loop.py's `train_on`: encoder step, decoder step, EMA) on the recorded real batch, and compares, at the
tolerances the fixture's README states: every loss term, the gradients each optimiser step used, the spectral-norm
vectors after each encoder call, Adam's moments and step counts, and every weight after the iteration (decoder, EMA
decoder, encoder, d_ρ), for every recorded iteration. automod orders the mixed rows first as the authors do, so no
row is permuted. Weights whose recorded gradient was below 1e-6 in some iteration so far are rounding noise that
Adam turns into steps of up to ±lr of random sign (the README's "set"): they are allowed 8.3·lr instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from automod_cli import authors
from automod_cli.config import TrainConfig
from automod_cli.presets import resolve_train_config
from automod_cli.training.automodulator import AutomodulatorRun
from automod_cli.training import fade
from automod_cli.training.draws import ReplayDraws
from automod_cli.training.init import init_config
from automod_cli.training.loop import train_on
from automod_cli.training.schedule import PhaseState

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "authors-training"  # all four recorded cases
# case a alone is kept in tests/data, so that a checkout without ../shared still checks a step of the authors' code
FIXTURES = Path(
    os.environ.get(
        "AUTOMOD_PARITY_FIXTURES", SHARED if SHARED.is_dir() else ROOT / "tests" / "data" / "authors-training"
    )
)
CASES = (
    sorted(p.name for p in FIXTURES.iterdir() if (p / "manifest.json").is_file()) if FIXTURES.is_dir() else []
)

# The README's tolerances (five times the float noise it measured or more)
LOSS_RTOL = 1e-5
SNU_TOL = 5e-5
GRAD_TOL = {"network": 5e-4, "robust": 3e-3}
WEIGHT_TOL = 5e-5
NOISY_GRAD = 1e-6  # an element whose recorded gradient fell below this is in the noisy set
NOISY_STEPS = 8.3  # ... and is allowed this many learning rates

pytestmark = pytest.mark.skipif(
    not CASES, reason=f"no parity recordings in {FIXTURES} (AUTOMOD_PARITY_FIXTURES)"
)


class Case:
    """One recording: its manifest, its arrays, and the map from the recording's tensor names to automod's."""

    def __init__(self, name: str):
        folder = FIXTURES / name
        self.manifest = json.loads((folder / "manifest.json").read_text())
        self.arrays = np.load(folder / "steps.npz")
        self.checkpoint = folder / "checkpoint.pth"
        self.phase = int(self.manifest["network"]["phase"])
        blocks = len(self.manifest["network"]["encoder_from_rgb_widths"])
        # recording name → (automod module, tensor name)
        self.names: dict[str, tuple[str, str]] = {}
        for ours, theirs in authors.decoder_names(self.phase).items():
            if ours.endswith(".weight_gain"):
                continue  # buffers that no step changes (the README: they stay 1)
            self.names[f"generator/{theirs}"] = ("decoder", ours)
            self.names[f"g_running/{theirs}"] = ("decoder_ema", ours)
        for ours, theirs in authors.encoder_names(self.phase, blocks).items():
            key = f"snu/{theirs[4:]}" if theirs.startswith("SNU.") else f"encoder/{theirs}"
            self.names[key] = ("encoder", ours)
        for name in ("alpha", "scale"):
            self.names[f"robust/adaptive_loss_{self.phase}.latent_{name}"] = ("robust", f"latent_{name}")

    def stored(self, key: str) -> torch.Tensor:
        """A tensor of the recorded checkpoint by its recording name (generator/, g_running/, robust/)."""
        if not hasattr(self, "raw"):
            self.raw = authors.read(self.checkpoint)
        space, name = key.split("/", 1)
        if space == "robust":
            loss, part = name.split(".")
            return self.raw[loss][0][part]
        return self.raw[{"generator": "G_state_dict", "g_running": "G_running_state_dict"}[space]][
            f"module.{name}"
        ]

    def array(self, key: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.arrays[key]))

    def draws(self, iteration: dict) -> ReplayDraws:
        records = []
        for draw in iteration["draws"]:
            value = self.arrays[draw["key"]]
            records.append((draw["tag"], value.item() if value.shape == () else value))
        return ReplayDraws(records)


def start_run(case: Case, tmp_path: Path) -> AutomodulatorRun:
    """`automod import` of the case's checkpoint, then a `--recipe authors` run that starts from it as `train
    --init` starts (its network shape, level and fade-in, the imported weights, fresh optimisers)."""
    imported = authors.import_checkpoint(case.checkpoint, tmp_path / "imported.safetensors")
    training = case.manifest["training"]
    resolution = int(case.manifest["network"]["resolution"])
    config = resolve_train_config(
        "custom",
        {
            "recipe": "authors",
            "model.max_resolution": resolution,
            "batch_size": training["batch"],
            "data_limit": 2 * training["batch"],
            "workers": 0,
            "fake_pool": training["pool_size"],
            "adam_betas": training["adam"]["betas"],
            "adam_eps": training["adam"]["eps"],
            "recipe.ema_decay": training["ema_decay"],
            "recipe.mixed_fraction_encoder": training["stylemix_E"],
            "recipe.mixed_fraction_decoder": training["stylemix_D"],
            "recipe.match_x": training["matching_phase_x"],
        },
    )
    config = init_config(config, imported)
    run = AutomodulatorRun(config, tmp_path / "run", device=torch.device("cpu"))
    init_pool = case.manifest.get("init_pool")
    if init_pool:
        run.pool.images = case.array(init_pool["key"]).clone()
        assert len(run.pool) == init_pool["count"]
    return run


def phase_of(case: Case, iteration: dict, config: TrainConfig) -> PhaseState:
    """The phase the authors' loop was in: their alpha and margin, settled (match_x raised, pool queried) once
    alpha reaches 1."""
    level, alpha = case.phase, float(iteration["alpha"])
    settled = alpha >= 1.0
    assert iteration["match_x"] == (config.recipe.match_x if settled else 1.0)
    lr = iteration["lr"]
    assert lr["optimizerD"] == lr["optimizerG"]
    return PhaseState(
        level=level,
        blocks=level + 1,
        resolution=4 * 2**level,
        alpha=alpha,
        start=0,
        end=1 << 40,
        batch_size=int(case.manifest["training"]["batch"]),
        lr=float(lr["optimizerD"]),
        kl_margin=float(iteration["margin"]),
        settled=settled,
    )


def tensor_of(run: AutomodulatorRun, module: str, name: str) -> torch.Tensor:
    return run.modules()[module].state_dict()[name]


def close(
    ours: torch.Tensor,
    theirs: torch.Tensor,
    tol: float,
    what: str,
    noisy: torch.Tensor | None = None,
    allowance: float = 0.0,
) -> None:
    """|ours − theirs| ≤ tol·max|theirs| elementwise, except `noisy` elements, which may differ by `allowance`."""
    ours = ours.detach().reshape(theirs.shape).to(torch.float64)
    theirs = theirs.to(torch.float64)
    limit = torch.full_like(theirs, tol * float(theirs.abs().max()))
    if noisy is not None:
        limit = torch.where(noisy.reshape(theirs.shape), torch.full_like(limit, allowance), limit)
    excess = (ours - theirs).abs() - limit
    worst = int(excess.argmax())
    assert excess.max() <= 0, (
        f"{what}: element {worst} is {ours.flatten()[worst].item():.9g}, the authors' code "
        f"{theirs.flatten()[worst].item():.9g} (limit ±{limit.flatten()[worst].item():.3g})"
    )


def check_losses(case: Case, iteration: dict, scalars: dict, config: TrainConfig, phase: PhaseState) -> None:
    """The authors' loss terms from the step's scalars: their names, their weights (docs/training.md)."""
    recipe = config.recipe
    s = recipe.kl_scale
    match = recipe.lambda_x * (recipe.match_x if phase.settled else 1.0)
    ours = {
        "encoder": {
            "KL_real": s * scalars["kl_real"],
            "err": match * scalars["recon"],
            "KL_fake": -s * scalars["kl_fake_enc"],
            "e_loss": scalars["enc_loss"],
        },
        "decoder": {
            "kl": s * scalars["kl_fake"],
            "z_diff": recipe.lambda_z * scalars["latent_rec"],
            "z_mix_diff": scalars["layer_loss"],
            "loss": scalars["dec_loss"],
        },
    }
    for step, terms in ours.items():
        for name, value in terms.items():
            theirs = float(iteration["losses"][step][name])
            got = float(value.reshape(()))
            assert got == pytest.approx(theirs, rel=LOSS_RTOL, abs=1e-7), (
                f"it{iteration['index']} {step} {name}"
            )


class Recorder:
    """The gradients each optimiser step uses and the spectral-norm vectors after each encoder call. After each
    optimiser step it also checks the noisy set's elements of the stepped weights against the recording (±8.3·lr)
    and then sets them to the recorded values (the README allows skipping them): their random steps would
    otherwise move every later computation, which is then compared at the tight tolerances."""

    def __init__(self, run: AutomodulatorRun, case: Case):
        self.grads: dict[str, dict[str, torch.Tensor]] = {}
        self.snu: list[dict[str, torch.Tensor]] = []
        self.pins: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # "module/name" → (noisy mask, recorded)
        self.allowance = 0.0
        names = {
            id(p): f"{module}/{name}"
            for module, m in run.modules().items()
            for name, p in m.named_parameters()
        }
        for opt in run.optimizers.values():
            step = opt.step

            def recorded(*args, _step=step, _opt=opt, **kwargs):
                label = "decoder_step" if _opt is run.optimizers["decoder"] else "encoder_step"
                grads = self.grads.setdefault(label, {})
                params = [p for group in _opt.param_groups for p in group["params"] if p.grad is not None]
                for p in params:
                    grads[names[id(p)]] = p.grad.detach().clone()
                result = _step(*args, **kwargs)
                with torch.no_grad():
                    for p in params:
                        if names[id(p)] in self.pins:
                            mask, theirs = self.pins[names[id(p)]]
                            mask, theirs = mask.reshape(p.shape), theirs.reshape(p.shape)
                            close(
                                p[mask],
                                theirs[mask],
                                0.0,
                                f"{names[id(p)]}: noisy set",
                                torch.ones_like(theirs[mask], dtype=torch.bool),
                                self.allowance,
                            )
                            p[mask] = theirs[mask]
                return result

            opt.step = recorded
        case_names = case.names

        def after_call(module, inputs, output):
            self.snu.append(
                {name: b.detach().clone() for name, b in module.named_buffers() if name.endswith(".u")}
            )

        run.nets.encoder.register_forward_hook(after_call)
        self.case_names = case_names

    def prepare(self, iteration: dict, noisy: dict[str, torch.Tensor], case: Case, lr: float) -> None:
        """Before an iteration: no gradients yet, and the noisy set's recorded values after it."""
        self.grads, self.snu, self.allowance, self.pins = {}, [], NOISY_STEPS * lr, {}
        for key, mask in noisy.items():
            module, ours = case.names[key]
            if module != "decoder_ema" and mask.any():
                self.pins[f"{module}/{ours}"] = (mask, case.array(iteration["state"][key]))


@pytest.mark.parametrize("name", CASES)
def test_every_recorded_iteration_matches_the_authors_code(name, tmp_path):
    torch.set_num_threads(1)
    case = Case(name)
    run = start_run(case, tmp_path)
    config = run.config
    recorder = Recorder(run, case)
    noisy: dict[str, torch.Tensor] = {}  # recording name → elements in the noisy set so far
    for iteration in case.manifest["iterations"]:
        t = iteration["index"]
        phase = phase_of(case, iteration, config)
        for recorded in iteration["grads"].values():
            for key, array_key in recorded.items():
                small = case.array(array_key).abs() < NOISY_GRAD
                noisy[key] = noisy[key] | small if key in noisy else small
        recorder.prepare(iteration, noisy, case, phase.lr)
        run.draws = case.draws(iteration)
        scalars = train_on(run, case.array(iteration["real"]), phase)
        assert run.draws.left() == {}, f"it{t}: recorded draws left unused: {run.draws.left()}"
        check_losses(case, iteration, scalars, config, phase)
        # gradients of each optimiser step
        for step, recorded in iteration["grads"].items():
            for key, array_key in recorded.items():
                module, ours = case.names[key]
                theirs = case.array(array_key)
                tol = GRAD_TOL["robust" if module == "robust" else "network"]
                assert f"{module}/{ours}" in recorder.grads.get(step, {}), (
                    f"it{t} {step}: no gradient for {key}"
                )
                close(
                    recorder.grads[step][f"{module}/{ours}"], theirs, tol, f"it{t} {step} gradient of {key}"
                )
            assert len(recorder.grads[step]) == len(recorded), f"it{t} {step}: other parameters got gradients"
        # spectral-norm vectors after each of the three encoder calls
        assert len(recorder.snu) == len(iteration["snu_after_encoder_calls"]), f"it{t}: encoder calls"
        for call, (ours, theirs) in enumerate(zip(recorder.snu, iteration["snu_after_encoder_calls"]), 1):
            for k, array_key in theirs.items():
                close(
                    ours[case.names[f"snu/{k}"][1]],
                    case.array(array_key),
                    SNU_TOL,
                    f"it{t} u{k} after call {call}",
                )
        # every weight after the iteration (EMA included; the noisy set was checked and pinned at its steps)
        for key, array_key in iteration["state"].items():
            if (
                key not in case.names
            ):  # not in automod's network (noise.0, other levels' d_ρ): unused, unchanged,
                expected = case.stored(
                    key
                )  # or in G_running averaged towards G's unchanged value (their EMA)
                if key.startswith("g_running/"):
                    unchanged = case.stored(key.replace("g_running/", "generator/"))
                    expected = unchanged + (expected - unchanged) * config.recipe.ema_decay**t
                close(case.array(array_key), expected, 1e-6, f"it{t} {key} (unused by automod)")
                continue
            module, ours = case.names[key]
            close(tensor_of(run, module, ours), case.array(array_key), WEIGHT_TOL, f"it{t} {key}")
        # Adam: step counts, exp_avg (β1 = 0: the step's gradient) and exp_avg_sq
        for optimizer, params in iteration["adam"].items():
            step = "encoder_step" if optimizer == "optimizerD" else "decoder_step"
            for key, entry in params.items():
                module, ours = case.names[key]
                param = dict(run.modules()[module].named_parameters())[ours]
                state = next(opt.state[param] for opt in run.optimizers.values() if param in opt.state)
                assert float(state["step"]) == entry["step"], f"it{t} {optimizer} {key} step count"
                tol = GRAD_TOL["robust" if module == "robust" else "network"]
                close(
                    state["exp_avg"], case.array(entry["exp_avg"]), tol, f"it{t} {optimizer} exp_avg of {key}"
                )
                close(
                    state["exp_avg_sq"],
                    case.array(entry["exp_avg_sq"]),
                    tol,
                    f"it{t} {optimizer} exp_avg_sq of {key}",
                )
            assert step in iteration["grads"]
        # the pool
        pool = iteration["pool"]
        if run.pool is not None:
            assert len(run.pool) == pool["size_after"], f"it{t}: pool size"
        if f"it{t}/pool" in case.arrays:
            close(run.pool.images, case.array(f"it{t}/pool"), WEIGHT_TOL, f"it{t} pool")


@pytest.mark.parametrize("name", CASES[:1])
def test_an_imported_robust_loss_has_the_authors_shape_and_scale(name, tmp_path):
    """`automod import` keeps d_ρ's α and scale: their α = lo + (hi − lo)·sigmoid(a) and scale (1 − 1e-5)·
    softplus(b + ln(e − 1)) + 1e-5 (Barron's maps, written out here) of their stored a and b, pixel by pixel."""
    case = Case(name)
    run = start_run(case, tmp_path)
    stored = authors.read(case.checkpoint)[f"adaptive_loss_{case.phase}"][0]
    a, b = (
        stored[f"latent_{n}"].double().numpy().reshape(run.nets.robust.latent_alpha.shape)
        for n in ("alpha", "scale")
    )
    np.testing.assert_allclose(
        run.nets.robust.alpha().detach().numpy(), 0.001 + 1.998 / (1 + np.exp(-a)), rtol=1e-6
    )
    expected_scale = (1 - 1e-5) * np.log1p(np.exp(b + np.log(np.e - 1))) + 1e-5
    np.testing.assert_allclose(run.nets.robust.scale().detach().numpy(), expected_scale, rtol=1e-6)
    assert (
        np.abs(expected_scale - 1.0).max() > 0.1
    )  # the recorded scales are not the neutral 1 (a real check)


def test_replayed_draws_are_served_by_tag_and_account_for_every_draw():
    replay = ReplayDraws(
        [
            ("E.z", np.full((2, 3), 2.0, np.float32)),
            ("E.split", 2),
            ("E.pool.u", 0.7),
            ("E.pool.slot", 5),
            ("E.pool.u", 0.2),
        ]
    )
    assert replay.split("E.split", 3) == 2
    torch.testing.assert_close(replay.latents("E.z", 2, 3, "cpu"), torch.full((2, 3), 3**-0.5))
    assert replay.pool_choices(2, 200) == [5, None] and replay.left() == {}
    assert replay.requested == ["E.split", "E.z", "E.pool.u", "E.pool.slot", "E.pool.u"]
    with pytest.raises(Exception, match="no \\(further\\) draw 'D.z'"):
        replay.latents("D.z", 2, 3, "cpu")


@pytest.mark.parametrize(
    "name", [c for c in CASES if any("real_fade" in it for it in Case(c).manifest["iterations"])]
)
def test_a_faded_real_batch_is_the_authors_loaders_bit_for_bit(name):
    """Recipe.real_fade = "blended" (training/fade.py) against the recorded fade-in batches: PIL's half-size copy of
    each 8-bit image, and the truncated blend, equal theirs exactly."""
    case = Case(name)
    for iteration in case.manifest["iterations"]:
        hi = np.asarray(case.arrays[iteration["real_fade"]["hi_u8"]])
        lo = np.asarray(case.arrays[iteration["real_fade"]["lo_u8"]])
        assert np.array_equal(fade.half_size(hi), lo)
        assert torch.equal(fade.blend_bytes(hi, lo, iteration["alpha"]), case.array(iteration["real"]))
        # from the sharp batch in [-1, 1], as a run holds it
        sharp = torch.from_numpy(hi).float() / 127.5 - 1
        assert torch.equal(fade.blended_real(sharp, iteration["alpha"]), case.array(iteration["real"]))


def test_the_fade_commutes_with_mirroring_bit_for_bit():
    """The run blends on the host before the batch goes to the device and is mirrored there (training/run.py); the
    authors mirror first. PIL's half-size filter is symmetric, so both orders give the same bytes."""
    images = torch.randint(
        0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    x = images.float() / 127.5 - 1
    for alpha in (0.0, 0.3, 0.5000066666666667, 0.99):
        assert torch.equal(fade.blended_real(x, alpha).flip(-1), fade.blended_real(x.flip(-1), alpha))
