"""Codes files (`automod_cli/ops/codes.py`, `automod encode`) and `FILE.npz:I` entries in mix, interpolate and
edit: the codes are the encoder's latents of the files, they give the same images as the files themselves, and bad
entries or codes of another model are one line, exit code 2. Also `automod project` over folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import tiny_model

from automod_cli import ops
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.config import ModelConfig
from automod_cli.images import to_uint8
from automod_cli.models import Automodulator
from data_prep.builtin import generate

R = 32
CELL, PAD = 3 * R, 2  # grids enlarge 32² cells ×3 (to 96 px) with 2 px borders


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """The tiny model, four built-in pictures in pics/ and a file that is not an image among them."""
    monkeypatch.chdir(tmp_path)
    save_model(tmp_path / "m.safetensors", tiny_model())
    (tmp_path / "pics").mkdir()
    for i, picture in enumerate(generate(4, seed=3)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / "pics" / f"{i}.png")
    (tmp_path / "pics" / "notes.png").write_text("hello")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--model", "m.safetensors"] if "--model" not in args else list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fails(capsys, args: list[str], *words: str) -> None:
    """Exit code 2 and one line on stderr, an error naming `words`."""
    code, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert all(word in lines[0] for word in words), lines[0]


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to one level: encoding in batches of another size may round a pixel the other way."""
    return a.shape == b.shape and np.abs(a - b).max() <= 1


def encoded(capsys, *args: str) -> tuple[str, str]:
    code, out, err = run(capsys, "encode", *args)
    assert code == 0, err
    return out, err


def test_encode_writes_the_encoders_codes_and_the_files_they_came_from(work, capsys):
    out, err = encoded(capsys, "pics", "--batch", "3")
    assert "skipped 'pics/notes.png' (not an image)" in err and "used 4 of 5" in err
    assert "encoded 4 images in" in out and "images/s" in out and "wrote codes.npz" in out
    model = ops.load_model(Path("m.safetensors"))
    codes = ops.load_codes(Path("codes.npz"))
    x = ops.load_images([Path(f"pics/{i}.png") for i in range(4)], R)
    torch.testing.assert_close(torch.from_numpy(codes.codes), ops.encode(model, x), atol=1e-5, rtol=1e-5)
    assert codes.files == [f"pics/{i}.png" for i in range(4)] and codes.model == str(
        Path("m.safetensors").resolve()
    )
    assert codes.identity == ops.model_identity(model) and codes.identity.latent_kind == "sphere"
    with np.load("codes.npz", allow_pickle=False) as arrays:  # plain arrays only: nothing to unpickle
        assert arrays["codes"].dtype == np.float32 and arrays["codes"].shape == (4, 16)
        assert (
            arrays["format"] == "automod-codes" and arrays["latent_dim"] == 16 and arrays["resolution"] == R
        )
    assert sorted(p.name for p in Path().iterdir()) == [
        "codes.npz",
        "m.safetensors",
        "pics",
    ]  # no temporary left


def test_encode_never_overwrites_and_names_an_npz(work, capsys):
    encoded(capsys, "pics/0.png")
    before = Path("codes.npz").read_bytes()
    fails(capsys, ["encode", "pics/1.png"], "codes.npz", "--force")
    assert Path("codes.npz").read_bytes() == before
    encoded(capsys, "pics/1.png", "--force")
    assert ops.load_codes(Path("codes.npz")).files == ["pics/1.png"]
    fails(capsys, ["encode", "pics", "-o", "codes.txt"], ".npz")
    fails(capsys, ["encode", "pics/notes.png", "-o", "x.npz"], "notes.png")
    assert not Path("codes.txt").exists() and not Path("x.npz").exists()


def test_codes_in_mix_give_the_images_of_the_files(work, capsys):
    encoded(capsys, "pics", "--batch", "3")
    assert run(capsys, "mix", "pics/0.png", "pics/3.png", "-o", "files.png")[0] == 0
    assert run(capsys, "mix", "codes.npz:0", "codes.npz:3", "-o", "codes.png")[0] == 0
    assert run(capsys, "mix", "codes.npz:0", "pics/3.png", "-o", "both.png")[0] == 0
    for name in ("codes.png", "both.png", "codes-grid.png", "both-grid.png"):
        assert close(pixels(name), pixels(name.replace("codes", "files").replace("both", "files"))), name
    # a grid: a whole codes file stands for its codes, in order, among files and folders
    assert (
        run(
            capsys,
            "mix",
            "--rows",
            "pics",
            "--cols",
            "pics/1.png",
            "--cols",
            "pics/2.png",
            "-o",
            "g-files.png",
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "mix",
            "--rows",
            "codes.npz",
            "--cols",
            "codes.npz:1",
            "--cols",
            "pics/2.png",
            "-o",
            "g-codes.png",
        )[0]
        == 0
    )
    assert close(pixels("g-codes.png"), pixels("g-files.png"))


