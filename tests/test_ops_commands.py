"""`automod mix | sample | edit | interpolate | reconstruct` end to end on a tiny checkpoint: files written, their
layout cell by cell against the Python API, one-line errors with exit code 2, and no silent overwrites."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import tiny_model

from automod_cli import checkpoint, ops
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.config import ModelConfig
from automod_cli.images import to_uint8
from automod_cli.models import Automodulator
from data_prep.builtin import generate

R = 32  # the tiny model's resolution
CELL, PAD = 3 * R, 2  # grids enlarge 32² cells ×3 (to 96 px) with 2 px borders


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A folder with the tiny AdaIN model, a classic one and four built-in pictures (64², PNG) in pics/."""
    monkeypatch.chdir(tmp_path)
    save_model(tmp_path / "m.safetensors", tiny_model())
    save_model(tmp_path / "classic.safetensors", tiny_model("classic"))
    (tmp_path / "pics").mkdir()
    for i, picture in enumerate(generate(4, seed=3)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / "pics" / f"{i}.png")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--model", "m.safetensors"] if "--model" not in args else list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err and all(word in lines[0] for word in words), lines[0]


def fails(capsys, args: list[str], *words: str) -> None:
    """The command exits with code 2 and one line on stderr that contains `words`."""
    code, _, err = run(capsys, *args)
    one_line_error(code, err, *words)


def cells(path: Path, rows: int, columns: int) -> np.ndarray:
    """The grid cells of a captioned figure, shrunk back to 32² (every third pixel): (rows, columns, R, R, 3)."""
    image = np.asarray(Image.open(path).convert("RGB"))
    height = rows * (CELL + PAD) + PAD
    assert image.shape[1] == columns * (CELL + PAD) + PAD and image.shape[0] > height
    grid = image[image.shape[0] - height :]
    return np.stack(
        [
            np.stack(
                [
                    grid[PAD + r * (CELL + PAD) :, PAD + c * (CELL + PAD) :][:CELL:3, :CELL:3]
                    for c in range(columns)
                ]
            )
            for r in range(rows)
        ]
    )


def matches(actual: np.ndarray, expected: torch.Tensor) -> bool:
    """uint8 pictures equal up to one level (float rounding between batch sizes can cross a rounding boundary)."""
    return np.abs(actual.astype(int) - to_uint8(expected).astype(int)).max() <= 1


def api(name: str = "m.safetensors"):
    return ops.load_model(Path(name))


def picture(i: int) -> torch.Tensor:
    return ops.load_images([Path(f"pics/{i}.png")], R)


def test_every_command_has_help_with_an_example(capsys):
    for command in ("mix", "sample", "edit", "interpolate", "reconstruct"):
        assert main([command, "--help"]) == 0
        assert "Example: automod " + command in capsys.readouterr().out


def test_mix_with_itself_writes_the_reconstruction(work, capsys):
    code, out, _ = run(capsys, "mix", "pics/0.png", "pics/0.png")
    assert code == 0 and "wrote mix.png" in out and "wrote mix-grid.png" in out
    model = api()
    recon = ops.reconstruct(model, picture(0))[0]
    assert matches(np.asarray(Image.open("mix.png")), recon)
    figure = cells(Path("mix-grid.png"), 2, 2)
    assert (figure[0, 0] == 255).all() and matches(figure[1, 1], recon)


def test_mix_opens_the_checkpoint_once_and_attaches_nothing_to_the_network(work, capsys, monkeypatch):
    """`automod mix --model X` reads X's header and weights through one open file (issue 25), and the provenance
    stays with the opened model rather than on the network."""
    opened, networks = [], []
    real_safe_open, real_open_model = checkpoint.safe_open, ops.open_model
    monkeypatch.setattr(
        checkpoint, "safe_open", lambda *a, **k: opened.append(a[0]) or real_safe_open(*a, **k)
    )
    monkeypatch.setattr(
        ops, "open_model", lambda *a, **k: networks.append(real_open_model(*a, **k)) or networks[-1]
    )
    code, out, _ = run(capsys, "mix", "pics/0.png", "pics/1.png")
    assert code == 0 and "trained on: not recorded" in out
    assert opened == ["m.safetensors"]
    assert len(networks) == 1 and set(vars(networks[0].model)) == set(vars(api()))


