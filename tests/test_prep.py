"""Preparing datasets: bad and odd files, sources and their splits, workers, resuming, and the CLI."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from automod_cli.commands.prep import register
from automod_cli.errors import AutomodError
from data_prep import hdf5, prep, sources
from data_prep.align import align_face
from data_prep.builtin import BuiltinDataset
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
    assert [line.split("\t")[0] for line in lines] == [
        "g_corrupt.jpg",
        "h_truncated.jpg",
        "i_empty.png",
        "j_tiny.png",
        "k_notes.txt",
    ]
    with h5py.File(result.output) as file:
        top = file[f"levels/{RES}"][:]
    originals = {
        name: Image.open(messy_folder / name)
        for name in ("a_rgb.png", "b_gray.png", "c_cmyk.jpg", "sub/l_nested.png")
    }
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


def interrupt_at_five(folder, out, monkeypatch):
    """Start a prep of `folder` into `out` that is interrupted (Ctrl-C) at its fifth image, with a checkpoint
    every two images; returns `out`."""
    monkeypatch.setattr(prep, "CHECKPOINT_IMAGES", 2)

    def stop_at_five(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(sources.folder(folder), out, progress=stop_at_five)
    return out


def test_interrupted_prep_resumes_to_the_same_file(messy_folder, tmp_path, monkeypatch):
    out = interrupt_at_five(messy_folder, tmp_path / "out.h5", monkeypatch)
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
    json_path.write_text(
        json.dumps({str(i): {"in_the_wild": {"face_landmarks": m}} for i, m in marks.items()})
    )
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
    args = [
        "prep",
        "folder",
        "--src",
        str(messy_folder),
        "--out",
        str(out),
        "--res",
        str(RES),
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert (
        "wrote 7 images" in result.output
        and "not an image" in result.output
        and "faces.skipped.txt" in result.output
    )
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


# --- a full disk, damaged partial files, unwritable and missing output folders (issue 18) ---


def reference_checksum(tmp_path, source, resolution: int = RES) -> str:
    return read_info(
        prep.prepare(source, tmp_path / "reference" / "ref.h5", resolution, force=True).output
    ).checksum


def test_disk_full_stops_before_the_image_that_does_not_fit_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "full.h5"
    real_free = hdf5.free_bytes
    state = {"writer": None}
    original_add = hdf5.H5Writer.add

    def add(self, levels):
        state["writer"] = self
        original_add(self, levels)

    def free(folder):  # a disk with room for 5½ images besides the reserve, filling as they are written
        writer = state["writer"]
        return int(hdf5._SPACE_RESERVE + (5.5 - writer.written) * writer.image_bytes)

    monkeypatch.setattr(hdf5.H5Writer, "add", add)
    monkeypatch.setattr(hdf5, "free_bytes", free)
    with pytest.raises(
        hdf5.DiskFull, match=r"is full .*stopped after 5 of 12 inputs, and the 5 images written are kept"
    ) as full:
        run(sources.builtin("train", RES, limit=12), out)
    assert "\n" not in str(full.value) and not full.value.hdf5_failed
    assert not out.exists() and partial_path(out).exists()
    monkeypatch.setattr(hdf5, "free_bytes", real_free)
    resumed = run(sources.builtin("train", RES, limit=12), out)
    assert resumed.resumed_from == 5 and resumed.discarded == ""
    assert read_info(out).checksum == reference_checksum(tmp_path, sources.builtin("train", RES, limit=12))


def test_disk_full_error_from_the_writer_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(prep, "CHECKPOINT_IMAGES", 2)
    out = tmp_path / "full.h5"
    original_add = hdf5.H5Writer.add

    def add(self, levels):
        if self.written == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        original_add(self, levels)

    monkeypatch.setattr(hdf5.H5Writer, "add", add)
    with pytest.raises(
        hdf5.DiskFull, match=r"is full: writing failed after 5 of 9 inputs; 4 inputs \(4 images\) are kept"
    ) as full:
        run(sources.builtin("train", RES, limit=9), out)
    assert "\n" not in str(full.value) and "Traceback" not in str(full.value)
    monkeypatch.setattr(hdf5.H5Writer, "add", original_add)
    resumed = run(sources.builtin("train", RES, limit=9), out)
    assert resumed.resumed_from == 4
    assert read_info(out).checksum == reference_checksum(tmp_path, sources.builtin("train", RES, limit=9))


@pytest.mark.parametrize("damage", ["count ahead of the images", "truncated"])
def test_a_damaged_partial_file_is_started_over_with_a_note(messy_folder, tmp_path, monkeypatch, damage):
    out = interrupt_at_five(messy_folder, tmp_path / "out.h5", monkeypatch)
    if damage == "truncated":
        size = partial_path(out).stat().st_size
        with open(partial_path(out), "r+b") as handle:
            handle.truncate(size // 2)
    else:  # what a write to a full disk left: the checkpoint recorded, the images not
        with h5py.File(partial_path(out), "r+") as file:
            progress = json.loads(file.attrs["progress"])
            file.attrs["progress"] = json.dumps({**progress, "inputs": 8, "written": progress["written"] + 3})
    result = run(sources.folder(messy_folder), out)
    assert result.resumed_from == 0 and "started over" in result.discarded and "damaged" in result.discarded
    assert read_info(out).checksum == reference_checksum(tmp_path, sources.folder(messy_folder))


def builtin_cli_args(out, *extra) -> list[str]:
    return ["prep", "builtin", "--out", str(out), "--res", str(RES), "--limit", "6", *extra]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder that really refuses new files: chmod for a normal user, a read-only tmpfs for root."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    ).returncode:
        pytest.skip("running as root and cannot mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("where", ["folder", "missing subfolder"])
def test_read_only_output_folder_is_refused_before_any_work(read_only_folder, monkeypatch, where):
    monkeypatch.setattr(
        sources, "builtin", lambda *a, **k: pytest.fail("the inputs were read before the output was checked")
    )
    out = read_only_folder / "data.h5" if where == "folder" else read_only_folder / "new" / "data.h5"
    result = CliRunner().invoke(cli(), builtin_cli_args(out))
    assert isinstance(result.exception, AutomodError), result.output
    assert f"'{read_only_folder}' is not writable" in str(result.exception) and "--out" in str(
        result.exception
    )
    assert "\n" not in str(result.exception)


def test_prep_creates_missing_output_folders_and_help_says_so(tmp_path):
    out = tmp_path / "new" / "deeper" / "data.h5"
    result = CliRunner().invoke(cli(), builtin_cli_args(out))
    assert result.exit_code == 0, result.output
    assert read_info(out).count == 6
    shown = CliRunner().invoke(cli(), ["prep", "builtin", "--help"], env={"COLUMNS": "300"}).output
    assert "missing folders are created" in " ".join(shown.replace("│", " ").split())


def test_no_skipped_file_list_when_nothing_was_skipped(tmp_path):
    out = tmp_path / "clean.h5"
    stale = tmp_path / "clean.skipped.txt"
    stale.write_text("old.png\tnot an image: from an earlier preparation\n")
    result = CliRunner().invoke(cli(), builtin_cli_args(out, "--force"))
    assert result.exit_code == 0, result.output
    assert not stale.exists() and "skipped-file list" not in result.output
    assert run(sources.builtin("train", RES, limit=3), tmp_path / "again.h5").skipped_report is None
    assert not (tmp_path / "again.skipped.txt").exists()


def test_readme_names_the_skipped_file_list_the_code_writes(messy_folder, tmp_path):
    result = run(sources.folder(messy_folder), tmp_path / "mine.h5")
    assert result.skipped_report == tmp_path / "mine.skipped.txt" and result.skipped_report.exists()
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Preparing data", 1)[1].split("\n## ", 1)[0]
    assert "`data/mine.skipped.txt`" in section and "--out data/mine.h5" in section
    assert "<out>.skipped.txt" not in section


def _tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(exist_ok=True)
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
        ).returncode
    ):
        pytest.skip("needs root to mount a small tmpfs")


PREP_SCRIPT = """
import os, sys
from data_prep import hdf5, prep
from automod_cli.cli import main
if sys.argv[1] == "no-space-check":  # HDF5 itself meets the full disk
    hdf5.free_bytes = lambda folder: 1 << 40
