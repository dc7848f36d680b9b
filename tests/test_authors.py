"""`automod import`: checkpoints of the authors' code (AaltoVision/automodulator) reproduce the authors' numbers.

tests/data/authors/official-{default,small} hold two small checkpoints written by the authors' own code and the
outputs their code computed from them (tests/data/authors/README.md explains every array). Beyond those two, a
second, independent implementation of the authors' forward passes written here from the documented facts
(`reference_decode`, `reference_encode`: it reads their state dicts directly and shares no code with automod) is
first checked against the authors' arrays and then checks the import on checkpoints of other widths, latent sizes,
resolutions and fade-in states, made up in the authors' key layout.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from automod_cli import authors
from automod_cli.checkpoint import read_checkpoint
from automod_cli.cli import main
from automod_cli.locate import load_model
from automod_cli.ops import decode, encode, load_images, mix
from automod_cli.presets import resolve_train_config
from automod_cli.training.automodulator import AutomodulatorRun
from automod_cli.training.init import init_config, init_model

DATA = Path(__file__).parent / "data" / "authors"
FIXTURES = ("official-default", "official-small")
IMAGE_TOL = 1e-4  # max abs, float32 (the fixtures' README: batch effects alone move images by ~1e-5)
COSINE_MIN = 0.99999


def reference(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(DATA / name / "reference.npz"))


def strip(state: dict) -> dict:
    return {k.removeprefix("module."): v for k, v in state.items()}


# ---------------------------------------------------------------------------------------------------------------
# The authors' forward passes, written out from their documented computation (fixtures' README).


def equal_conv(x, state, name, padding):
    weight = state[f"{name}.weight_orig"]
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    return F.conv2d(
        x,
        weight * math.sqrt(2 / fan_in) * state[f"{name}.weight_gain"],
        state[f"{name}.bias"],
        padding=padding,
    )


def ada_norm(x, z, state, name):
    a = z @ state[f"{name}.weight"].T + state[f"{name}.bias"]
    c = x.shape[1]
    flat = x.flatten(2)
    normed = (x - flat.mean(2)[..., None, None]) / flat.std(2, unbiased=True)[..., None, None]
    return a[:, :c, None, None] * normed + a[:, c:, None, None]


def blur(x):
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, k, padding=1, groups=x.shape[1])


def reference_decode(g: dict, slots: torch.Tensor, phase: int, alpha: float) -> torch.Tensor:
    """Their Generator at `phase`, layer noise off; slots (N, ≥phase+1, D): slot i drives block i."""
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    width = g["progression.0.conv.1.conv.weight_orig"].shape[1]
    out = torch.ones(slots.shape[0], width, 4, 4)
    upsampled = out
    for i in range(phase + 1):
        z = slots[:, i]
        if i == 0:
            out = ada_norm(
                lrelu(equal_conv(out, g, "progression.0.conv.1.conv", 1)), z, g, "progression.0.conv.3.mod"
            )
            continue
        upsampled = F.interpolate(out, scale_factor=2, mode="nearest")
        out = lrelu(blur(equal_conv(upsampled, g, f"progression.{i}.conv.0.0.conv", 1)))
        out = ada_norm(out, z, g, f"progression.{i}.conv.0.3.mod")
        out = ada_norm(
            lrelu(equal_conv(out, g, f"progression.{i}.conv.1.conv", 1)), z, g, f"progression.{i}.conv.3.mod"
        )
    rgb = F.conv2d(out, g[f"to_rgb.{phase}.weight"], g[f"to_rgb.{phase}.bias"])
    if phase > 0 and 0 <= alpha < 1:
        skip = F.conv2d(upsampled, g[f"to_rgb.{phase - 1}.weight"], g[f"to_rgb.{phase - 1}.bias"])
        rgb = (1 - alpha) * skip + alpha * rgb
    return rgb


def sn_conv(x, d, snu, k, j, padding):
    weight = d[f"progression.{k}.conv.{2 * j}.conv.weight_orig"]
    matrix = weight.reshape(weight.shape[0], -1)
    u = snu[2 * k + j]
    v = matrix.T @ u
    v = v / v.norm()
    u = matrix @ v
    u = u / u.norm()
    sigma = (u.T @ matrix @ v).squeeze()
    return F.conv2d(x, weight / sigma, d[f"progression.{k}.conv.{2 * j}.conv.bias"], padding=padding)


def reference_encode(d: dict, snu: list, x: torch.Tensor, phase: int, alpha: float) -> torch.Tensor:
    """Their Discriminator (the encoder) at `phase`, spectral norm frozen."""
    n = len([k for k in d if k.startswith("from_rgb.") and k.endswith(".weight")])
    for i in range(phase, -1, -1):
        k = n - 1 - i
        if i == phase:
            out = F.conv2d(x, d[f"from_rgb.{k}.weight"], d[f"from_rgb.{k}.bias"])
        out = F.leaky_relu(sn_conv(out, d, snu, k, 0, 1), 0.2)
        out = sn_conv(out, d, snu, k, 1, 0 if i == 0 else 1)
        if i > 0:
            out = F.avg_pool2d(F.leaky_relu(out, 0.2), 2)
            if i == phase and 0 <= alpha < 1:
                skip = F.conv2d(
                    F.avg_pool2d(x, 2), d[f"from_rgb.{k + 1}.weight"], d[f"from_rgb.{k + 1}.bias"]
                )
                out = (1 - alpha) * skip + alpha * out
    out = out.flatten(1)
    return out / out.norm(dim=1, keepdim=True)


def fake_authors_checkpoint(decoder_widths, encoder_widths, latent, phase, alpha, seed) -> dict:
    """A checkpoint in the authors' key layout (prefix 'module.', duplicate adanorm_blocks entries, mapping
    network, label embedding, SNU list, adaptive losses) with random weights of the given shapes."""
    gen = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, s=1.0: torch.randn(*shape, generator=gen) * s  # noqa: E731
    n = len(decoder_widths)

    def generator_state():
        g = {"label_embed.weight": rnd(1, 1)}
        c0 = decoder_widths[0]
        g.update(
            {
                "progression.0.conv.1.conv.weight_orig": rnd(c0, c0, 3, 3),
                "progression.0.conv.1.conv.weight_gain": 1 + rnd(1, s=0.2),
                "progression.0.conv.1.conv.bias": rnd(c0, s=0.1),
            }
        )
        adanorms = []
        for i, c in enumerate(decoder_widths):
            c_in = decoder_widths[max(i - 1, 0)]
            convs = (
                [("progression.0.conv.1.conv", c0, c0)]
                if i == 0
                else [(f"progression.{i}.conv.0.0.conv", c_in, c), (f"progression.{i}.conv.1.conv", c, c)]
            )
            for name, ci, co in convs:
                g[f"{name}.weight_orig"], g[f"{name}.weight_gain"], g[f"{name}.bias"] = (
                    rnd(co, ci, 3, 3),
                    1 + rnd(1, s=0.2),
                    rnd(co, s=0.1),
                )
            mods = (
                ["progression.0.conv.3.mod"]
                if i == 0
                else [f"progression.{i}.conv.0.3.mod", f"progression.{i}.conv.3.mod"]
            )
            for name in mods:
                bias = torch.cat([1 + rnd(c, s=0.3), rnd(c, s=0.3)])
                g[f"{name}.weight"], g[f"{name}.bias"] = rnd(2 * c, latent, s=0.5), bias
                adanorms.append(name)
            g[f"to_rgb.{i}.weight"], g[f"to_rgb.{i}.bias"] = rnd(3, c, 1, 1, s=0.3), rnd(3, s=0.1)
            for j in (0, 1):
                g[f"noise.{i}.{j}.noise_scale"] = rnd(c, s=0.15)
        for j, name in enumerate(adanorms):
            g[f"adanorm_blocks.{j}.mod.weight"], g[f"adanorm_blocks.{j}.mod.bias"] = (
                g[f"{name}.weight"],
                g[f"{name}.bias"],
            )
        for j in (0, 1):
            g[f"z_preprocess.{j}.0.weight_orig"], g[f"z_preprocess.{j}.0.weight_gain"] = (
                rnd(latent, latent),
                torch.full((1,), 0.01),
            )
            g[f"z_preprocess.{j}.0.bias"] = torch.zeros(latent)
        return {f"module.{k}": v for k, v in g.items()}

    d, snu = {}, []
    for k in range(n):
        level = n - 1 - k
        c_in = encoder_widths[level]
        c_out = encoder_widths[level - 1] if level > 0 else latent
        d[f"from_rgb.{k}.weight"], d[f"from_rgb.{k}.bias"] = rnd(c_in, 3, 1, 1, s=0.5), rnd(c_in, s=0.05)
        shapes = [(c_out, c_in, 3, 3), (c_out, c_out, 4 if level == 0 else 3, 4 if level == 0 else 3)]
        for j, shape in enumerate(shapes):
            d[f"progression.{k}.conv.{2 * j}.conv.weight_orig"] = rnd(*shape)
            d[f"progression.{k}.conv.{2 * j}.conv.bias"] = rnd(c_out, s=0.05)
            snu.append(rnd(c_out, 1, s=0.1))
    data = {
        "G_state_dict": generator_state(),
        "G_running_state_dict": generator_state(),
        "D_state_dict": {f"module.{k}": v for k, v in d.items()},
        "optimizerD": {},
        "optimizerG": {},
        "optimizerA": {},
        "iteration": 1234,
        "phase": phase,
        "alpha": alpha,
        "SNU": snu,
    }
    for j in range(phase + 1):
        size = 3 * 4 ** (2 + j)
        data[f"adaptive_loss_{j}"] = ({"latent_alpha": rnd(1, size), "latent_scale": rnd(1, size)},)
    return data


def assert_codes_match(z: torch.Tensor, expected: torch.Tensor) -> None:
    cosine = F.cosine_similarity(z.double(), expected.double(), dim=1)
    assert cosine.min() >= COSINE_MIN, cosine
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-5)


def assert_images_match(images: torch.Tensor, expected: torch.Tensor) -> None:
    assert (images - expected).abs().max() <= IMAGE_TOL


# ---------------------------------------------------------------------------------------------------------------


def import_fixture(name: str, tmp_path_factory) -> tuple[str, Path]:
    """A fixture checkpoint imported through the command line."""
    out = tmp_path_factory.mktemp(name) / "model.safetensors"
    assert main(["import", str(DATA / name / "checkpoint.pth"), "--out", str(out)]) == 0
    return name, out


@pytest.fixture(scope="module", params=FIXTURES)
def imported(request, tmp_path_factory) -> tuple[str, Path]:
    """Each fixture imported through the command line."""
    return import_fixture(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def imported_small(tmp_path_factory) -> tuple[str, Path]:
    return import_fixture("official-small", tmp_path_factory)


@pytest.fixture(scope="module")
def imported_default(tmp_path_factory) -> tuple[str, Path]:
    return import_fixture("official-default", tmp_path_factory)


def test_imported_model_reproduces_every_reference_array(imported):
    name, path = imported
    ref = {k: torch.from_numpy(v) if v.ndim else v for k, v in reference(name).items()}
    model = load_model(path)  # the EMA decoder, as every image operation uses
    assert (
        model.resolution == int(ref["resolution"]) and model.level == int(ref["phase"]) and model.alpha == 1.0
    )
    assert model.config.latent_dim == int(ref["latent_size"])
    codes = ref["codes"]
    assert_codes_match(encode(model, ref["images"]), codes)
    assert_images_match(decode(model, codes), ref["recon"])
    assert_images_match(decode(model, ref["z_random"]), ref["samples"])
    partner = codes.roll(-1, dims=0)
    # the authors' 'hi' slots are blocks 0–1: row i is codes[i] there and its partner elsewhere
    assert_images_match(mix(model, partner, codes, range(0, 2)), ref["mix_hi"])
    split = int(ref["mix_use_split"])
    assert_images_match(mix(model, partner, codes, range(0, split)), ref["mix_use"])
    assert_images_match(decode(load_model(path, ema=False), codes), ref["recon_raw"])
    # the tolerance is not loose: the images of two scales differ far more than it
    assert (ref["mix_hi"] - ref["recon"]).abs().max() > 100 * IMAGE_TOL


def test_imported_file_keeps_what_training_needs(imported):
    name, path = imported
    tensors, meta = read_checkpoint(path)
    raw = torch.load(DATA / name / "checkpoint.pth", map_location="cpu", weights_only=True)
    phase = raw["phase"]
    res = 4 * 2**phase
    # d_ρ's per-pixel parameters at the trained resolution, reshaped from their flattened C·H·W
    loss = raw[f"adaptive_loss_{phase}"][0]
    torch.testing.assert_close(tensors["robust.latent_alpha"], loss["latent_alpha"].reshape(3, res, res))
    torch.testing.assert_close(tensors["robust.latent_scale"], loss["latent_scale"].reshape(3, res, res))
    # the spectral-norm state: the u of the 4×4 head's last conv is their last SNU entry
    torch.testing.assert_close(tensors["encoder.head.collapse.u"], raw["SNU"][-1])
    assert any(k.startswith("decoder.") for k in tensors) and any(
        k.startswith("decoder_ema.") for k in tensors
    )
    source = DATA / name / "checkpoint.pth"
    assert meta["source"] == {
        "format": "authors",
        "file": "checkpoint.pth",
        "iteration": raw["iteration"],
        "size": source.stat().st_size,
        "mtime_ns": source.stat().st_mtime_ns,
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }  # to notice a replaced file


@pytest.mark.parametrize("name", FIXTURES)
def test_the_reference_implementation_reproduces_the_authors_arrays(name):
    """The independent reference below is itself right: it gives the authors' own numbers on their fixtures."""
    raw = torch.load(DATA / name / "checkpoint.pth", map_location="cpu", weights_only=True)
    ref = {k: torch.from_numpy(v) for k, v in reference(name).items() if v.ndim}
    phase = raw["phase"]
    g, d = strip(raw["G_running_state_dict"]), strip(raw["D_state_dict"])
    assert_codes_match(reference_encode(d, raw["SNU"], ref["images"], phase, 1.0), ref["codes"])
    nine = lambda z: z[:, None].expand(-1, 9, -1)  # noqa: E731
    assert_images_match(reference_decode(g, nine(ref["codes"]), phase, 1.0), ref["recon"])
    partner = ref["codes"].roll(-1, 0)
    slots = torch.cat([nine(ref["codes"])[:, :2], nine(partner)[:, 2:]], dim=1)
    assert_images_match(reference_decode(g, slots, phase, 1.0), ref["mix_hi"])


