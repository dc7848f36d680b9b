"""The image operations' Python API (automod_cli/ops/) on a tiny untrained model whose latents matter.

References are independent of the code under test: a hand-written block-by-block decoder for mixing, closed
forms for slerp, per-image encodings for attribute vectors, Pillow/numpy for input conversion.
"""

from __future__ import annotations

import builtins
import io
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from PIL import Image

from automod_cli import ops
from automod_cli.checkpoint import save_model
from automod_cli.errors import AutomodError
from automod_cli.images import make_grid
from automod_cli.models import Automodulator
from automod_cli.ops import figures

R = 32  # resolution of the tiny model: 4 blocks (4², 8², 16², 32²)


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float rounding that differs between batch sizes (convolution kernels pick other paths)."""
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def model() -> Automodulator:
    return tiny_model()


@pytest.fixture(scope="module")
def classic() -> Automodulator:
    return tiny_model("classic")


def latents(n: int, seed: int = 1) -> torch.Tensor:
    """n unit latents (n, 16) from a seed."""
    return torch.nn.functional.normalize(
        torch.randn(n, 16, generator=torch.Generator().manual_seed(seed)), dim=1
    )


@torch.no_grad()
def decode_by_hand(model: Automodulator, per_block: list[torch.Tensor]) -> torch.Tensor:
    """Reference decoder: run the blocks one by one, block b driven by per_block[b] ((N, D) each)."""
    decoder = model.decoder
    x = decoder.constant.expand(per_block[0].shape[0], -1, -1, -1)
    for block, z in zip(decoder.blocks, per_block):
        x = block(x, z, False)
    return decoder.to_rgb[len(per_block) - 1](x)


# --- scales -----------------------------------------------------------------------------------------------------------


def test_named_scales_are_the_papers_blocks(model):
    assert ops.scale_range(model, "coarse") == range(0, 2)  # 4²–8²: conv layers 0..3
    assert ops.scale_range(model, "mid") == range(2, 4)  # 16²–32²
    assert ops.scale_range(model, "1:3") == range(1, 3)
    with pytest.raises(AutomodError, match="no 'fine' layers"):
        ops.scale_range(model, "fine")  # a 32² model has no 64² block
    assert ops.describe(range(0, 2)) == "blocks 0-1 (4x4 to 8x8)"
    assert ops.scale_label("mid", range(2, 4)) == "the mid scales (blocks 2-3, 16x16 to 32x32)"


def test_classic_models_refuse_scale_operations(classic):
    z = latents(2)
    for call in (
        lambda: ops.scale_range(classic, "coarse"),
        lambda: ops.mix(classic, z[:1], z[1:], range(0, 2)),
        lambda: ops.conditional_sample(classic, z[0], range(0, 2), 3),
        lambda: ops.edit(classic, z, torch.ones(16), [1.0], range(0, 2)),
        lambda: ops.interpolate(classic, z[0], z[1], 3, range(0, 2)),
    ):
        with pytest.raises(AutomodError, match="classic decoder"):
            call()
    # whole-latent operations still work
    assert ops.interpolate(classic, z[0], z[1], 3).shape == (3, 3, R, R)
    close(ops.edit(classic, z, torch.zeros(16), [0.0]), ops.decode(classic, z))


# --- mixing -----------------------------------------------------------------------------------------------------------


def test_mixing_an_image_with_itself_is_its_reconstruction(model):
    x = torch.rand(3, 3, R, R) * 2 - 1
    z = ops.encode(model, x)
    recon = ops.reconstruct(model, x)
    for spec in ("coarse", "mid", "0:1", "1:4"):
        close(ops.mix(model, z, z, ops.scale_range(model, spec)), recon)


@pytest.mark.parametrize("spec", ["coarse", "mid", "1:3"])
def test_mix_drives_the_chosen_blocks_with_b(model, spec):
    z_a, z_b = latents(2).split(1)
    blocks = ops.scale_range(model, spec)
    expected = decode_by_hand(model, [z_b if b in blocks else z_a for b in range(4)])
    close(ops.mix(model, z_a, z_b, blocks), expected)
    assert (expected - ops.decode(model, z_a)).abs().max() > 1e-3  # B changed something


def test_coarse_mix_takes_the_coarse_canvas_from_b(model):
    z_a, z_b = latents(2, seed=3).split(1)
    mixed = ops.mix_latents(model, z_a, z_b, ops.scale_range(model, "coarse"))
    canvas = model.decoder.canvas
    # after the coarse blocks (conv layers 0..3) the feature map is B's; from block 2 on A drives
    close(canvas(mixed, upto=2, noise=False), canvas(z_b, upto=2, noise=False))
    assert (canvas(mixed, upto=3, noise=False) - canvas(z_b, upto=3, noise=False)).abs().max() > 1e-3


def test_mix_grid_layout(model):
    z_rows, z_cols = latents(3, seed=4), latents(2, seed=5)
    blocks = ops.scale_range(model, "mid")
    cells = ops.mix_grid(model, z_rows, z_cols, blocks).view(4, 3, 3, R, R)
    assert torch.all(cells[0, 0] == 1.0)  # blank corner
    close(cells[0, 1:], ops.decode(model, z_cols))  # B reconstructions on top
    close(cells[1:, 0], ops.decode(model, z_rows))  # A reconstructions on the left
    for i in range(3):
        for j in range(2):
            close(cells[1 + i, 1 + j], ops.mix(model, z_rows[i : i + 1], z_cols[j : j + 1], blocks)[0])
    # the same images on both sides: reconstructions on the diagonal
    same = ops.mix_grid(model, z_rows, z_rows, blocks).view(4, 4, 3, R, R)
    for i in range(3):
        close(same[1 + i, 1 + i], same[1 + i, 0])


# --- sampling ---------------------------------------------------------------------------------------------------------


def test_samples_are_seeded_and_distinct(model):
    first = ops.sample(model, 4, torch.Generator().manual_seed(7))
    again = ops.sample(model, 4, torch.Generator().manual_seed(7))
    torch.testing.assert_close(first, again)
    assert first.shape == (4, 3, R, R) and (first[0] - first[1]).abs().max() > 1e-3


def test_conditional_sampling_keeps_the_fixed_scales(model):
    z_fixed = latents(1, seed=8)
    blocks = ops.scale_range(model, "coarse")
    assignment = ops.conditional_latents(model, z_fixed, blocks, 5, torch.Generator().manual_seed(2))
    canvases = model.decoder.canvas(assignment, upto=2, noise=False)
    reference = model.decoder.canvas(z_fixed, upto=2, noise=False)
    for canvas in canvases:
        close(canvas, reference[0])
    images = ops.decode(model, assignment)
    assert images.std(dim=0).max() > 1e-3  # the random scales vary across samples
    mid = ops.conditional_latents(
        model, z_fixed, ops.scale_range(model, "mid"), 3, torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(mid[:, 2:], z_fixed.expand(3, 2, -1))  # blocks 2-3 read the input's latent
    assert not torch.allclose(mid[0, :2], mid[1, :2])


# --- editing ----------------------------------------------------------------------------------------------------------


def test_attribute_vector_is_the_difference_of_mean_latents(model):
    positives, negatives = torch.rand(5, 3, R, R) * 2 - 1, torch.rand(4, 3, R, R) * 2 - 1
    one_by_one = lambda x: torch.cat([model.encode(image[None]) for image in x])  # noqa: E731
    with torch.no_grad():
        expected = one_by_one(positives).mean(0) - one_by_one(negatives).mean(0)
    torch.testing.assert_close(ops.attribute_vector(model, positives, negatives), expected)
    with pytest.raises(AutomodError, match="at least one"):
        ops.attribute_vector(model, positives, negatives[:0])


def test_zero_edits_are_reconstructions(model):
    z = latents(2, seed=9)
    recon = ops.decode(model, z)
    vector = latents(1, seed=10)[0]
    for blocks in (None, ops.scale_range(model, "mid")):
        strips = ops.edit(model, z, torch.zeros(16), [-2.0, 1.0], blocks).view(2, 2, 3, R, R)
        close(strips, recon[:, None].expand(-1, 2, -1, -1, -1))
        at_zero = ops.edit(model, z, vector, [0.0], blocks)
        close(at_zero, recon)


def test_edits_add_the_vector_only_on_the_chosen_scales(model):
    z, vector = latents(2, seed=11), latents(1, seed=12)[0]
    strips = ops.edit(model, z, vector, [0.5, 2.0], ops.scale_range(model, "mid")).view(2, 2, 3, R, R)
    for i in range(2):
        for k, s in enumerate((0.5, 2.0)):
            edited = z[i : i + 1] + s * vector  # not renormalised, as in the authors' code
            expected = decode_by_hand(model, [z[i : i + 1], z[i : i + 1], edited, edited])
            close(strips[i, k], expected[0])
    everywhere = ops.edit(model, z, vector, [2.0])
    close(everywhere, ops.decode(model, z + 2.0 * vector))


def test_vectors_round_trip_as_safetensors_and_never_overwrite(tmp_path, model):
    vector = latents(1, seed=13)[0]
    path = ops.save_vector(tmp_path / "smile.safetensors", vector, {"positives": "4", "negatives": "5"})
    header_length = int.from_bytes(
        path.read_bytes()[:8], "little"
    )  # safetensors: u64 length, then a JSON header
    assert path.read_bytes()[8:9] == b"{" and header_length < path.stat().st_size
    loaded, info = ops.load_vector(path, latent_dim=16)
    torch.testing.assert_close(loaded, vector)
    assert info["positives"] == "4" and info["latent_dim"] == "16"
    with pytest.raises(AutomodError, match="already exists"):
        ops.save_vector(path, -vector, {})
    torch.testing.assert_close(ops.load_vector(path)[0], vector)
    with pytest.raises(AutomodError, match="16-d vector but the model's latents are 32-d"):
        ops.load_vector(path, latent_dim=32)
    save_model(tmp_path / "model.safetensors", model)
    (tmp_path / "junk.safetensors").write_bytes(b"\x80\x04not a tensor file")
    for other in ("model.safetensors", "junk.safetensors", "missing.safetensors"):
        with pytest.raises(AutomodError):
            ops.load_vector(tmp_path / other)


AUTHORS_DIRECTIONS = Path(__file__).parent / "data" / "authors" / "official-attrib"
AUTHORS_FILES = (
    "dark_delta2",
    "left_delta2",
    "male_delta2",
    "smile_delta2",
    "smile_delta512-4",
    "smile_delta512-16",
)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


@pytest.mark.parametrize("name", AUTHORS_FILES)
def test_the_authors_directions_load_as_they_were_stored(name):
    path = AUTHORS_DIRECTIONS / name
    assert path.read_bytes()[:2] == b"\x80\x02"  # torch.save's legacy (pre-1.6) format: a pickle, not a zip
    stored = torch.load(path, map_location="cpu", weights_only=True)  # the reference: torch's own reader
    assert stored.shape == (1, 512) and stored.dtype == torch.float32
    vector, info = ops.load_vector(path, latent_dim=512)
    assert vector.shape == (512,) and vector.dtype == torch.float32 and not vector.requires_grad
    assert torch.equal(vector, stored[0])
    assert info == {"source": name}
    with pytest.raises(AutomodError) as excinfo:
        ops.load_vector(path, latent_dim=16)
    assert "512-d vector but the model's latents are 16-d" in one_line(excinfo)


def test_torch_saved_directions_of_the_accepted_layouts(tmp_path):
    v = latents(1, seed=14)[0]
    cases = {
        "zip-flat.pt": (v, {}),
        "zip-row.pt": (v[None], {}),
        "legacy-row": (v[None], {"_use_new_zipfile_serialization": False}),  # as the authors' files
        "double.pt": (v[None].double(), {}),
        "half.pt": (v.half(), {}),
        "dict.pt": ({"direction": v[None]}, {}),
        "param.pt": (torch.nn.Parameter(v.clone()), {}),
    }
    for name, (obj, options) in cases.items():
        torch.save(obj, tmp_path / name, **options)
        loaded, _ = ops.load_vector(tmp_path / name, latent_dim=16)
        expected = v.half().float() if name == "half.pt" else v
        assert loaded.shape == (16,) and loaded.dtype == torch.float32 and not loaded.requires_grad, name
        torch.testing.assert_close(loaded, expected, rtol=0, atol=0)
    # the format is read from the bytes, not the name: a torch file called .safetensors still loads
    torch.save(v, tmp_path / "named.safetensors")
    assert torch.equal(ops.load_vector(tmp_path / "named.safetensors")[0], v)


@pytest.mark.parametrize(
    "obj, words",
    [
        (torch.zeros(2, 16), ["shape (2, 16)", "(D,) or (1, D)"]),
        (torch.zeros(16, 1), ["shape (16, 1)"]),
        (torch.zeros(1, 1, 16), ["shape (1, 1, 16)"]),
        (torch.tensor(1.0), ["shape ()"]),
        (torch.zeros(1, 0), ["shape (1, 0)"]),
        (torch.arange(16), ["int64 values", "float"]),
        (torch.ones(16, dtype=torch.bool), ["bool values"]),
        (torch.zeros(16, dtype=torch.complex64), ["complex64 values"]),
        (torch.full((16,), float("nan")), ["NaN or infinite"]),
        ({"a": torch.zeros(16), "b": torch.zeros(16)}, ["a dict of 2 entries, not a tensor"]),
        ([torch.zeros(16)], ["a list, not a tensor"]),
        ({"step": 3}, ["a dict of 1 entry, not a tensor"]),
        ({}, ["a dict of 0 entries, not a tensor"]),
    ],
)
def test_other_torch_contents_are_one_line_refusals(tmp_path, obj, words):
    torch.save(obj, tmp_path / "d.pt")
    with pytest.raises(AutomodError) as excinfo:
        ops.load_vector(tmp_path / "d.pt")
    message = one_line(excinfo)
    assert all(word in message for word in words), message


def test_unreadable_direction_files_are_one_line(tmp_path):
    torch.save(torch.zeros(16), tmp_path / "whole.pt")
    payload = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(payload[: len(payload) // 2])
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text.txt").write_text("0.1 0.2 0.3")
    for name, words in (
        ("truncated.pt", ["not a readable torch file"]),
        ("empty", ["neither a safetensors file"]),
        ("text.txt", ["neither a safetensors file", "torch.save"]),
        ("missing.pt", ["does not exist"]),
    ):
        with pytest.raises(AutomodError) as excinfo:
            ops.load_vector(tmp_path / name)
        assert all(word in one_line(excinfo) for word in words), (name, str(excinfo.value))


class Payload:
    """Unpickling this runs exec(code): the code writes a marker file."""

    def __init__(self, marker: Path):
        self.code = f"open({str(marker)!r}, 'w').write('ran')"

    def __reduce__(self):
        return builtins.exec, (self.code,)


def test_pickled_objects_are_refused_and_their_code_never_runs(tmp_path):
    marker = tmp_path / "marker"
    files = {
        "zip.pt": lambda p: torch.save(Payload(marker), p),
        "legacy.pt": lambda p: torch.save(Payload(marker), p, _use_new_zipfile_serialization=False),
        "mixed.pt": lambda p: torch.save({"vector": torch.zeros(16), "extra": Payload(marker)}, p),
        "plain.pkl": lambda p: p.write_bytes(pickle.dumps(Payload(marker), protocol=4)),
    }
    for name, write in files.items():
        write(tmp_path / name)
        with pytest.raises(AutomodError) as excinfo:
            ops.load_vector(tmp_path / name, latent_dim=16)
        message = one_line(excinfo)
        assert "weights-only load refused it" in message and "never unpickles" in message, message
        assert "exec" in message or name == "plain.pkl", message  # names what it refused
        assert not marker.exists(), name
    # the payload is live: a full unpickler (what load_vector never falls back to) runs it
    pickle.loads((tmp_path / "plain.pkl").read_bytes())
    assert marker.read_text() == "ran"


# --- interpolation ----------------------------------------------------------------------------------------------------


def test_slerp_follows_the_great_circle():
    a, b = latents(2, seed=14)
    t = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
    path = ops.slerp(a, b, t)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(6))
    omega = math.acos(float(a @ b))
    angles_from_a = torch.arccos((path @ a).clamp(-1, 1))
    torch.testing.assert_close(angles_from_a, t * omega, atol=1e-4, rtol=0)  # constant angular speed
    # the path stays in the plane spanned by a and b
    basis = torch.linalg.qr(torch.stack([a, b], dim=1)).Q
    torch.testing.assert_close(basis @ (basis.T @ path.T), path.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(ops.slerp(a, a, t), a.expand(6, -1))  # a degenerate pair stays put


def test_interpolation_ends_are_reconstructions(model):
    x = torch.rand(4, 3, R, R) * 2 - 1
    z = ops.encode(model, x)
    recon = ops.reconstruct(model, x)
    strip = ops.interpolate(model, z[0], z[1], 5)
    assert strip.shape == (5, 3, R, R)
    close(strip[0], recon[0])
    close(strip[-1], recon[1])
    grid = ops.interpolate_grid(model, z, 4).view(4, 4, 3, R, R)
    for (row, col), k in {(0, 0): 0, (0, 3): 1, (3, 0): 2, (3, 3): 3}.items():
        close(grid[row, col], recon[k])


def test_scale_restricted_interpolation_keeps_the_first_image_elsewhere(model):
    z = latents(4, seed=15)
    grid = ops.interpolate_grid(model, z, 3, ops.scale_range(model, "mid"))
    reference = model.decoder.canvas(z[:1], upto=2, noise=False)
    # the coarse canvas of every cell is the top-left image's; the mid blocks move along the path
    path = torch.cat(
        [
            ops.slerp(l, r, ops.interpolation.fractions(3))
            for l, r in zip(
                ops.slerp(z[0], z[2], ops.interpolation.fractions(3)),
                ops.slerp(z[1], z[3], ops.interpolation.fractions(3)),
            )
        ]
    )
    expected = decode_by_hand(model, [z[:1].expand(9, -1), z[:1].expand(9, -1), path, path])
    close(grid, expected)
    assignment = ops.mix_latents(model, z[:1].expand(9, -1), path, ops.scale_range(model, "mid"))
    close(model.decoder.canvas(assignment, upto=2, noise=False), reference.expand(9, -1, -1, -1))


def test_gif_plays_forwards_then_back(tmp_path):
    frames = torch.linspace(-1, 1, 4)[:, None, None, None].expand(4, 3, 8, 8)
    path = ops.write_gif(tmp_path / "a.gif", frames)
    with Image.open(path) as gif:
        assert gif.n_frames == 6 and gif.size == (192, 192) and gif.info["loop"] == 0
        levels = []
        for i in range(gif.n_frames):
            gif.seek(i)
            levels.append(int(np.asarray(gif.convert("RGB"))[0, 0, 0]))
    assert levels == [0, 85, 170, 255, 170, 85]
    with pytest.raises(AutomodError, match="already exists"):
        ops.write_gif(path, frames)
    assert ops.snake_order(2, 3) == [0, 1, 2, 5, 4, 3]


# --- figures ----------------------------------------------------------------------------------------------------------


def test_captioned_grid_is_the_grid_under_a_text_band():
    cells = torch.rand(6, 3, R, R) * 2 - 1
    figure = ops.captioned_grid(cells, 3, "rows: A, columns: B")
    cell = 3 * R  # 32² cells are enlarged ×3 to reach 96 pixels
    grid_height, grid_width = 2 * (cell + 2) + 2, 3 * (cell + 2) + 2
    band = figure.shape[1] - grid_height
    assert figure.shape == (3, band + grid_height, grid_width) and band > 12
    torch.testing.assert_close(figure[:, band:], make_grid(cells, 3))
    text = figure[:, :band]
    assert text.min() < -0.5 and (text == 1.0).float().mean() > 0.7  # dark glyphs on white
    long = ops.captioned(torch.zeros(3, 40, 60), "a caption far too long for sixty pixels of width")
    assert long.shape[1] - 40 > band  # wrapped onto more lines
    assert figures.wrap("one two", 1000) == ["one two"]


# --- inputs -----------------------------------------------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_inputs_of_any_mode_and_size_become_rgb_at_the_model_resolution(tmp_path):
    stripes = np.zeros((20, 60, 3), np.uint8)
    stripes[:, :20, 0] = stripes[:, 20:40, 1] = stripes[:, 40:, 2] = 255  # red | green | blue, 3:1
    files = {
        "gray.png": Image.new("L", (40, 30), 128),
        "rgba.png": Image.new("RGBA", (33, 33), (10, 20, 30, 0)),  # fully transparent: white
        "deep.png": Image.fromarray(np.full((16, 16), 65535, np.uint16)),
        "tiny.png": Image.new("RGB", (2, 3), (255, 0, 0)),
        "wide.png": Image.fromarray(stripes),
        "cmyk.jpg": Image.new("CMYK", (50, 50), (0, 0, 0, 0)),
    }
    for name, image in files.items():
        image.save(tmp_path / name)
    x = ops.load_images([tmp_path / name for name in files], R)
    assert x.shape == (6, 3, R, R) and x.min() >= -1 and x.max() <= 1
    gray, rgba, deep, tiny, wide, cmyk = x
    torch.testing.assert_close(gray, torch.full((3, R, R), 128 / 127.5 - 1))
    torch.testing.assert_close(rgba, torch.ones(3, R, R))
    torch.testing.assert_close(deep, torch.ones(3, R, R))
    torch.testing.assert_close(tiny, torch.tensor([1.0, -1.0, -1.0])[:, None, None].expand(3, R, R))
    torch.testing.assert_close(
        wide, torch.tensor([-1.0, 1.0, -1.0])[:, None, None].expand(3, R, R)
    )  # centre crop
    assert cmyk.min() > 0.9  # CMYK zero ink is white


def test_unusable_inputs_are_one_sentence_naming_the_file(tmp_path):
    good = _png(Image.new("RGB", (40, 40), (1, 2, 3)))
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.png").write_bytes(b"not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("truncated.png", "text.png", "empty.png", "missing.png"):
        with pytest.raises(AutomodError) as info:
            ops.load_image(tmp_path / name, R)
        assert name in str(info.value) and "\n" not in str(info.value)


def test_image_paths_expand_folders(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("b.png", "a.jpg", "notes.txt"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "c.png").write_bytes(b"x")
    assert ops.image_paths([tmp_path / "c.png", folder]) == [
        tmp_path / "c.png",
        folder / "a.jpg",
        folder / "b.png",
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutomodError, match="holds no image files"):
        ops.image_paths([tmp_path / "empty"])
    with pytest.raises(AutomodError, match="does not exist"):
        ops.image_paths([tmp_path / "nope.png"])