def test_mix_grid_has_b_on_top_a_on_the_left_and_mixes_inside(work, capsys):
    code, _, _ = run(
        capsys,
        "mix",
        "--rows",
        "pics",
        "--cols",
        "pics/1.png",
        "--cols",
        "pics/2.png",
        "--mid",
        "-o",
        "g.png",
    )
    assert code == 0
    figure = cells(Path("g.png"), 5, 3)
    model = api()
    z = ops.encode(model, ops.load_images([Path(f"pics/{i}.png") for i in range(4)], R))
    recon = ops.decode(model, z)
    assert (figure[0, 0] == 255).all()
    assert matches(figure[0, 1], recon[1]) and matches(figure[0, 2], recon[2])
    assert all(matches(figure[1 + i, 0], recon[i]) for i in range(4))
    mid = ops.scale_range(model, "mid")
    for i in range(4):
        for j, b in enumerate((1, 2)):
            assert matches(figure[1 + i, 1 + j], ops.mix(model, z[i : i + 1], z[b : b + 1], mid)[0])


def test_sample_writes_files_and_a_grid_from_the_seed(work, capsys):
    code, _, _ = run(capsys, "sample", "--n", "5", "--seed", "4")
    assert code == 0
    expected = ops.sample(api(), 5, torch.Generator().manual_seed(4))
    for i in range(5):
        assert matches(np.asarray(Image.open(f"samples/sample-{i:03d}.png")), expected[i])
    assert all(matches(cell, expected[i]) for i, cell in enumerate(cells(Path("samples/grid.png"), 1, 5)[0]))


def test_conditional_samples_keep_the_inputs_scales(work, capsys):
    code, _, _ = run(capsys, "sample", "--fix", "pics/0.png", "--scales", "coarse", "--n", "3", "-o", "cs")
    assert code == 0
    model = api()
    z_fixed = ops.encode(model, picture(0))
    expected = ops.conditional_sample(model, z_fixed, range(0, 2), 3, torch.Generator().manual_seed(0))
    grid = cells(Path("cs/grid.png"), 1, 4)[0]
    assert matches(grid[0], ops.decode(model, z_fixed)[0])  # the input's reconstruction comes first
    assert all(matches(grid[1 + i], expected[i]) for i in range(3))
    fails(capsys, ["sample", "--scales", "mid"], "--fix")


def test_edit_strip_and_saved_vector(work, capsys):
    code, out, _ = run(
        capsys,
        "edit",
        "pics/3.png",
        "--pos",
        "pics/0.png",
        "--pos",
        "pics/1.png",
        "--neg",
        "pics/2.png",
        "--neg",
        "pics/3.png",
        "--scales",
        "mid",
        "--save-vector",
        "v.safetensors",
    )
    assert code == 0 and "wrote v.safetensors" in out and "wrote edit.png" in out
    model = api()
    x = picture(3)
    vector = ops.attribute_vector(
        model,
        ops.load_images([Path("pics/0.png"), Path("pics/1.png")], R),
        ops.load_images([Path("pics/2.png"), Path("pics/3.png")], R),
    )
    torch.testing.assert_close(ops.load_vector(Path("v.safetensors"), 16)[0], vector)
    strip = cells(Path("edit.png"), 1, 6)[0]  # input, then strengths -1, -0.5, 0, 0.5, 1
    assert matches(strip[0], x[0])
    expected = ops.edit(model, ops.encode(model, x), vector, [-1.0, -0.5, 0.0, 0.5, 1.0], range(2, 4))
    assert all(matches(strip[1 + k], expected[k]) for k in range(5))
    assert matches(strip[3], ops.reconstruct(model, x)[0])  # strength 0
    code, _, _ = run(
        capsys, "edit", "pics/1.png", "--vector", "v.safetensors", "--strength", "0", "-o", "zero.png"
    )
    assert code == 0 and matches(cells(Path("zero.png"), 1, 2)[0, 1], ops.reconstruct(model, picture(1))[0])
    fails(
        capsys,
        ["edit", "pics/1.png", "--vector", "v.safetensors", "--pos", "pics/0.png", "-o", "x.png"],
        "either",
    )
    fails(capsys, ["edit", "--pos", "pics/0.png", "--neg", "pics/1.png"], "nothing to do")


