"""`--recipe authors`: each element of the authors' training recipe against a formula written out here, and the
values the dataset presets take with it (docs/training.md lists them with their sources)."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from tiny_models import TINY_RUN, random_h5

from automod_cli import losses
from automod_cli.cli import main
from automod_cli.errors import AutomodError
from automod_cli.presets import resolve_train_config
from automod_cli.models import Automodulator
from automod_cli.training.distributed import World
from automod_cli.training.automodulator import AutomodulatorRun
from automod_cli.training.loop import iteration
from automod_cli.training.pool import ImagePool, pool_capacity
from automod_cli.training.schedule import phase_at
from automod_cli.training.steps import Nets, decoder_step, encoder_loss, encoder_step, fake_latents, flip_runs

M = 1_000_000
SMALL = {
    **TINY_RUN,
    "model.max_resolution": 16,
    "model.channels": [16, 16, 8],
    "phase_images": 128,
    "layer_loss": True,
}


def test_the_dataset_presets_default_to_the_authors_recipe_with_its_values():
    ffhq = resolve_train_config("ffhq")
    assert ffhq.recipe.name == "authors" and ffhq.mirror
    expected = {
        "kl_scale": 0.1,
        "lambda_x": 0.2,
        "match_x": 1.5,
        "latent_distance": "dot",
        "lambda_z": 100.0,
        "encoder_objective": "clamp",
        "fake_pool": 200,
        "mixed_fraction_encoder": 0.25,
        "mixed_fraction_decoder": 0.5,
        "mix_start_level": 1,
        "split_all_blocks": False,
        "layer_target": "live",
        "fade_images": 1_200_000,
        "freeze_previous_rgb": True,
        "ema_decay": 0.999,
    }
    assert {k: getattr(ffhq.recipe, k) for k in expected} == expected
    assert ffhq.kl_margin == {4: 0.0, 8: 0.0, 16: 0.05, 32: 0.05, 64: 0.05, 128: 0.05, 256: 0.05}
    assert ffhq.batch_size == {4: 256, 8: 256, 16: 256, 32: 128, 64: 64, 128: 28, 256: 32}
    assert (
        ffhq.lr[4] == 1e-3 and ffhq.lr[8] == 5e-4 and ffhq.lr[64] == 1e-3
    )  # their scheduler skips its first entry
    assert resolve_train_config("ffhq", {"model.max_resolution": 512}).batch_size[512] == 14
    celeba = resolve_train_config("celebahq")
    assert celeba.kl_margin[64] == 0.05 and celeba.kl_margin[128] == 0.02 and celeba.kl_margin[256] == 0.04
    car = resolve_train_config("lsun-car")
    assert car.mirror and car.kl_margin[128] == 0.08  # their loader flips LSUN too
    # the paper's recipe on request, and every element still switchable alone
    paper = resolve_train_config("ffhq", {"recipe": "paper"})
    assert (
        paper.recipe.kl_scale,
        paper.recipe.lambda_x,
        paper.recipe.fake_pool,
        paper.recipe.layer_target,
        paper.recipe.fade_images,
    ) == (1.0, 2.0, 0, "detached", None)
    assert resolve_train_config("ffhq", {"fake_pool": 0}).recipe.fake_pool == 0
    # builtin keeps its own schedule under the authors' objective
    builtin = resolve_train_config("builtin", {"recipe": "authors"})
    assert (
        builtin.recipe.fade_images is None and builtin.batch_size[4] == 64 and builtin.recipe.kl_scale == 0.1
    )
    # their learning rates with every preset: 1e-3 at 4², then 5e-4
    assert builtin.lr == {4: 1e-3, 8: 5e-4, 16: 5e-4, 32: 5e-4}


def test_the_run_config_says_which_recipe_it_uses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = random_h5(tmp_path / "d.h5", 16, "train", seed=0)
    args = [
        "train",
        str(data),
        "--preset",
        "lsun-car",
        "--recipe",
        "authors",
        "--max-res",
        "8",
        "--set",
        "model.channels=[8,8]",
        "--set",
        "model.latent_dim=8",
        "--set",
        "batch_size=4",
        "--set",
        "workers=0",
        "--stop-after",
        "4",
        "--device",
        "cpu",
        "--out",
        "run",
    ]
    assert main(args) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (
        saved["recipe"]["name"] == "authors"
        and saved["recipe"]["kl_scale"] == 0.1
        and saved["mirror"] is True
    )
    assert saved["kl_margin"] == {"4": 0.0, "8": 0.0}
    assert main(["train", str(data), "--recipe", "nonsense", "--out", "x"]) == 2


def test_the_clamped_encoder_objective():
    kl_real, kl_fake, recon = torch.tensor(1.3, requires_grad=True), torch.tensor(0.6), torch.tensor(0.4)
    s, m, lam = 0.1, 0.05, 0.2
    # s·KLr + clamp(s·(KLr − KLf), −M, M/2) + λ·d, written out: the gap 0.07 is clamped to 0.025
    value = losses.encoder_loss_clamped(kl_real, kl_fake, recon, m, lam, s)
    assert value.item() == pytest.approx(0.1 * 1.3 + 0.025 + 0.2 * 0.4)
    value.backward()
    assert kl_real.grad.item() == pytest.approx(0.1)  # clamped: KL(real) pulls only through its lone term
    kl_real.grad = None
    small_gap = losses.encoder_loss_clamped(kl_real, torch.tensor(1.2), recon, m, lam, s)
    assert small_gap.item() == pytest.approx(0.13 + 0.1 * 0.1 + 0.08)
    small_gap.backward()
    assert kl_real.grad.item() == pytest.approx(0.2)  # inside the clamp: twice
    # M = 0: no clamp at all, a large gap counts in full (either sign)
    assert losses.encoder_loss_clamped(
        kl_real, torch.tensor(5.0), recon, 0.0, lam, s
    ).item() == pytest.approx(0.13 + 0.1 * (1.3 - 5.0) + 0.08)


def test_the_latent_dot_distance_and_the_kl_scale_of_the_decoder():
    z = torch.nn.functional.normalize(torch.randn(6, 10), dim=1)
    z_hat = torch.nn.functional.normalize(torch.randn(6, 10), dim=1)
    expected = sum(sum(2 - z[i, d].item() * z_hat[i, d].item() for d in range(10)) / 10 for i in range(6)) / 6
    assert losses.latent_dot_distance(z, z_hat).item() == pytest.approx(expected, rel=1e-6)
    cos = torch.nn.functional.cosine_similarity(z, z_hat).mean().item()
    assert losses.latent_dot_distance(z, z_hat).item() == pytest.approx(2 - cos / 10, rel=1e-6)
    total = losses.decoder_loss(
        torch.tensor(3.0), torch.tensor(1.9), torch.tensor(0.5), lambda_z=100.0, kl_scale=0.1
    )
    assert total.item() == pytest.approx(0.1 * 3.0 + 100 * 1.9 + 0.5)


def test_fade_in_length_and_match_x_follow_images_into_the_phase():
    config = resolve_train_config("builtin", {**SMALL, "recipe": "authors", "fade_images": 40})
    kl_r, kl_f, d = torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0)
    for images, alpha, settled in (
        (10, 1.0, False),
        (50, 1.0, True),
        (128 + 20, 0.5, False),
        (128 + 40, 1.0, True),
    ):
        phase = phase_at(config, images)
        assert (phase.alpha, phase.settled) == (pytest.approx(alpha), settled), images
        # λ_X·match_x only once settled: 0.2·1.0, then 0.2·1.5 (KL terms equal: the gap is 0)
        assert encoder_loss(kl_r, kl_f, d, phase, config).item() == pytest.approx(
            0.1 + 0.2 * (1.5 if settled else 1.0)
        )
    assert phase_at(
        resolve_train_config("builtin", {**SMALL, "fade_images": 1000}), 128 + 127
    ).alpha == pytest.approx(127 / 128)


def test_mixing_starts_at_8_and_never_splits_after_every_block():
    authors = resolve_train_config("builtin", {**SMALL, "recipe": "authors"})
    paper = resolve_train_config("builtin", SMALL)
    assert (
        fake_latents(16, 0.5, phase_at(authors, 10), authors, torch.device("cpu")).regular == 16
    )  # 4²: none
    assert fake_latents(16, 0.25, phase_at(paper, 10), paper, torch.device("cpu")).regular == 12
    torch.manual_seed(0)
    at_16 = phase_at(authors, 300)
    splits = {fake_latents(16, 0.5, at_16, authors, torch.device("cpu")).split for _ in range(200)}
    assert splits == {1, 2}  # j ∈ 1..phase, never all 3 blocks
    assert fake_latents(16, 0.5, at_16, authors, torch.device("cpu")).regular == 8
    assert {
        fake_latents(16, 0.25, phase_at(paper, 300), paper, torch.device("cpu")).split for _ in range(200)
    } == {1, 2, 3}


def test_the_pool_fills_then_swaps_about_half_and_keeps_what_it_gave_away():
    torch.manual_seed(0)
    pool = ImagePool(6)
    first = torch.arange(4.0)[:, None, None, None].expand(4, 3, 2, 2)
    assert torch.equal(pool.swap(first), first) and len(pool) == 4  # filling: used as they are
    second = 10 + torch.arange(8.0)[:, None, None, None].expand(8, 3, 2, 2)
    out = pool.swap(second)
    assert torch.equal(out[:2], second[:2]) and len(pool) == 6  # two more fill it
    assert set(pool.images[:, 0, 0, 0].tolist()) | set(out[:, 0, 0, 0].tolist()) == set(range(4)) | set(
        range(10, 18)
    )
    swapped = total = 0
    for step in range(300):
        batch = 100 + step * 10 + torch.arange(8.0)[:, None, None, None].expand(8, 3, 2, 2)
        out = pool.swap(batch)
        changed = (out != batch).flatten(1).any(1)
        swapped, total = swapped + int(changed.sum()), total + 8
        rows = changed.nonzero().flatten().tolist()
        # a swapped-in image is an older one, or (one image at a time) one an earlier row of this batch gave away
        assert all(out[r, 0, 0, 0] < batch[r, 0, 0, 0] for r in rows)
        # swapped-out images enter the pool (or went on to a later row of the same batch); nothing is lost or made up
        kept = set(pool.images[:, 0, 0, 0].tolist()) | set(out[:, 0, 0, 0].tolist())
        assert set(batch[changed][:, 0, 0, 0].tolist()) <= kept
    assert abs(swapped / total - 0.5) < 0.05
    state = pool.state()
    again = ImagePool(1)
    again.load_state(state, torch.device("cpu"))
    assert again.capacity == 6 and torch.equal(again.images, pool.images)
    assert (
        len(pool) == 6 and pool.swap(torch.zeros(2, 3, 4, 4)).shape == (2, 3, 4, 4) and len(pool) == 2
    )  # new size
    assert pool_capacity(200, 128) == 200 and pool_capacity(200, 256) == 100


def _decoder_grads(config, seed):
    torch.manual_seed(5)
    model = Automodulator(config.model)
    phase = phase_at(config, 300)  # 16², settled
    nets = Nets(
        model.encoder, model.decoder, losses.reconstruction_distance(config.reconstruction, phase.resolution)
    )
    torch.manual_seed(seed)
    scalars = decoder_step(nets, 16, phase, config, [], World(), torch.device("cpu"))
    return scalars, {n: p.grad.clone() for n, p in nets.decoder.named_parameters() if p.grad is not None}


def test_the_live_layer_target_is_the_canvas_that_made_the_mixed_image():
    base = {**SMALL, "layer_noise": False, "recipe": "authors"}
    live, live_grads = _decoder_grads(resolve_train_config("builtin", base), seed=3)
    fixed, fixed_grads = _decoder_grads(
        resolve_train_config("builtin", {**base, "layer_target": "detached"}), seed=3
    )
    # without noise the mixed image's canvas after j blocks is z_A's canvas: the same L_j value ...
    assert live["layer_loss"] > 0 and live["layer_loss"].item() == pytest.approx(
        fixed["layer_loss"].item(), rel=1e-5
    )
    # ... but the live target passes gradients into the blocks that made it
    differ = [n for n in live_grads if not torch.allclose(live_grads[n], fixed_grads[n], atol=1e-7)]
    assert differ and all(n.startswith("blocks.") for n in differ)


def test_the_previous_to_rgb_is_frozen_during_a_fade_in(tmp_path):
    for freeze in (True, False):
        config = resolve_train_config(
            "builtin", {**SMALL, "recipe": "authors", "data_limit": 64, "freeze_previous_rgb": freeze}
        )
        trainer = AutomodulatorRun(config, tmp_path / str(freeze), device="cpu")
        trainer.counters.images_seen = 128 + 16  # in 8²'s fade-in: to_rgb.0 makes the skip image
        phase = phase_at(config, trainer.counters.images_seen)
        assert phase.alpha < 1
        trainer.set_phase(phase)
        before = {n: p.detach().clone() for n, p in trainer.nets.decoder.named_parameters()}
        ema_before = {n: p.detach().clone() for n, p in trainer.ema.named_parameters()}
        iteration(trainer, phase)
        after = dict(trainer.nets.decoder.named_parameters())
        assert torch.equal(after["to_rgb.0.weight"], before["to_rgb.0.weight"]) == freeze
        assert not torch.equal(after["to_rgb.1.weight"], before["to_rgb.1.weight"])
        assert all(
            p.requires_grad for p in trainer.nets.decoder.parameters()
        )  # unfrozen again after the step
        # the EMA decays by 0.999 per decoder step, whatever the batch and the images seen
        for name, ema in trainer.ema.named_parameters():
            torch.testing.assert_close(
                ema, 0.999 * ema_before[name] + 0.001 * after[name].detach(), atol=1e-6, rtol=1e-5
            )


def test_the_authors_recipe_trains_and_its_pool_only_serves_the_encoder(tmp_path):
    config = resolve_train_config("builtin", {**SMALL, "recipe": "authors", "fake_pool": 8, "data_limit": 64})
    trainer = AutomodulatorRun(config, tmp_path, device="cpu")
    result = trainer.run()
    assert result.images_seen == 3 * 128 and not result.interrupted
    assert trainer.pool is not None and trainer.pool.images.shape == (8, 3, 16, 16)
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["enc_loss"]) and math.isfinite(r["dec_loss"]) for r in records)
    assert (
        resolve_train_config(
            "builtin", {**SMALL, "kind": "vae", "recipe": "authors"}
        ).recipe.mixed_fraction_decoder
        == 0.0
    )


def test_the_authors_recipe_shrinks_the_built_in_images_as_their_loader_and_refuses_it_for_a_file():
    assert resolve_train_config("builtin", {"recipe": "authors"}).recipe.real_downscale == "bilinear"
    assert resolve_train_config("builtin", {"recipe": "paper"}).recipe.real_downscale == "area"
    assert (
        resolve_train_config("custom", {"recipe": "authors", "data": "x.h5"}).recipe.real_downscale == "area"
    )
    with pytest.raises(AutomodError, match="recipe.real_downscale=area"):
        resolve_train_config("builtin", {"recipe": "authors", "data": "x.h5"})


def test_a_resumed_run_that_outlives_its_starting_checkpoint_ends_cleanly(tmp_path, monkeypatch, capsys):
    """With one checkpoint kept, the one a run resumed from is gone by its end: the end message does not need it."""
    monkeypatch.chdir(tmp_path)
    base = [
        "--max-res",
        "8",
        "--set",
        "model.channels=[8,8]",
        "--set",
        "model.latent_dim=8",
        "--set",
        "batch_size=8",
        "--set",
        "phase_images=32",
        "--set",
        "data_limit=16",
        "--set",
        "checkpoint_every=8",
        "--set",
        "keep_checkpoints=1",
        "--device",
        "cpu",
    ]
    assert main(["train", "--out", "run", "--stop-after", "16", *base]) == 0  # stops early, with a checkpoint
    started_from = sorted((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert main(["train", "--resume", "run", "--device", "cpu"]) == 0
    assert not started_from[0].exists()  # rotated away during the resumed run
    assert "done: 64 images" in capsys.readouterr().out


def test_adain_cotrain_moves_only_the_maps_and_only_by_the_reconstruction_term(tmp_path):
    """One encoder step with a fresh Adam: each AdaIN map parameter moves by lr·g/(|g| + ε), with g the gradient of
    λ_X·d(θ(φ(x)), x) alone, computed here on a copy; every other decoder parameter stays as it was."""
    config = resolve_train_config(
        "builtin", {**SMALL, "layer_noise": False, "adain_cotrain": "on", "data_limit": 64}
    )
    trainer = AutomodulatorRun(config, tmp_path, device="cpu")
    nets = trainer.nets
    maps = {id(p) for p in nets.adain.parameters()}
    names = [n for n, p in nets.decoder.named_parameters() if id(p) in maps]
    assert names and all(".affine." in n for n in names)  # every AdaIN map of every block, nothing else
    assert len(names) == 2 * sum(1 for n in names if n.endswith("weight"))
    phase = phase_at(config, config.total_images - 1)
    trainer.set_phase(phase)
    x = torch.rand(16, 3, phase.resolution, phase.resolution) * 2 - 1
    before = {n: p.detach().clone() for n, p in nets.decoder.named_parameters()}
    # the reference gradient: the reconstruction term through copies of φ and θ
    encoder, decoder = copy.deepcopy(nets.encoder), copy.deepcopy(nets.decoder)
    distance = copy.deepcopy(nets.distance)
    recon = distance(decoder(encoder(x, phase.level, 1.0), phase.level, 1.0, False), x)
    (config.recipe.lambda_x * config.recipe.match_x * recon).backward()
    reference = {n: p.grad for n, p in decoder.named_parameters()}
    opts = trainer.optimizers
    encoder_step(nets, x, phase, config, [opts["encoder"], opts["robust"], opts["adain"]], World())
    lr, eps = opts["adain"].param_groups[0]["lr"], config.adam_eps
    for name, p in nets.decoder.named_parameters():
        if name in names:
            g = reference[name]
            torch.testing.assert_close(p.detach(), before[name] - lr * g / (g.abs() + eps), atol=1e-6, rtol=0)
            assert not torch.equal(p.detach(), before[name])
        else:
            assert torch.equal(p.detach(), before[name]), name
        assert p.requires_grad  # the decoder learns again in its own step


def test_adain_cotrain_is_refused_for_a_classic_decoder():
    with pytest.raises(AutomodError, match="a classic decoder has none"):
        resolve_train_config("builtin", {"kind": "pioneer", "adain_cotrain": "on"})


def test_the_builtin_preset_co_trains_the_adain_maps_with_the_papers_recipe_and_the_automodulator_only():
    def cotrain(preset, **overrides):
        return resolve_train_config(preset, overrides).recipe.adain_cotrain

    assert cotrain("builtin") == cotrain("builtin", recipe="paper") == "on"
    assert cotrain("custom") == cotrain("ffhq", recipe="paper") == "off"
    # the authors' code co-trains them while flip invariance runs
    assert cotrain("builtin", recipe="authors") == cotrain("ffhq") == "flip"
    # the baselines learn as their papers say, and their config.json says so
    for kind in ("pioneer", "vae", "wae"):
        assert cotrain("builtin", kind=kind) == "off"
    assert cotrain("builtin", **{"kind": "wae", "model.decoder": "classic"}) == "off"
    unmixed = {"layer_loss": False, "mixed_fraction_encoder": 0, "mixed_fraction_decoder": 0}
    assert (
        cotrain("builtin", **{"model.decoder": "classic", **unmixed}) == "off"
    )  # an automodulator without maps
    assert cotrain("custom", adain_cotrain=True) == "on"  # anyone may turn it on; true/false read as on/off
    with pytest.raises(AutomodError, match="unknown recipe.adain_cotrain 'sometimes'"):
        resolve_train_config("custom", {"adain_cotrain": "sometimes"})


def test_with_the_authors_recipe_the_adain_maps_co_train_exactly_while_flip_invariance_runs(tmp_path):
    config = resolve_train_config(
        "builtin",
        {**SMALL, "recipe": "authors", "layer_noise": False, "data_limit": 64, "flip_invariance_layer": 2},
    )
    trainer = AutomodulatorRun(config, tmp_path, device="cpu")
    maps = {id(p) for p in trainer.nets.adain.parameters()}
    for images, flips in (
        (16, False),
        (128 + 16, True),
    ):  # 4² (blocks 0 and the support block: J = 2 not yet active), then 8²
        trainer.counters.images_seen = images
        phase = phase_at(config, images)
        trainer.set_phase(phase)
        assert flip_runs(phase, config) == flips
        before = {n: p.detach().clone() for n, p in trainer.nets.decoder.named_parameters()}
        trainer.train_step(trainer.batch(phase), phase)
        steps = [len(s) and s["step"] for s in trainer.optimizers["adain"].state.values()]
        moved = {
            id(p)
            for n, p in trainer.nets.decoder.named_parameters()
            if not torch.equal(p.detach(), before[n])
        }
        # the decoder's own step moves the maps too; the maps' own Adam steps only while the flip acts
        assert bool(steps) == flips and moved & maps
    # without flip invariance the authors' recipe has no maps' optimiser at all
    plain = AutomodulatorRun(
        resolve_train_config("builtin", {**SMALL, "recipe": "authors", "data_limit": 64}),
        tmp_path / "p",
        device="cpu",
    )
    assert plain.nets.adain is None and "adain" not in plain.optimizers
