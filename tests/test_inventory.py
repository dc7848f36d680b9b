"""`automod eval weights` and metrics/inventory.py: fake weight files in temporary caches, found where the metrics
look for them, hashed (checked against hashlib), and checked against the SHA-256 prefix their names carry."""

from __future__ import annotations

import hashlib
import json

import pytest

from automod_cli.cli import main
from automod_cli.metrics import inventory
from automod_cli.features import weights as weight_files


@pytest.fixture
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("AUTOMOD_HOME", str(tmp_path / "automod"))
    for weight in (weight_files.INCEPTION, weight_files.ALEXNET, weight_files.VGG16):
        monkeypatch.delenv(weight.env_var, raising=False)
    weight_files.cache_dir().mkdir(parents=True)
    return tmp_path


def _fake(name_stem: str, content: bytes, right: bool) -> weight_files.WeightFile:
    """A weight file whose name carries the SHA-256 prefix of `content` (right) or of other bytes (wrong)."""
    prefix = hashlib.sha256(content if right else content + b"!").hexdigest()[:8]
    return weight_files.WeightFile(f"{name_stem}-{prefix}.pth", "AUTOMOD_TEST_WEIGHTS", "a test", lambda: "")


@pytest.mark.parametrize("right", [True, False])
def test_a_file_is_checked_against_the_hash_prefix_in_its_name(caches, monkeypatch, right):
    content = b"fake weights"
    weight = _fake("fake", content, right)
    monkeypatch.delenv(weight.env_var, raising=False)
    (weight_files.cache_dir() / weight.name).write_bytes(content)
    [found] = inventory.metric_entries([(weight, "tests")])
    assert found.state == inventory.PRESENT and found.path == weight_files.cache_dir() / weight.name
    assert found.sha256 == hashlib.sha256(content).hexdigest()
    assert found.expected == weight.name.split("-")[1][:8]
    assert found.check == (inventory.OK if right else inventory.MISMATCH)


def test_missing_files_say_where_they_were_looked_for_and_the_variable_comes_first(caches, monkeypatch):
    elsewhere = caches / "elsewhere.pth"
    elsewhere.write_bytes(b"inception")
    monkeypatch.setenv(weight_files.INCEPTION.env_var, str(elsewhere))
    (weight_files.cache_dir() / weight_files.INCEPTION.name).write_bytes(b"the cached one")
    entries = {e.name: e for e in inventory.metric_entries()}
    inception, alexnet = entries[weight_files.INCEPTION.name], entries[weight_files.ALEXNET.name]
    assert inception.path == elsewhere and inception.sha256 == hashlib.sha256(b"inception").hexdigest()
    assert inception.check == inventory.MISMATCH and inception.expected == "6726825d"  # the name's prefix
    assert alexnet.state == inventory.MISSING and alexnet.sha256 is None and alexnet.check is None
    assert f"torch hub cache: {weight_files.cache_dir() / weight_files.ALEXNET.name}" in alexnet.looked
    assert f"${weight_files.ALEXNET.env_var} (unset)" in alexnet.looked


def test_eval_weights_lists_every_file_as_json_and_as_text(caches, capsys):
    (weight_files.cache_dir() / weight_files.VGG16.name).write_bytes(b"placeholder")
    converted = caches / "automod" / "models" / "ffhq256.safetensors"
    converted.parent.mkdir(parents=True)
    converted.write_bytes(b"a converted model")
    assert main(["eval", "weights", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert {
        weight_files.INCEPTION.name,
        weight_files.ALEXNET.name,
        weight_files.VGG16.name,
        "lpips v0.1 alex.pth",
        "shape_predictor_68_face_landmarks.dat",
        "ffhq256.safetensors",
        "42420000_state.pth",
    } <= set(entries)
    vgg, ffhq = (
        entries[weight_files.VGG16.name],
        entries["ffhq256.safetensors"],
    )  # converted only: its own name
    assert vgg["state"] == "present" and vgg["check"] == inventory.MISMATCH  # b"placeholder" is not VGG16
    assert ffhq["path"] == str(converted) and ffhq["check"] == inventory.UNCHECKED
    assert ffhq["sha256"] == hashlib.sha256(b"a converted model").hexdigest()
    assert entries[weight_files.INCEPTION.name]["state"] == "missing"
    assert main(["eval", "weights"]) == 0
    out = capsys.readouterr().out
    assert f"{weight_files.VGG16.name}  present  {inventory.MISMATCH} (expected 397923af…)" in out
    assert f"{weight_files.INCEPTION.name}  missing" in out and str(converted) in out