AUTHORS_DIRECTIONS = Path(__file__).parent / "data" / "authors" / "official-attrib"


def by_hand(model: Automodulator, z: torch.Tensor, edited: torch.Tensor, blocks: range) -> torch.Tensor:
    """Decode with `edited` driving `blocks` and z the others, the per-block assignment written out here."""
    per_block = [edited if b in blocks else z for b in range(model.num_active_blocks)]
    return ops.decode(model, torch.stack(per_block, dim=1))


def test_edit_with_a_torch_saved_direction_on_chosen_scales(work, capsys):
    v = (
        torch.nn.functional.normalize(torch.randn(1, 16, generator=torch.Generator().manual_seed(7)), dim=1)
        * 0.8
    )
    torch.save(v, "d16", _use_new_zipfile_serialization=False)  # (1, D), legacy format: as the authors' files
    code, out, err = run(
        capsys,
        "edit",
        "pics/3.png",
        "--direction",
        "d16",
        "--scales",
        "mid",
        "--strength",
        "0",
        "--strength",
        "1.5",
        "-o",
        "e.png",
    )
    assert code == 0 and err == "" and "wrote e.png" in out
    model, x = api(), picture(3)
    z = ops.encode(model, x)
    strip = cells(Path("e.png"), 1, 3)[0]  # input, strength 0, strength 1.5
    assert matches(strip[0], x[0])
    assert run(capsys, "reconstruct", "pics/3.png", "-o", "r.png")[0] == 0
    assert np.array_equal(strip[1], cells(Path("r.png"), 1, 2)[0, 1])  # strength 0: the plain reconstruction
    edited = by_hand(model, z, z + 1.5 * v, range(2, 4))[0]  # mid = blocks 2-3 (16², 32²)
    assert matches(strip[2], edited) and not matches(strip[2], ops.decode(model, z)[0])
    # the same direction as a flat (D,) tensor in a zip file, on every layer: z + s·v decoded
    torch.save(v[0], "d16.pt")
    assert run(capsys, "edit", "pics/3.png", "--vector", "d16.pt", "--strength", "1", "-o", "all.png")[0] == 0
    assert matches(cells(Path("all.png"), 1, 2)[0, 1], ops.decode(model, z + v)[0])


def test_edit_with_the_authors_direction_on_a_512d_model(work, capsys):
    torch.manual_seed(0)
    config = ModelConfig(max_resolution=R, latent_dim=512, channels=(16, 16, 8, 8))
    wide = Automodulator(config)
    with torch.no_grad():
        for module in wide.decoder.modules():
            if hasattr(module, "affine"):
                module.affine.weight.normal_()
    save_model(Path("m512.safetensors"), wide.eval())
    smile = AUTHORS_DIRECTIONS / "smile_delta2"
    stored = torch.load(smile, map_location="cpu", weights_only=True)
    code, out, err = run(
        capsys,
        "edit",
        "pics/0.png",
        "--direction",
        str(smile),
        "--scales",
        "mid",
        "--strength",
        "0",
        "--strength",
        "3",
        "--save-vector",
        "smile.safetensors",
        "--model",
        "m512.safetensors",
    )
    assert code == 0 and err == "" and "wrote smile.safetensors" in out
    model, x = api("m512.safetensors"), picture(0)
    z = ops.encode(model, x)
    strip = cells(Path("edit.png"), 1, 3)[0]
    recon = ops.reconstruct(model, x)[0]
    assert matches(strip[1], recon)
    assert matches(strip[2], by_hand(model, z, z + 3 * stored, range(2, 4))[0]) and not matches(
        strip[2], recon
    )
    vector, info = ops.load_vector(Path("smile.safetensors"), 512)  # converted to automod's own format
    assert torch.equal(vector, stored[0]) and info["source"] == "smile_delta2"
    fails(capsys, ["edit", "pics/0.png", "--direction", str(smile), "-o", "x.png"], "512-d", "16-d")
    fails(
        capsys,
        ["edit", "pics/0.png", "--direction", str(smile), "--pos", "pics/1.png", "-o", "x.png"],
        "either",
    )


