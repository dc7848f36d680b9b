"""The multi-resolution file: pyramid levels, checksum, no overwrite, atomic writes, and the reader."""

from __future__ import annotations

import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from automod_cli.errors import AutomodError
from automod_cli.training.data import FirstImages
from data_prep import hdf5
from data_prep.hdf5 import H5Images, H5Writer, partial_path, pyramid, read_info, resolutions_up_to, verify


def random_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def write(path, images: np.ndarray, force: bool = False, fingerprint: str = "test"):
    writer = H5Writer(
        path,
        images.shape[1],
        {"source": "test", "source_path": "-", "alignment": "none", "split": "all"},
        fingerprint,
        force=force,
    )
    for image in images:
        writer.add(pyramid(image))
    writer.checkpoint(len(images))
    return writer.commit()


def box_reference(image: np.ndarray, resolution: int) -> np.ndarray:
    """Area downscale of the full image straight to `resolution`, in float64, rounded half up."""
    pixels = torch.from_numpy(image.transpose(2, 0, 1)).double()[None]
    factor = image.shape[0] // resolution
    return torch.floor(F.avg_pool2d(pixels, factor) + 0.5)[0].to(torch.uint8).numpy()


def test_resolution_list_and_bad_resolution():
    assert resolutions_up_to(64) == [4, 8, 16, 32, 64]
    for bad in (2, 48, 2048):
        with pytest.raises(AutomodError, match="power of two"):
            resolutions_up_to(bad)