def test_codes_in_interpolate_and_edit(work, capsys):
    encoded(capsys, "pics")
    assert (
        run(
            capsys, "interpolate", "pics/0.png", "pics/1.png", "pics/2.png", "pics/3.png", "-o", "i-files.png"
        )[0]
        == 0
    )
    assert run(capsys, "interpolate", "codes.npz", "-o", "i-codes.png")[0] == 0  # all four codes: the corners
    files, codes = pixels("i-files.png"), pixels("i-codes.png")
    height = codes.shape[0] - (8 * (CELL + PAD) + PAD)  # the captions differ: compare the grids below them
    assert close(codes[height:], files[files.shape[0] - codes.shape[0] + height :])
    args = ["--strength", "-1", "--strength", "1", "--scales", "mid"]
    assert (
        run(
            capsys,
            "edit",
            "pics/1.png",
            "--pos",
            "pics/0.png",
            "--neg",
            "pics/2.png",
            *args,
            "-o",
            "e-files.png",
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "edit",
            "codes.npz:1",
            "--pos",
            "codes.npz:0",
            "--neg",
            "pics/2.png",
            *args,
            "-o",
            "e-codes.png",
        )[0]
        == 0
    )
    files, codes = pixels("e-files.png"), pixels("e-codes.png")
    cells = files[-(CELL + PAD) :], codes[-(CELL + PAD) :]  # one row: first cell, then the two strengths
    first = slice(PAD, PAD + CELL)
    assert close(cells[0][:, PAD + CELL :], cells[1][:, PAD + CELL :])  # the same edits
    model = ops.load_model(
        Path("m.safetensors")
    )  # a code has no picture: its first cell is its reconstruction
    recon = ops.reconstruct(model, ops.load_images([Path("pics/1.png")], R))[0]
    assert close(cells[1][:CELL, first][::3, ::3], to_uint8(recon).astype(int))