# (decoder widths 4² up, encoder widths 4² up, latent, phase, alpha): the authors' balanced and small width
# patterns scaled down, a latent wider and narrower than the 4×4 width, 4² alone, and mid-fade states
SHAPES = [
    ((8, 8, 8, 4, 4, 4, 2, 2, 2), (8, 8, 4, 4, 2, 2, 2, 2, 2), 12, 3, 1.0),
    ((8, 8, 8, 4, 4, 4, 2, 2, 2), (8, 8, 4, 4, 2, 2, 2, 2, 2), 12, 3, 0.35),
    ((6, 6, 6, 6, 3, 3, 2, 2, 2), (6, 6, 6, 6, 3, 3, 2, 2, 2), 5, 4, 0.8),
    ((10, 10, 10, 10, 10, 5, 5, 5, 5), (10, 10, 10, 10, 5, 5, 5, 5, 5), 16, 0, 1.0),
    ((10, 10, 10, 10, 10, 5, 5, 5, 5), (10, 10, 10, 10, 5, 5, 5, 5, 5), 16, 1, 0.5),
]


@pytest.mark.parametrize("decoder_widths, encoder_widths, latent, phase, alpha", SHAPES)
def test_any_authors_configuration_imports_at_parity(
    tmp_path, decoder_widths, encoder_widths, latent, phase, alpha
):
    data = fake_authors_checkpoint(decoder_widths, encoder_widths, latent, phase, alpha, seed=phase + latent)
    source = tmp_path / "state.pth"
    torch.save(data, source)
    out = authors.import_checkpoint(source, tmp_path / "model.safetensors")
    model = load_model(out)
    assert model.level == phase and model.alpha == alpha
    assert model.config.channels == decoder_widths[: phase + 1] and model.config.latent_dim == latent
    assert tuple(model.config.encoder_channels or model.config.channels) == encoder_widths[: phase + 1]
    res = 4 * 2**phase
    x = torch.rand(4, 3, res, res, generator=torch.Generator().manual_seed(1)) * 2 - 1
    g, d = strip(data["G_running_state_dict"]), strip(data["D_state_dict"])
    z = encode(model, x)
    assert_codes_match(z, reference_encode(d, data["SNU"], x, phase, alpha))
    slots = torch.nn.functional.normalize(
        torch.randn(4, 9, latent, generator=torch.Generator().manual_seed(2)), dim=2
    )
    assert_images_match(decode(model, slots[:, : phase + 1]), reference_decode(g, slots, phase, alpha))
    raw_model = load_model(out, ema=False)
    assert_images_match(
        decode(raw_model, z),
        reference_decode(strip(data["G_state_dict"]), z[:, None].expand(-1, 9, -1), phase, alpha),
    )