class Payload:
    def __init__(self, marker: Path):
        self.code = f"open({str(marker.resolve())!r}, 'w').write('ran')"

    def __reduce__(self):
        return exec, (self.code,)


def test_edit_refuses_a_pickled_object_as_a_direction_without_running_it(work, capsys):
    Path("evil.pt").write_bytes(pickle.dumps(Payload(Path("marker")), protocol=4))
    torch.save({"direction": torch.zeros(1, 16), "extra": Payload(Path("marker"))}, "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        fails(
            capsys,
            ["edit", "pics/0.png", "--direction", name, "-o", "x.png"],
            name,
            "weights-only",
            "torch.save",
        )
    assert not Path("marker").exists() and not Path("x.png").exists()


def test_interpolate_strip_grid_and_gif(work, capsys):
    code, out, _ = run(capsys, "interpolate", "pics/0.png", "pics/1.png", "--steps", "4", "--gif")
    assert code == 0 and "wrote interpolation.gif" in out
    model = api()
    recon = ops.reconstruct(model, ops.load_images([Path(f"pics/{i}.png") for i in range(4)], R))
    strip = cells(Path("interpolation.png"), 1, 4)[0]
    assert matches(strip[0], recon[0]) and matches(strip[-1], recon[1])
    with Image.open("interpolation.gif") as gif:
        assert gif.n_frames == 6
    code, _, _ = run(capsys, "interpolate", "pics", "--steps", "3", "--scales", "mid", "-o", "four.png")
    assert code == 0
    grid = cells(Path("four.png"), 3, 3)
    assert matches(grid[0, 0], recon[0])
    bottom_right = ops.mix(model, ops.encode(model, picture(0)), ops.encode(model, picture(3)), range(2, 4))[
        0
    ]
    assert matches(grid[2, 2], bottom_right)
    fails(capsys, ["interpolate", "pics/0.png", "pics/1.png", "pics/2.png"], "2 images")


def test_reconstruct_pairs_inputs_with_reconstructions(work, capsys):
    code, _, _ = run(capsys, "reconstruct", "pics")
    assert code == 0
    x = ops.load_images([Path(f"pics/{i}.png") for i in range(4)], R)
    recon = ops.reconstruct(api(), x)
    pairs = cells(Path("reconstructions.png"), 1, 8)[0]
    assert all(matches(pairs[2 * i], x[i]) and matches(pairs[2 * i + 1], recon[i]) for i in range(4))


def test_outputs_are_never_silently_overwritten(work, capsys):
    assert run(capsys, "reconstruct", "pics/0.png")[0] == 0
    before = Path("reconstructions.png").read_bytes()
    fails(capsys, ["reconstruct", "pics/1.png"], "already exists", "--force")
    assert Path("reconstructions.png").read_bytes() == before
    assert run(capsys, "reconstruct", "pics/1.png", "--force")[0] == 0
    assert Path("reconstructions.png").read_bytes() != before
    # one clash among many outputs stops the command before it writes anything
    Path("samples").mkdir()
    Path("samples/sample-002.png").write_bytes(b"mine")
    fails(capsys, ["sample", "--n", "4"], "sample-002.png")
    assert sorted(p.name for p in Path("samples").iterdir()) == ["sample-002.png"]
    Path("v.safetensors").write_bytes(b"mine")
    fails(
        capsys,
        ["edit", "--pos", "pics/0.png", "--neg", "pics/1.png", "--save-vector", "v.safetensors"],
        "already exists",
        "--save-vector",
    )  # the message names the flag that chose the path
    assert Path("v.safetensors").read_bytes() == b"mine"