def test_bad_entries_and_codes_of_another_model_are_one_line(work, capsys):
    encoded(capsys, "pics")
    fails(capsys, ["mix", "codes.npz:99", "pics/0.png"], "codes.npz:99", "holds 4 codes", "0–3")
    fails(capsys, ["mix", "missing.npz:0", "pics/0.png"], "missing.npz", "does not exist")
    fails(capsys, ["mix", "codes.npz:first", "pics/0.png"], "codes.npz:first", "number")
    fails(capsys, ["mix", "codes.npz", "pics/0.png"], "A is one", "names 4", "FILE.npz:N")
    fails(capsys, ["interpolate", "codes.npz:0", "codes.npz:1", "codes.npz:2"], "got 3")
    fails(capsys, ["edit", "pics/0.png", "--pos", "codes.npz:7", "--neg", "pics/1.png"], "codes.npz:7")
    # a model with another latent size, and one of the same shape with other weights
    save_model(
        Path("wide.safetensors"),
        Automodulator(ModelConfig(max_resolution=32, latent_dim=24, channels=(16, 16, 8, 8))),
    )
    fails(
        capsys, ["mix", "codes.npz:0", "pics/0.png", "--model", "wide.safetensors"], "16-d", "24-d", "encode"
    )
    torch.manual_seed(5)
    save_model(
        Path("other.safetensors"),
        Automodulator(ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8))),
    )
    fails(
        capsys,
        ["interpolate", "codes.npz:0", "pics/0.png", "--model", "other.safetensors"],
        "another model",
        "m.safetensors",
    )
    # files that are not codes files: a pickled object array is refused, never unpickled
    np.save(open("objects.npz", "wb"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    Path("text.npz").write_text("hello")
    np.savez("plain.npz", codes=np.zeros((2, 16), np.float32))
    for name in ("objects.npz", "text.npz", "plain.npz"):
        fails(capsys, ["mix", f"{name}:0", "pics/0.png"], name, "not a codes file")
    assert not Path("mix.png").exists()


def test_codes_are_checked_before_the_model_is_loaded(work, capsys, monkeypatch):
    encoded(capsys, "pics")
    loaded = []
    monkeypatch.setattr(ops, "load_model", lambda *a, **k: loaded.append(a))
    fails(capsys, ["mix", "codes.npz:9", "pics/0.png"], "codes.npz:9")
    fails(capsys, ["edit", "codes.npz:0", "--pos", "missing.npz", "--neg", "pics/1.png"], "missing.npz")
    assert loaded == []


def test_model_identity_is_the_weights(work):
    model = ops.load_model(Path("m.safetensors"))
    again = ops.load_model(Path("m.safetensors"))
    assert ops.model_identity(model) == ops.model_identity(again)
    ops.encode(model, ops.load_images([Path("pics/0.png")], R))  # encoding changes no weight
    assert ops.model_identity(model) == ops.model_identity(again)
    with torch.no_grad():
        next(again.decoder.parameters()).view(-1)[0] += 1e-6
    assert ops.model_identity(model).sha256 != ops.model_identity(again).sha256


def test_project_a_folder_skips_bad_files_and_reports_the_rate(work, capsys):
    args = ["project", "pics", "--steps", "2", "--crop", "none", "--distance", "mse", "--batch", "3"]
    code, out, err = run(capsys, *args, "--codes", "projected.npz")
    assert code == 0 and "skipped 'pics/notes.png' (not an image)" in err and "used 4 of 5" in err
    assert "projected 4 images in" in out and "images/s" in out
    assert sorted(p.name for p in Path("projected").iterdir()) == [f"{i}-projected.png" for i in range(4)]
    codes = ops.load_codes(Path("projected.npz"))
    assert codes.files == [f"pics/{i}.png" for i in range(4)] and codes.codes.shape == (4, 16)
    model = ops.load_model(Path("m.safetensors"))
    for i in (0, 3):  # each written image is the decoded fitted code
        decoded = ops.decode(model, torch.from_numpy(codes.codes[i : i + 1]))[0].clamp(-1, 1)
        assert close(pixels(f"projected/{i}-projected.png"), to_uint8(decoded).astype(int))
    code, out, _ = run(capsys, *args, "--json", "--out", "again")
    result = json.loads(out)
    assert result["images"] == 4 and result["images_per_second"] > 0 and len(result["skipped"]) == 1
    assert result["outputs"] == [f"again/{i}-projected.png" for i in range(4)] and "output" not in result
    fails(capsys, args, "projected/0-projected.png", "--force")  # never overwritten
    fails(capsys, [*args[:-2], "-o", "one.png"], "folder")


def test_encode_files_skips_a_file_that_fails_while_reading_and_goes_on(work):
    """A batch whose every file fails at reading (here: never checked) is skipped; the others are encoded."""
    model = ops.load_model(Path("m.safetensors"))
    paths = [Path("pics/0.png"), Path("pics/notes.png"), Path("pics/2.png")]
    seen = []
    result = ops.encode_files(model, ops.Inputs(paths), batch_size=1, progress=lambda *a: seen.append(a))
    assert result.used.paths == [paths[0], paths[2]] and [p for p, _ in result.used.skipped] == [paths[1]]
    expected = ops.encode(model, ops.load_images([paths[0], paths[2]], R))
    torch.testing.assert_close(result.codes, expected, atol=1e-5, rtol=1e-5)
    assert (
        seen == [("encoding", 1, 3), ("encoding", 2, 3), ("encoding", 3, 3)] and result.images_per_second > 0
    )


def test_help_says_how_to_use_codes(capsys):
    for command, words in (
        ("encode", ["Example: automod encode", "FILE.npz:N"]),
        ("project", ["Example: automod project", "--codes"]),
        ("mix", ["codes.npz"]),
        ("interpolate", ["codes.npz"]),
        ("edit", ["codes.npz"]),
    ):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert all(word in out for word in words), (command, out)


def test_a_code_fixes_the_scales_of_conditional_samples(work, capsys):
    encoded(capsys, "pics")
    assert run(capsys, "sample", "--fix", "pics/2.png", "--n", "3", "-o", "from-file")[0] == 0
    assert run(capsys, "sample", "--fix", "codes.npz:2", "--n", "3", "-o", "from-code")[0] == 0
    for i in range(3):
        assert close(pixels(f"from-code/sample-00{i}.png"), pixels(f"from-file/sample-00{i}.png"))
    fails(capsys, ["sample", "--fix", "codes.npz", "--n", "3", "-o", "all"], "--fix is one", "names 4")


def test_codes_name_their_model_by_an_absolute_path_that_works_from_another_folder(work, capsys, monkeypatch):
    encoded(capsys, "pics")
    torch.manual_seed(5)
    save_model(
        Path("other.safetensors"),
        Automodulator(ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8))),
    )
    Path("elsewhere").mkdir()
    monkeypatch.chdir("elsewhere")
    code, _, err = run(capsys, "mix", "../codes.npz:0", "../codes.npz:1", "--model", "../other.safetensors")
    advised = str((work / "m.safetensors").resolve())
    assert code == 2 and f"pass --model '{advised}'" in err, err
    code, _, err = run(capsys, "mix", "../codes.npz:0", "../codes.npz:1", "--model", advised)
    assert code == 0, err


def test_files_that_are_not_codes_files_each_get_a_clear_sentence(work, capsys):
    np.savez("plain.npz", codes=np.zeros((2, 16), np.float32), other=np.zeros(3))
    Path("random.npz").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    Path("empty.npz").write_bytes(b"")
    encoded(capsys, "pics")
    Path("cut.npz").write_bytes(Path("codes.npz").read_bytes()[:300])
    fails(
        capsys,
        ["mix", "plain.npz:0", "pics/0.png"],
        "'plain.npz' is an .npz archive but not a codes file",
        "lacks the fields files, format",
        "it holds codes, other",
        "automod encode",
    )
    for name in ("random.npz", "cut.npz"):
        fails(
            capsys,
            ["mix", f"{name}:0", "pics/0.png"],
            f"'{name}' is not a codes file",
            "damaged",
            "automod encode",
        )
    fails(capsys, ["mix", "empty.npz:0", "pics/0.png"], "'empty.npz' is not a codes file", "an empty file")