class _Payload:
    """Unpickling this object would run code: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the plain pickle file
def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path, capsys):
    marker = tmp_path / "marker"
    source = tmp_path / "evil.pth"
    with open(source, "wb") as handle:
        pickle.dump({"G_state_dict": _Payload(marker)}, handle)
    torch.save({"G_state_dict": _Payload(marker)}, tmp_path / "evil-zip.pth")
    torch.save(
        {"G_state_dict": _Payload(marker)}, tmp_path / "evil-old.pth", _use_new_zipfile_serialization=False
    )
    # a plain pickle is no PyTorch file at all; torch.save's two formats reach the weights-only loader, which refuses
    for path, words in (
        (source, "not a PyTorch checkpoint"),
        (tmp_path / "evil-zip.pth", "weights-only"),
        (tmp_path / "evil-old.pth", "weights-only"),
    ):
        code = main(["import", str(path), "--out", str(tmp_path / "out.safetensors")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and words in err and "Traceback" not in err, err
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_other_files_are_refused_in_one_line(tmp_path, capsys):
    torch.save({"model": torch.zeros(2)}, tmp_path / "other.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    for name, words in (
        ("other.pth", "not a checkpoint of the authors' code"),
        ("text.pth", "not a PyTorch checkpoint"),
        ("missing.pth", "does not exist"),
    ):
        code = main(["import", str(tmp_path / name), "--out", str(tmp_path / "out.safetensors")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and words in err, err


def test_import_does_not_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    out.write_text("keep me")
    source = str(DATA / "official-small" / "checkpoint.pth")
    assert main(["import", source, "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["import", source, "--out", str(out), "--force"]) == 0
    assert load_model(out).resolution == 32


def test_fine_tuning_starts_from_the_imported_weights_at_their_resolution(
    imported_small, tmp_path, monkeypatch, capsys
):
    name, path = imported_small
    tensors, meta = read_checkpoint(path)
    init_path, resolution = init_model(str(path))
    assert resolution == 32
    config = init_config(
        resolve_train_config(
            "builtin", {"model.max_resolution": resolution, "batch_size": 8, "data_limit": 64}
        ),
        init_path,
    )
    assert config.model.latent_dim == 32 and config.model.channels == (24, 24, 24, 24)
    # the schedule starts where a 32² model with α = 1 stands: after 4²–16² and 32²'s fade-in
    phases = config.phase_images
    assert config.start_images == phases[4] + phases[8] + phases[16] + int(config.fade_fraction * phases[32])
    trainer = AutomodulatorRun(config, tmp_path / "run", device="cpu")
    assert trainer.level == 3 and trainer.counters.images_seen == config.start_images
    for prefix, module in trainer.modules().items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(value, tensors[f"{prefix}.{key}"], msg=f"{prefix}.{key}")
    assert all(not opt.state for opt in trainer.optimizers.values())  # fresh optimisers
    # through the command line: a few images, then a checkpoint at 32² that differs from the start
    monkeypatch.chdir(tmp_path)
    args = [
        "train",
        "--init",
        str(path),
        "--kimg",
        "0.016",
        "--set",
        "batch_size=8",
        "--set",
        "data_limit=64",
        "--out",
        "tuned",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    saved = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert saved["init"] == str(path) and saved["start_images"] == config.start_images
    tuned = load_model(tmp_path / "tuned")
    assert tuned.resolution == 32 and tuned.alpha == 1.0
    after, _ = read_checkpoint(sorted((tmp_path / "tuned" / "checkpoints").glob("*.safetensors"))[-1])
    moved = [k for k in after if k.startswith("encoder.") and not torch.equal(after[k], tensors[k])]
    assert moved and all(torch.isfinite(after[k]).all() for k in after)
    capsys.readouterr()
    assert main([*args[:-4], "--out", "other", "--max-res", "64"]) == 2
    assert "32² model" in capsys.readouterr().err
    assert main(["train", "--init", str(path), "--model", "vae", "--out", "vae"]) == 2
    assert "--model automod" in capsys.readouterr().err
    # a 64² model cannot be fine-tuned on the built-in preset's schedule (it ends at 32²): say which presets can
    default = authors.import_checkpoint(
        DATA / "official-default" / "checkpoint.pth", tmp_path / "default.safetensors"
    )
    assert main(["train", "--init", str(default), "--out", "wide"]) == 2
    err = capsys.readouterr().err
    assert "no schedule at 64²" in err and "--preset ffhq" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "wide").exists()


def test_image_commands_run_on_an_imported_model(imported_default, tmp_path, monkeypatch, capsys):
    """mix, reconstruct, sample, interpolate and edit --direction on the authors' fixture, from image files."""
    name, path = imported_default
    monkeypatch.chdir(tmp_path)
    ref = reference(name)
    pixels = np.round((ref["images"].transpose(0, 2, 3, 1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    for i, picture in enumerate(pixels[:4]):
        Image.fromarray(picture).save(tmp_path / f"in{i}.png")
    torch.save(torch.randn(1, 24) * 0.3, tmp_path / "direction")  # the authors' attribute-file layout, (1, D)
    model = ["--model", str(path), "--device", "cpu"]
    commands = [
        ["mix", "in0.png", "in1.png", "--coarse", "--out", "mix.png"],
        ["reconstruct", "in0.png", "in1.png", "--out", "recon.png"],
        ["sample", "--n", "4", "--out", "samples"],
        ["interpolate", "in0.png", "in1.png", "--steps", "3", "--out", "path.png"],
        ["edit", "in2.png", "--direction", "direction", "--scales", "mid", "--out", "edit.png"],
    ]
    for args in commands:
        assert main([*args, *model]) == 0, capsys.readouterr().err
    for output in ("mix.png", "recon.png", "samples/grid.png", "path.png", "edit.png"):
        assert (tmp_path / output).is_file(), output
    # the mixed image is the authors' coarse mix of the two files: A with B's blocks 0–1
    net = load_model(path)
    x = load_images([tmp_path / "in0.png", tmp_path / "in1.png"], 64)
    z = encode(net, x)
    expected = (
        ((mix(net, z[:1], z[1:], range(0, 2))[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    )
    written = np.asarray(Image.open(tmp_path / "mix.png").convert("RGB"), dtype=np.float64)
    assert written.shape == (64, 64, 3) and np.abs(written - expected).max() <= 1
