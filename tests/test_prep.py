"""Preparing datasets: bad and odd files, sources and their splits, workers, resuming, and the CLI."""

from __future__ import annotations

import io
import json

import h5py
import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from automod_cli.commands.prep import register
from automod_cli.errors import AutomodError
from data_prep import prep, sources
from data_prep.align import align_face
from data_prep.hdf5 import partial_path, read_info

RES = 16


def noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def reference_top(image: Image.Image) -> np.ndarray:
    """Centre square, Lanczos to RES, CHW: written independently of data_prep.images."""
    w, h = image.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(image.crop(box).resize((RES, RES), Image.LANCZOS)).transpose(2, 0, 1)


@pytest.fixture
def messy_folder(tmp_path):
    """Seven usable pictures in odd formats and five bad files, plus a hidden file that is ignored."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(noise(30, 40, 1)).save(root / "a_rgb.png")
    Image.fromarray(noise(24, 24, 2)[..., 0], "L").save(root / "b_gray.png")
    Image.fromarray(noise(20, 20, 3)).convert("CMYK").save(root / "c_cmyk.jpg", quality=95)
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, 10:] = (255, 0, 0, 255)  # opaque red right half, fully transparent left half
    Image.fromarray(rgba, "RGBA").save(root / "d_rgba.png")
    palette = Image.fromarray(noise(20, 20, 4)).convert("P")
    palette.save(root / "e_palette.png", transparency=0)
    Image.fromarray(np.arange(400, dtype=np.uint16).reshape(20, 20) * 150).save(root / "f_16bit.png")
    (root / "g_corrupt.jpg").write_bytes(np.random.default_rng(5).bytes(500))
    (root / "h_truncated.jpg").write_bytes(jpeg_bytes(Image.fromarray(noise(64, 64, 6)))[:1500])
    (root / "i_empty.png").write_bytes(b"")
    Image.fromarray(noise(8, 8, 7)).save(root / "j_tiny.png")
    (root / "k_notes.txt").write_text("not a picture")
    (root / ".hidden.png").write_bytes(b"ignored")
    Image.fromarray(noise(32, 32, 8)).save(root / "sub" / "l_nested.png")
    return root


def run(source, out, **kw):
    return prep.prepare(source, out, RES, **kw)


def test_messy_folder_writes_the_good_files_and_reports_the_rest(messy_folder, tmp_path):
    result = run(sources.folder(messy_folder), tmp_path / "out.h5")
    assert result.written == 7 and read_info(result.output).count == 7
    assert result.skipped_by_kind() == {
        "not an image": ["g_corrupt.jpg", "k_notes.txt"],
        "truncated": ["h_truncated.jpg"],
        "empty file": ["i_empty.png"],
        "too small": ["j_tiny.png"],
    }
    lines = result.skipped_report.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["g_corrupt.jpg", "h_truncated.jpg", "i_empty.png", "j_tiny.png", "k_notes.txt"]
    with h5py.File(result.output) as file:
        top = file[f"levels/{RES}"][:]
    originals = {name: Image.open(messy_folder / name) for name in ("a_rgb.png", "b_gray.png", "c_cmyk.jpg", "sub/l_nested.png")}
    np.testing.assert_array_equal(top[0], reference_top(originals["a_rgb.png"]))
    np.testing.assert_array_equal(top[1], reference_top(originals["b_gray.png"].convert("RGB")))
    assert (top[1][0] == top[1][2]).all()  # grayscale stays gray
    np.testing.assert_array_equal(top[2], reference_top(originals["c_cmyk.jpg"].convert("RGB")))
    assert (top[3][:, :, :6] == 255).all()  # transparent half composited over white
    assert (top[3][:, :, 11:] == np.array([255, 0, 0])[:, None, None]).all()
    sixteen = np.asarray(Image.open(messy_folder / "f_16bit.png"), dtype=np.float64)
    expected = Image.fromarray(np.uint8(np.rint(sixteen / 257)), "L").convert("RGB")
    np.testing.assert_array_equal(top[5], reference_top(expected))
    np.testing.assert_array_equal(top[6], reference_top(originals["sub/l_nested.png"]))


def test_workers_give_the_same_file_as_one_process(messy_folder, tmp_path):
    one = run(sources.folder(messy_folder), tmp_path / "one.h5", workers=1)
    two = run(sources.folder(messy_folder), tmp_path / "two.h5", workers=2)
    assert read_info(one.output).checksum == read_info(two.output).checksum
    assert one.skipped == two.skipped


def test_interrupted_prep_resumes_to_the_same_file(messy_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(prep, "CHECKPOINT_IMAGES", 2)
    out = tmp_path / "out.h5"

    def stop_at_five(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(sources.folder(messy_folder), out, progress=stop_at_five)
    assert not out.exists() and partial_path(out).exists()
    resumed = run(sources.folder(messy_folder), out)
    assert resumed.resumed_from == 4 and not partial_path(out).exists()
    reference = run(sources.folder(messy_folder), tmp_path / "ref.h5")
    assert read_info(out).checksum == read_info(reference.output).checksum
    assert resumed.skipped == reference.skipped


def test_nothing_usable_is_an_error_and_leaves_no_file(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "readme.txt").write_text("hi")
    with pytest.raises(AutomodError, match="No image could be used"):
        run(sources.folder(root), tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists() and not partial_path(tmp_path / "out.h5").exists()
    with pytest.raises(AutomodError, match="not a folder"):
        sources.folder(tmp_path / "nowhere")


def solid(color: tuple[int, int, int], size: int = 20) -> Image.Image:
    return Image.new("RGB", (size, size), color)


def test_ffhq_splits_by_index_and_reports_missing(tmp_path):
    root = tmp_path / "images1024x1024"
    for index in (0, 1, 2, 60000):
        (root / f"{index // 1000 * 1000:05d}").mkdir(parents=True, exist_ok=True)
        solid((index % 256, 10, 20)).save(root / f"{index // 1000 * 1000:05d}" / f"{index:05d}.png")
    train = run(sources.ffhq(root, "train", limit=4), tmp_path / "train.h5")
    assert train.written == 3 and train.skipped == [("00003", "missing: not found under --src")]
    test = run(sources.ffhq(root, "test", limit=1), tmp_path / "test.h5")
    info = read_info(test.output)
    assert (info.split, info.count, info.alignment) == ("test", 1, "ffhq release (pre-aligned)")
    with h5py.File(test.output) as file:
        assert file[f"levels/{RES}"][0, 0, 0, 0] == 60000 % 256
    with pytest.raises(AutomodError, match="Unknown FFHQ split"):
        sources.ffhq(root, "val")


def test_ffhq_in_the_wild_uses_the_release_landmarks(tmp_path):
    root = tmp_path / "in-the-wild-images"
    root.mkdir()
    photos = {i: Image.fromarray(noise(120, 100, i)) for i in range(3)}
    for i, photo in photos.items():
        photo.save(root / f"{i:05d}.png")
    rng = np.random.default_rng(0)
    marks = {i: (rng.uniform(40, 60, (68, 2))).tolist() for i in range(2)}  # none for image 2
    json_path = tmp_path / "ffhq-dataset-v2.json"
    json_path.write_text(json.dumps({str(i): {"in_the_wild": {"face_landmarks": m}} for i, m in marks.items()}))
    result = run(sources.ffhq(root, "train", landmarks=json_path, limit=3), tmp_path / "wild.h5")
    assert result.written == 2
    assert result.skipped == [("00002.png", "missing: no landmarks for it in the metadata file")]
    with h5py.File(result.output) as file:
        expected = np.asarray(align_face(photos[1], np.array(marks[1]), RES)).transpose(2, 0, 1)
        np.testing.assert_array_equal(file[f"levels/{RES}"][1], expected)
    bad_json = tmp_path / "other.json"
    bad_json.write_text(json.dumps({"0": {"image": {}}}))
    with pytest.raises(AutomodError, match="not the FFHQ metadata file"):
        sources.ffhq(root, landmarks=bad_json)


def test_celebahq_sorts_by_numeric_index(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CELEBAHQ_TRAIN", 3)
    root = tmp_path / "celeba"
    root.mkdir()
    for index in (0, 1, 2, 10, 11):
        solid((index, 0, 0)).save(root / f"{index}.png")
    reds = {}
    for split in ("train", "test"):
        result = run(sources.celebahq(root, split), tmp_path / f"{split}.h5")
        with h5py.File(result.output) as file:
            reds[split] = [int(round(v)) for v in file["levels/4"][:, 0].mean(axis=(1, 2))]
    assert reds == {"train": [0, 1, 2], "test": [10, 11]}  # numeric, not lexical (10 < 2) order


def test_lsun_lmdb_crops_to_the_centre_square(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10], wide[:, 10:30], wide[:, 30:] = (255, 0, 0), (0, 200, 0), (0, 0, 255)
    with lmdb.open(str(tmp_path / "car_lmdb"), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key in (b"k1", b"k2", b"k3"):
            buffer = io.BytesIO()
            Image.fromarray(wide).save(buffer, "PNG")  # the official export stores webp; any encoding decodes
            txn.put(key, buffer.getvalue())
        txn.put(b"k4", b"not an image")
    result = run(sources.lsun(tmp_path / "car_lmdb", limit=3), tmp_path / "cars.h5")
    assert result.written == 3 and result.skipped == []
    with h5py.File(result.output) as file:
        assert (file[f"levels/{RES}"][:] == np.array([0, 200, 0])[None, :, None, None]).all()
    everything = run(sources.lsun(tmp_path / "car_lmdb"), tmp_path / "all.h5")
    assert everything.written == 3 and everything.skipped_by_kind() == {"not an image": ["k4"]}


def test_builtin_source_writes_the_generated_split(tmp_path):
    from data_prep.builtin import BuiltinDataset

    result = run(sources.builtin("test", RES, limit=5), tmp_path / "b.h5")
    # the same pixels training on the built-in data set sees (rendered at 64², box-downscaled)
    served = BuiltinDataset("test", resolution=RES, count=5)
    expected = np.stack([((served[i].numpy() + 1) * 127.5).round().astype(np.uint8) for i in range(5)])
    with h5py.File(result.output) as file:
        np.testing.assert_array_equal(file[f"levels/{RES}"][:], expected)
    assert read_info(result.output).split == "test"


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_cli_folder_report_no_overwrite_and_info(messy_folder, tmp_path):
    out = tmp_path / "faces.h5"
    args = ["prep", "folder", "--src", str(messy_folder), "--out", str(out), "--res", str(RES), "--workers", "1"]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert "wrote 7 images" in result.output and "not an image" in result.output and "faces.skipped.txt" in result.output
    again = CliRunner().invoke(cli(), args)
    assert isinstance(again.exception, AutomodError) and "--force" in str(again.exception)
    info = CliRunner().invoke(cli(), ["prep", "info", str(out)])
    assert info.exit_code == 0 and "checksum ok" in info.output and "folder" in info.output
    with h5py.File(out, "r+") as file:
        file["levels/8"][2, 1, 1, 1] ^= 7
    tampered = CliRunner().invoke(cli(), ["prep", "info", str(out)])
    assert isinstance(tampered.exception, AutomodError) and "1 images do not match" in str(tampered.exception)
    bad_res = CliRunner().invoke(cli(), ["prep", "builtin", "--out", str(tmp_path / "b.h5"), "--res", "48"])
    assert isinstance(bad_res.exception, AutomodError)
    for source in ("ffhq", "celebahq", "lsun", "folder", "builtin", "info"):
        assert "Example: automod prep" in CliRunner().invoke(cli(), ["prep", source, "--help"]).output
