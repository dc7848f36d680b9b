"""Checkpoint files: exact round trip, config inside, EMA preference, one-line errors, atomic writes."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from automod_cli import checkpoint
from automod_cli.checkpoint import model_tensors, read_checkpoint, save_checkpoint, save_model
from automod_cli.config import ModelConfig
from automod_cli.errors import AutomodError
from automod_cli.locate import find_checkpoint, load_model, open_model
from automod_cli.models import Automodulator
from automod_cli.models.latents import random_latents
from automod_cli.outputs import atomic_write


def _trained_looking(config, level=2, alpha=0.4):
    model = Automodulator(config, level=level, alpha=alpha)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        model.encoder(torch.randn(2, 3, 16, 16), level=2)  # moves spectral-norm power-iteration state
    return model.eval()


@pytest.mark.parametrize("decoder", ["adain", "classic"])
def test_round_trip_gives_identical_outputs(tmp_path, decoder):
    config = ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8), decoder=decoder)
    model = _trained_looking(config)
    path = tmp_path / "model.safetensors"
    save_model(path, model, extra_meta={"images_seen": 1234})
    loaded = load_model(path)
    assert loaded.config == config and loaded.level == 2 and loaded.alpha == pytest.approx(0.4)
    x, z = torch.randn(3, 3, 16, 16), random_latents(3, 16)
    assert torch.equal(loaded.encode(x), model.encode(x))
    assert torch.equal(loaded.decode(z), model.decode(z))
    assert read_checkpoint(path)[1]["images_seen"] == 1234


def test_ema_decoder_is_preferred(tmp_path, tiny_config):
    model = _trained_looking(tiny_config)
    ema = Automodulator(tiny_config).decoder.state_dict()
    tensors = model_tensors(model)
    tensors.update({f"decoder_ema.{k}": v for k, v in ema.items()})
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, tensors, {"model_config": tiny_config.to_dict(), "level": 2, "alpha": 1.0})
    z = random_latents(2, 16)
    with_ema, without = load_model(path), load_model(path, ema=False)
    reference = Automodulator(tiny_config, level=2)
    reference.decoder.load_state_dict(ema)
    torch.testing.assert_close(with_ema.decode(z), reference.eval().decode(z))
    assert not torch.allclose(without.decode(z), with_ema.decode(z))


def test_foreign_truncated_and_mismatched_files_give_one_line_errors(tmp_path, tiny_config):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(AutomodError, match="not an automod checkpoint"):
        load_model(foreign)

    good = tmp_path / "good.safetensors"
    save_model(good, Automodulator(tiny_config))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AutomodError, match="not a readable checkpoint"):
        load_model(truncated)

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(AutomodError):
        load_model(junk)

    tensors, meta = read_checkpoint(good)
    meta["model_config"]["channels"] = [32, 32, 8, 8]  # another architecture than the weights
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, tensors, meta)
    with pytest.raises(AutomodError, match="does not match") as info:
        load_model(other)
    assert "\n" not in str(info.value)

    with pytest.raises(AutomodError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")


def test_checkpoints_of_the_earlier_network_are_refused_with_the_reason(tmp_path, tiny_config):
    """Format 1 held automod 0.1's network (before it was made the authors'): its tensors mean something else."""
    good = tmp_path / "good.safetensors"
    save_model(good, Automodulator(tiny_config))
    tensors, meta = read_checkpoint(good)
    old = tmp_path / "old.safetensors"
    header = {
        "format": "automod-checkpoint",
        "format_version": "1",
        "automod_version": "0.1.0",
        "meta": json.dumps(meta),
    }
    save_file(tensors, str(old), metadata=header)
    with pytest.raises(AutomodError, match="earlier network") as info:
        load_model(old)
    assert "\n" not in str(info.value) and "retrain" in str(info.value)
    load_model(good)  # the current format loads


def test_file_is_plain_safetensors_with_json_config(tmp_path, tiny_config):
    path = tmp_path / "m.safetensors"
    save_model(path, Automodulator(tiny_config))
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    meta = json.loads(header["__metadata__"]["meta"])
    assert ModelConfig.from_dict(meta["model_config"]) == tiny_config


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"

    def failing(tmp):
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert os.listdir(tmp_path) == []


def test_find_checkpoint_picks_latest_in_run_dir(tmp_path, tiny_config, monkeypatch):
    run = tmp_path / "runs" / "demo"
    for images in (100, 2000):
        save_model(run / "checkpoints" / f"ckpt-{images:010d}.safetensors", Automodulator(tiny_config))
    assert find_checkpoint(run).name == "ckpt-0000002000.safetensors"
    monkeypatch.chdir(tmp_path)
    assert find_checkpoint(None).name == "ckpt-0000002000.safetensors"
    with pytest.raises(AutomodError, match="without checkpoints"):
        find_checkpoint(tmp_path)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_write_gives_the_file_a_new_files_mode_under_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write(tmp_path / "table.csv", lambda tmp: tmp.write_text("a,b\n"))
        with open(tmp_path / "plain.csv", "w") as handle:  # what open() gives a new file, as a reference
            handle.write("a,b\n")
    finally:
        os.umask(previous)
    mode = (tmp_path / "table.csv").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_open_model_holds_the_network_its_metadata_kind_and_provenance(tmp_path, tiny_config):
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    model = _trained_looking(tiny_config)
    save_model(
        run / "ckpt-0000001000.safetensors",
        model,
        {"images_seen": 1000, "train_config": {"kind": "vae", "preset": "builtin", "data": None}},
    )
    opened = open_model(tmp_path / "run")
    assert opened.checkpoint == run / "ckpt-0000001000.safetensors" and opened.meta["images_seen"] == 1000
    assert opened.kind == "vae" and opened.trained_on is None and not opened.ema_decoder
    assert opened.provenance.dataset == "builtin" and opened.provenance.resolution == model.resolution
    x = torch.randn(2, 3, model.resolution, model.resolution)
    assert torch.equal(opened.model.encode(x), model.encode(x))


def test_open_model_runs_the_callers_check_before_any_weight_is_read(tmp_path, tiny_config, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_model(path, _trained_looking(tiny_config), {"train_config": {"data": "faces.h5"}})
    events = []
    real_safe_open = checkpoint.safe_open

    class Recorded:  # the file handle, recording each tensor read
        def __init__(self, *args, **kwargs):
            self.handle = real_safe_open(*args, **kwargs)

        def __enter__(self):
            self.inner = self.handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def metadata(self):
            return self.inner.metadata()

        def keys(self):
            return self.inner.keys()

        def get_tensor(self, name):
            events.append("tensor")
            return self.inner.get_tensor(name)

    monkeypatch.setattr(checkpoint, "safe_open", Recorded)

    def refuse(checkpoint_path, meta):
        events.append("check")
        raise AutomodError(f"{checkpoint_path.name} was trained on {meta['train_config']['data']}")

    with pytest.raises(AutomodError, match="m.safetensors was trained on faces.h5"):
        open_model(path, check=refuse)
    assert events == ["check"]
    open_model(path, check=lambda *args: events.append("passed"))
    assert events[1] == "passed" and set(events[2:]) == {"tensor"}