def test_odd_inputs_give_a_result_or_one_line(work, capsys):
    Image.new("L", (50, 20), 90).save("gray.png")
    Image.new("RGBA", (40, 40), (200, 10, 10, 128)).save("rgba.png")
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).save("deep.png")
    Image.new("RGB", (3, 2), (0, 255, 0)).save("tiny.png")
    code, _, err = run(capsys, "reconstruct", "gray.png", "rgba.png", "deep.png", "tiny.png", "-o", "odd.png")
    # every file is used; the two smaller than the model's 32² are named as upscaled (automod prep skips them)
    assert code == 0 and [line.split("'")[1] for line in err.splitlines()] == ["gray.png", "tiny.png"], err
    assert all("upscaled" in line for line in err.splitlines())
    payload = Path("pics/0.png").read_bytes()
    Path("corrupt.png").write_bytes(payload[: len(payload) // 3])
    fails(capsys, ["reconstruct", "corrupt.png"], "corrupt.png")
    Path("notes.png").write_text("hello")
    fails(capsys, ["mix", "notes.png", "pics/0.png"], "notes.png", "not an image")
    fails(capsys, ["mix", "pics/0.png", "missing.png"], "missing.png")


def test_bad_requests_are_one_line(work, capsys):
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "--layers", "2:9"], "2:9")
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "--fine"], "fine")
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "--coarse", "--mid"], "choose one")
    fails(capsys, ["mix", "pics/0.png"], "two images")
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "--model", "classic.safetensors"], "classic decoder")
    fails(
        capsys,
        ["interpolate", "pics/0.png", "pics/1.png", "--scales", "mid", "--model", "classic.safetensors"],
        "classic decoder",
    )
    assert run(capsys, "reconstruct", "pics/0.png", "--model", "classic.safetensors")[0] == 0
    fails(capsys, ["reconstruct", "pics/0.png", "--align"])  # no face in a landscape (or no dlib)


def test_layer_noise_is_off_unless_asked_and_follows_the_seed(work, capsys):
    noisy = tiny_model()
    with torch.no_grad():
        for module in noisy.decoder.modules():
            if hasattr(module, "strength"):
                module.strength.fill_(0.3)
    save_model(Path("noisy.safetensors"), noisy)
    outputs = {}
    runs = {"plain": [], "noise": ["--noise"], "again": ["--noise"], "seed": ["--noise", "--seed", "5"]}
    for name, flags in runs.items():
        assert (
            main(["reconstruct", "pics/0.png", "--model", "noisy.safetensors", "-o", f"{name}.png", *flags])
            == 0
        )
        outputs[name] = cells(Path(f"{name}.png"), 1, 2)[0, 1]
    capsys.readouterr()
    assert matches(outputs["plain"], ops.reconstruct(noisy.eval(), picture(0))[0])
    assert np.array_equal(outputs["noise"], outputs["again"])
    assert not np.array_equal(outputs["noise"], outputs["plain"])
    assert not np.array_equal(outputs["noise"], outputs["seed"])


def test_default_model_is_the_newest_run_and_is_named(work, capsys):
    folder = Path("runs/demo/checkpoints")
    folder.mkdir(parents=True)
    Path("m.safetensors").rename(folder / "ckpt-000000000064.safetensors")
    code = main(["reconstruct", "pics/0.png"])
    out = capsys.readouterr().out
    assert code == 0 and "runs/demo/checkpoints/ckpt-000000000064.safetensors" in out


def no_model(monkeypatch) -> list:
    """Make loading a model fail loudly: a refusal must come before it (cheap checks first)."""
    loaded = []

    def refuse(*args, **kwargs):
        loaded.append(args)
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(ops, "load_model", refuse)
    return loaded


UNPRIVILEGED = """
import sys
from automod_cli import ops
from automod_cli.cli import main

def refuse(*args, **kwargs):
    raise SystemExit("the model was loaded before the output was checked")

ops.load_model = refuse
for line in sys.argv[1:]:
    code = main(line.split())
    print(f"@@{code}", file=sys.stderr, flush=True)
"""