def test_every_level_is_the_area_downscale_of_the_full_image(tmp_path):
    images = random_images(3, 64)
    path = write(tmp_path / "x.h5", images)
    with h5py.File(path) as file:
        assert sorted(file["levels"], key=int) == ["4", "8", "16", "32", "64"]
        for r in (4, 8, 16, 32, 64):
            level = file[f"levels/{r}"]
            assert level.shape == (3, 3, r, r) and level.dtype == np.uint8 and level.chunks == (1, 3, r, r)
            for i, image in enumerate(images):
                np.testing.assert_array_equal(level[i], box_reference(image, r))
                # Pillow's own box reduction agrees up to its rounding.
                reduced = np.asarray(Image.fromarray(image).reduce(64 // r)).transpose(2, 0, 1)
                assert np.abs(reduced.astype(int) - level[i]).max() <= 1


def test_attributes_and_checksum_track_content(tmp_path):
    images = random_images(4, 16)
    first = read_info(write(tmp_path / "a.h5", images))
    again = read_info(write(tmp_path / "b.h5", images.copy()))
    changed = images.copy()
    changed[2, 5, 5, 0] ^= 1
    other = read_info(write(tmp_path / "c.h5", changed))
    assert (first.count, first.resolutions, first.source, first.split) == (4, (4, 8, 16), "test", "all")
    assert first.checksum == again.checksum != other.checksum
    assert len(first.checksum) == 64


def test_verify_finds_the_changed_image(tmp_path):
    path = write(tmp_path / "a.h5", random_images(5, 8))
    assert verify(path) == []
    with h5py.File(path, "r+") as file:
        file["levels/4"][3, 0, 0, 0] ^= 255
    assert verify(path) == [3]


def test_existing_output_is_replaced_only_with_force(tmp_path):
    path = write(tmp_path / "a.h5", random_images(2, 8))
    with pytest.raises(AutomodError, match="--force"):
        write(path, random_images(3, 8))
    assert read_info(path).count == 2
    write(path, random_images(3, 8), force=True)
    assert read_info(path).count == 3


def test_interrupted_write_leaves_nothing_under_the_final_name_and_resumes(tmp_path):
    out = tmp_path / "a.h5"
    images = random_images(6, 8)
    attrs = {"source": "test", "source_path": "-", "alignment": "none", "split": "all"}
    writer = H5Writer(out, 8, attrs, "inputs-v1")
    for image in images[:3]:
        writer.add(pyramid(image))
    writer.checkpoint(3)
    writer.add(pyramid(images[3]))  # written after the last checkpoint: redone on resume
    writer.close()
    assert not out.exists() and partial_path(out).exists()
    resumed = H5Writer(out, 8, attrs, "inputs-v1")
    assert (resumed.inputs_done, resumed.written) == (3, 3)
    for image in images[3:]:
        resumed.add(pyramid(image))
    resumed.checkpoint(6)
    resumed.commit()
    assert not partial_path(out).exists()
    assert read_info(out).checksum == read_info(write(tmp_path / "ref.h5", images)).checksum
    # A partial file from other inputs is discarded, not resumed.
    H5Writer(tmp_path / "b.h5", 8, attrs, "inputs-v1").close()
    assert H5Writer(tmp_path / "b.h5", 8, attrs, "inputs-v2").inputs_done == 0


def open_file_ids() -> int:
    return h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)


def test_reader_opens_lazily_and_scales_to_minus_one_one(tmp_path):
    images = random_images(4, 16)
    path = write(tmp_path / "a.h5", images)
    before = open_file_ids()
    dataset = H5Images(path, 8)
    assert open_file_ids() == before and dataset._file is None
    assert len(dataset) == 4
    sample = dataset[1]
    assert sample.shape == (3, 8, 8) and sample.dtype == torch.float32
    assert -1.0 <= sample.min() and sample.max() <= 1.0
    expected = torch.from_numpy(box_reference(images[1], 8)).float() / 127.5 - 1.0
    torch.testing.assert_close(sample, expected)
    dataset.set_resolution(16)
    assert dataset[0].shape == (3, 16, 16)
    assert pickle.loads(pickle.dumps(dataset))._file is None
    dataset.close()


def test_reader_mirror_flips_about_half_the_time(tmp_path):
    path = write(tmp_path / "a.h5", random_images(1, 8))
    plain = H5Images(path, 8)[0]
    mirrored = H5Images(path, 8, mirror=True)
    outcomes = []
    for _ in range(200):
        sample = mirrored[0]
        flipped = torch.equal(sample, plain.flip(-1))
        assert flipped or torch.equal(sample, plain)
        outcomes.append(flipped)
    assert 60 < sum(outcomes) < 140


def _recompressed(path, out, resolution: int):
    """A copy of `path` whose level `resolution` is gzip-compressed in chunks of 4 images: a layout the direct
    chunk read must not be used on."""
    shutil.copy(path, out)
    with h5py.File(out, "r+") as file:
        pixels = file[f"levels/{resolution}"][...]
        del file[f"levels/{resolution}"]
        file.create_dataset(
            f"levels/{resolution}", data=pixels, chunks=(4, 3, resolution, resolution), compression="gzip"
        )
    return out


@pytest.mark.parametrize(
    "layout, convert_bytes", [("as written", 1 << 20), ("as written", 2 * 768), ("compressed", 1 << 20)]
)
def test_batch_reads_return_the_asked_images_in_the_asked_order(tmp_path, monkeypatch, layout, convert_bytes):
    monkeypatch.setattr(
        hdf5, "_CONVERT_BYTES", convert_bytes
    )  # 2 · 768 bytes: 8² images converted two at a time
    images = random_images(10, 16, seed=3)
    path = write(tmp_path / "a.h5", images)
    if layout == "compressed":
        path = _recompressed(path, tmp_path / "b.h5", 8)
    dataset = H5Images(path, 8)
    indices = [7, 2, 2, 9, 0, -1]  # any order, repeats and negative indices, as a sampler may ask
    batch = dataset.__getitems__(indices)
    expected = [torch.from_numpy(box_reference(images[i], 8)).float() / 127.5 - 1.0 for i in indices]
    for got, want in zip(batch, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert dataset._direct[8] == (layout == "as written")
    torch.testing.assert_close(
        dataset[4], torch.from_numpy(box_reference(images[4], 8)).float() / 127.5 - 1.0
    )  # one image
    with pytest.raises(IndexError):
        dataset.__getitems__([1, 10])


def test_a_data_limit_reads_batches_through_the_file_and_keeps_its_bound(tmp_path):
    images = random_images(10, 8, seed=4)
    limited = FirstImages(H5Images(write(tmp_path / "a.h5", images), 8), 6)
    batch = torch.stack(limited.__getitems__([5, 0]))
    expected = (
        torch.from_numpy(images[[5, 0]]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    )  # HWC photos, CHW tensors
    torch.testing.assert_close(batch, expected, rtol=0, atol=0)
    with pytest.raises(IndexError):
        limited.__getitems__([0, 6])
    with pytest.raises(IndexError):
        limited[6]


def test_reader_works_in_dataloader_workers_after_use_in_the_parent(tmp_path):
    images = random_images(12, 8)
    path = write(tmp_path / "a.h5", images)
    dataset = H5Images(path, 4)
    first = dataset[0]  # the parent now holds a handle; forked workers must open their own
    loader = DataLoader(dataset, batch_size=3, num_workers=2)
    batches = torch.cat(list(loader))
    assert batches.shape == (12, 3, 4, 4)
    torch.testing.assert_close(batches[0], first)
    expected = torch.stack([torch.from_numpy(box_reference(im, 4)).float() / 127.5 - 1 for im in images])
    torch.testing.assert_close(batches, expected)


def test_reader_errors_are_clear(tmp_path):
    path = write(tmp_path / "a.h5", random_images(2, 16))
    with pytest.raises(AutomodError, match=r"no 32x32 images \(it has 4, 8, 16\)"):
        H5Images(path, 32)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as file:
        file["x"] = np.zeros(3)
    with pytest.raises(AutomodError, match="not an automod image file"):
        H5Images(foreign, 4)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(AutomodError, match="not an HDF5 file"):
        read_info(text)
    with pytest.raises(AutomodError, match="does not exist"):
        H5Images(tmp_path / "missing.h5", 4)
    unfinished = tmp_path / "unfinished.h5"
    H5Writer(
        unfinished, 8, {"source": "test", "source_path": "-", "alignment": "none", "split": "all"}, "x"
    ).close()
    with pytest.raises(AutomodError, match="unfinished prep file"):
        read_info(partial_path(unfinished))


def test_a_truncated_file_is_called_damaged_not_foreign(tmp_path):
    path = write(tmp_path / "a.h5", random_images(6, 16))
    whole = path.read_bytes()
    for cut in (len(whole) // 2, len(whole) - 100):
        cut_short = tmp_path / f"cut{cut}.h5"
        cut_short.write_bytes(whole[:cut])
        with pytest.raises(AutomodError, match="is a damaged or truncated HDF5 file") as error:
            verify(cut_short)
        assert "\n" not in str(error.value) and "not an HDF5 file" not in str(error.value)