if sys.argv[1] == "crash":  # what earlier versions did after that: crash, leaving the partial file as it was
    hdf5.free_bytes = lambda folder: 1 << 40
    prep._disk_full = lambda *args, **kwargs: os._exit(139)
sys.exit(main(sys.argv[2:]))
"""


def test_a_real_full_disk_is_one_line_and_every_case_recovers(tmp_path):
    disk = tmp_path / "small"
    _tmpfs(disk, "3m")
    try:
        out = disk / "sub" / "b.h5"
        args = ["prep", "builtin", "--out", str(out), "--res", "64", "--limit", "400"]
        reference = reference_checksum(tmp_path, sources.builtin("train", 64, limit=400), 64)
        env = {**os.environ, "COLUMNS": "200"}

        def prep_cli(mode: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-c", PREP_SCRIPT, mode, *args], capture_output=True, text=True, env=env
            )

        for mode, says in [
            (
                "plain",
                r"is full \(.* free\): stopped after (\d+) of 400 inputs, and the \1 images written are kept",
            ),
            ("no-space-check", r"filled up while writing .*nothing is kept"),
            ("crash", None),
        ]:
            full = prep_cli(mode)
            if says is None:
                assert full.returncode == 139 and partial_path(out).exists()
            else:
                assert full.returncode == 2, full.stderr
                assert "Traceback" not in full.stderr and len(full.stderr.strip().splitlines()) == 1, (
                    full.stderr
                )
                assert re.search(says, full.stderr), full.stderr
            subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
            done = prep_cli("plain")
            assert done.returncode == 0, done.stderr
            if mode == "crash":
                assert "started over" in done.stdout
            assert read_info(out).checksum == reference
            out.unlink()
            subprocess.run(["mount", "-o", "remount,size=3m", str(disk)], check=True)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from data_prep import prep, sources
convert = prep.convert
def slow(item, conversion):
    time.sleep(0.02)
    return convert(item, conversion)
prep.convert = slow
def progress(done, total):
    if done >= 8:
        print("started", flush=True)
prep.prepare(sources.folder(Path(sys.argv[1])), Path(sys.argv[2]), 16, workers=2, progress=progress)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_workers_of_a_killed_prep_exit_quietly(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(400):
        Image.fromarray(noise(20, 20, i)).save(photos / f"{i:04d}.png")
    stderr = open(tmp_path / "stderr.txt", "w+")
    parent = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(photos), str(tmp_path / "out.h5")],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert parent.stdout.readline().strip() == "started"
    workers = [
        int(pid)
        for task in Path(f"/proc/{parent.pid}/task").iterdir()
        for pid in (task / "children").read_text().split()
    ]
    assert len(workers) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while (
        any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in workers)
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    time.sleep(0.5)
    stderr.seek(0)
    printed = stderr.read()
    assert printed == "", printed
    assert not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in workers)
    assert partial_path(tmp_path / "out.h5").exists()  # and the data resumes, as tested above


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