def as_unprivileged(folder: Path, commands: list[str]) -> list[tuple[int, str]]:
    """Run `automod` commands in `folder` as a user without root's override of file permissions (nobody, when the
    tests run as root); their exit codes and stderr."""
    command = [sys.executable, "-c", UNPRIVILEGED, *commands]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**os.environ, "HOME": str(folder)}
    err = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120).stderr
    parts = err.split("@@")
    results = []
    for i in range(1, len(parts)):
        code, _, rest = parts[i].partition("\n")
        results.append((int(code), parts[i - 1].split("\n", 1)[-1] if i > 1 else parts[0]))
    assert len(results) == len(commands), err
    return results


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs setpriv to drop root"
)
def test_a_read_only_output_folder_is_refused_before_any_work(work):
    folder = Path(tempfile.mkdtemp(prefix="automod-ro-"))  # outside the root-only pytest folder, for nobody
    try:
        shutil.copy(work / "m.safetensors", folder)
        shutil.copytree(work / "pics", folder / "pics")
        (folder / "ro").mkdir()
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.name == "ro" else 0o755 if path.is_dir() else 0o644)
        results = as_unprivileged(
            folder,
            [
                "mix pics/0.png pics/1.png -o ro/mix.png --model m.safetensors",
                "sample --n 2 -o ro/samples --model m.safetensors",
                "reconstruct pics -o ro/r.png --model m.safetensors",
            ],
        )
        for code, err in results:
            one_line_error(code, err, "not writable", "ro")
        assert list((folder / "ro").iterdir()) == []
    finally:
        (folder / "ro").chmod(0o755)
        shutil.rmtree(folder)


def test_outputs_that_cannot_be_created_are_refused_before_the_model_loads(work, capsys, monkeypatch):
    no_model(monkeypatch)
    Path("taken").write_bytes(b"mine")
    fails(capsys, ["reconstruct", "pics", "-o", "taken/r.png"], "'taken' is a file")
    fails(capsys, ["sample", "--n", "2", "-o", "taken"], "'taken' is a file")
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "-o", "pics"], "is a folder")
    assert Path("taken").read_bytes() == b"mine"


def test_output_names_are_checked_before_the_model_loads(work, capsys, monkeypatch):
    """An image output with a suffix automod does not write is refused before any work, in every image command;
    sample's --out is a folder, so a file-like name is refused instead of made a folder."""
    no_model(monkeypatch)
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "-o", "m.txt"], "'m.txt'", ".png")
    fails(capsys, ["mix", "--rows", "pics", "--cols", "pics", "-o", "g.h5"], "'g.h5'")
    fails(capsys, ["edit", "pics/0.png", "--pos", "pics", "--neg", "pics", "-o", "e.gif"], "'e.gif'")
    fails(capsys, ["interpolate", "pics/0.png", "pics/1.png", "-o", "i.npz"], "'i.npz'")
    fails(capsys, ["project", "pics/0.png", "-o", "p.txt", "--distance", "mse"], "'p.txt'")
    for name in ("s.png", "s.txt"):
        fails(capsys, ["sample", "--n", "2", "-o", name], f"'{name}'", "folder", f"'{Path(name).stem}'")
    assert not [
        p
        for p in Path(".").iterdir()
        if p.name.split(".")[0] in ("m", "g", "e", "i", "p", "s") and p.suffix != ".safetensors"
    ]


def test_codes_alone_use_their_recorded_model_and_align_nothing(work, capsys):
    """mix/interpolate of codes without --model: the model the codes file records (none under ./runs), and with a
    face model no word about aligning faces, since no image is read."""
    save_model(
        work / "face.safetensors",
        tiny_model(),
        extra_meta={"source": {"format": "authors", "file": "x.pth", "dataset": "ffhq"}},
    )
    assert main(["encode", "pics", "-o", "c.npz", "--model", "face.safetensors", "--no-align"]) == 0
    capsys.readouterr()
    for args in (["mix", "c.npz:0", "c.npz:1"], ["interpolate", "c.npz:0", "c.npz:2", "--steps", "3"]):
        assert main(args) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert f"model: {work / 'face.safetensors'} (recorded in the codes file)" in out, out
        assert "aligning" not in out and "--no-align" not in out, out
    assert Path("mix.png").is_file() and Path("interpolation.png").is_file()


def test_a_picture_smaller_than_the_model_is_used_with_a_warning(work, capsys):
    """An 8×8 picture (which automod prep would skip as too small) is upscaled with one warning naming it, in the
    commands that read images one way or another (reconstruct's batches, mix's sources, encode's batches)."""
    Image.new("RGB", (8, 8), (200, 40, 40)).save("tiny.png")
    for args in (
        ["reconstruct", "tiny.png", "pics/0.png", "-o", "r.png"],
        ["mix", "tiny.png", "pics/1.png"],
        ["encode", "tiny.png", "-o", "c.npz"],
    ):
        code, _, err = run(capsys, *args)
        warned = [line for line in err.splitlines() if "tiny.png" in line]
        assert code == 0 and len(warned) == 1, err
        assert "8×8, smaller than the model's 32²" in warned[0] and "upscaled" in warned[0]
        assert "pics/" not in err


def test_a_failed_write_is_one_line_and_keeps_the_old_file(work, capsys, monkeypatch):
    Path("r.png").write_bytes(b"mine")

    def disk_full(tmp):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("automod_cli.images.atomic_write", lambda path, write: disk_full(path))
    fails(
        capsys,
        ["reconstruct", "pics/0.png", "-o", "r.png", "--force"],
        "could not write 'r.png'",
        "No space left",
    )
    assert Path("r.png").read_bytes() == b"mine"


def test_outputs_are_written_in_the_format_their_suffix_names(work, capsys):
    for suffix, fmt in ((".webp", "WEBP"), (".jpg", "JPEG"), (".png", "PNG"), (".tiff", "TIFF")):
        assert run(capsys, "reconstruct", "pics/0.png", "-o", f"r{suffix}")[0] == 0
        assert Image.open(f"r{suffix}").format == fmt
    assert run(capsys, "mix", "pics/0.png", "pics/1.png", "-o", "m.webp")[0] == 0
    assert Image.open("m.webp").format == Image.open("m-grid.webp").format == "WEBP"
    for name in ("r.txt", "r", "r.h5"):
        fails(capsys, ["reconstruct", "pics/0.png", "-o", name], f"'{name}'", ".png")
        assert not Path(name).exists()


def bad_files(folder: Path) -> None:
    payload = (folder / "0.png").read_bytes()
    (folder / "a-truncated.png").write_bytes(payload[: len(payload) // 3])
    (folder / "b-notes.jpg").write_text("hello")
    (folder / "c-empty.png").write_bytes(b"")


def test_a_folder_with_bad_files_skips_them_and_does_the_rest(work, capsys):
    bad_files(Path("pics"))
    code, out, err = run(capsys, "reconstruct", "pics")
    assert code == 0 and "wrote reconstructions.png" in out
    lines = err.strip().splitlines()
    for name, reason in (
        ("a-truncated.png", "truncated"),
        ("b-notes.jpg", "not an image"),
        ("c-empty.png", "empty"),
    ):
        assert sum(name in line and reason in line and "skipped" in line for line in lines) == 1, err
    assert "used 4 of 7" in err and "Traceback" not in err
    x = ops.load_images([Path(f"pics/{i}.png") for i in range(4)], R)
    pairs = cells(Path("reconstructions.png"), 1, 8)[0]
    assert all(
        matches(pairs[2 * i], x[i]) and matches(pairs[2 * i + 1], ops.reconstruct(api(), x)[i])
        for i in range(4)
    )
    # the same in a mixing grid and for edit exemplars
    code, _, err = run(capsys, "mix", "--rows", "pics", "--cols", "pics/1.png", "-o", "g.png")
    assert code == 0 and "b-notes.jpg" in err
    cells(Path("g.png"), 5, 2)
    code, _, err = run(capsys, "edit", "pics", "--pos", "pics", "--neg", "pics/1.png", "-o", "e.png")
    assert code == 0 and err.count("a-truncated.png") == 2  # as an image to edit and as an exemplar
    # nothing usable: one line naming the files, nothing written
    Path("bad").mkdir()
    bad_files(Path("pics"))
    for name in ("a-truncated.png", "b-notes.jpg", "c-empty.png"):
        Path("pics", name).rename(Path("bad", name))
    fails(
        capsys,
        ["reconstruct", "bad", "-o", "none.png"],
        "none of the 3 inputs",
        "a-truncated.png",
        "b-notes.jpg",
    )
    assert not Path("none.png").exists()
    # where each file is needed (A and B of a mix, interpolation ends), a bad one is the error
    fails(capsys, ["mix", "bad/b-notes.jpg", "pics/0.png"], "b-notes.jpg", "not an image")
    fails(capsys, ["interpolate", "pics/0.png", "bad/c-empty.png"], "c-empty.png")


def test_inputs_are_checked_before_the_model_is_loaded(work, capsys, monkeypatch):
    loaded = no_model(monkeypatch)
    Path("notes.png").write_text("hello")
    fails(capsys, ["reconstruct", "missing.png"], "missing.png")
    fails(capsys, ["reconstruct", "notes.png"], "notes.png", "not an image")
    fails(capsys, ["mix", "pics/0.png", "notes.png"], "notes.png")
    fails(capsys, ["interpolate", "pics/0.png", "notes.png"], "notes.png")
    fails(capsys, ["sample", "--fix", "notes.png"], "notes.png")
    fails(capsys, ["edit", "pics/0.png", "--pos", "notes.png", "--neg", "pics/1.png"], "notes.png")
    fails(capsys, ["edit", "notes.png", "--pos", "pics/0.png", "--neg", "pics/1.png"], "notes.png")
    fails(capsys, ["edit", "pics/0.png", "--direction", "notes.png"], "notes.png")
    fails(capsys, ["edit", "pics/0.png", "--pos", "pics/0.png"], "--neg")
    assert loaded == []


def test_a_model_with_nan_weights_warns_in_one_line(work, capsys):
    broken = tiny_model()
    with torch.no_grad():
        next(broken.decoder.parameters()).fill_(float("nan"))
    save_model(Path("nan.safetensors"), broken)
    code, _, err = run(capsys, "reconstruct", "pics/0.png", "--model", "nan.safetensors")
    warnings = [line for line in err.strip().splitlines() if "NaN" in line]
    assert (
        code == 0
        and len(warnings) == 1
        and "nan.safetensors" in warnings[0]
        and "earlier checkpoint" in warnings[0]
    )
    assert run(capsys, "reconstruct", "pics/0.png", "-o", "fine.png")[2] == ""  # a sound model: no warning


def test_long_paths_are_printed_whole_when_output_is_not_a_terminal(work, capsys):
    """Piped to a file, rich wraps at 80 columns: a path broken in the middle cannot be copied or searched for."""
    deep = Path("a-rather-long-folder-name-for-a-run-" + "x" * 50) / "checkpoints"
    deep.mkdir(parents=True)
    shutil.copy("m.safetensors", deep / "ckpt-0000080000.safetensors")
    out_file = deep / "reconstructions-with-a-long-name.png"
    code, out, err = run(capsys, "reconstruct", "pics", "--model", str(deep.parent), "-o", str(out_file))
    assert code == 0, err
    lines = out.splitlines()
    assert any(
        line.startswith("model: ") and line.endswith("ckpt-0000080000.safetensors") for line in lines
    ), out
    assert f"wrote {out_file}" in lines and f"wrote {out_file}.errors.csv" in lines, out
    assert main(["info", str(deep / "ckpt-0000080000.safetensors")]) == 0
    assert str(deep / "ckpt-0000080000.safetensors") in capsys.readouterr().out.splitlines()


def test_mix_layer_ranges_and_counts_are_worded_for_what_was_given(work, capsys):
    fails(capsys, ["mix", "pics/0.png"], "one image was given", "A.png B.png", "--rows A/ --cols B/")
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "pics/2.png"], "3 images were given", "A.png B.png")
    fails(capsys, ["mix"], "no image was given")
    fails(capsys, ["mix", "--rows", "pics"], "needs both --rows", "--rows was given without --cols")
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "--cols", "pics"], "not both", "2 images and --cols")
    fails(
        capsys,
        ["mix", "pics/0.png", "pics/1.png", "--layers", "2:1"],
        "'2:1' is empty",
        "j must be greater than i",
    )
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "--layers", "1:1"], "'1:1' is empty")
    fails(capsys, ["mix", "pics/0.png", "pics/1.png", "--layers", "0:9"], "outside the model's blocks")
