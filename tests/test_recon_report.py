"""Reconstruction errors of `automod reconstruct` and `automod mix`: MSE and SSIM per image against an independent
computation from the written figures (numpy, scikit-image), LPIPS only when its weights are here (against a
re-implementation from torchvision's AlexNet and lpips' linear layers), the CSV beside the figure (never silently
replaced), the table, and folders in batches with progress and a rate."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from skimage.metrics import structural_similarity
from tiny_models import tiny_model

from automod_cli import ops
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.commands.ops_report import errors_table
from automod_cli.ops.report import ErrorReport, image_errors
from data_prep.builtin import generate

R = 32
CELL, PAD = 3 * R, 2  # grids enlarge 32² cells ×3 with 2 px borders


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """The tiny model, five built-in pictures in pics/, and no LPIPS weights anywhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("AUTOMOD_ALEXNET_WEIGHTS", raising=False)
    save_model(tmp_path / "m.safetensors", tiny_model())
    (tmp_path / "pics").mkdir()
    for i, picture in enumerate(generate(5, seed=4, size=48)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / "pics" / f"{i}.png")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--model", "m.safetensors"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cells(path: Path, rows: int, columns: int) -> np.ndarray:
    """The grid cells of a captioned figure shrunk back to 32² (every third pixel), uint8 (rows, columns, R, R, 3)."""
    image = np.asarray(Image.open(path).convert("RGB"))
    height = rows * (CELL + PAD) + PAD
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


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def reference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """MSE and SSIM of two uint8 HWC pictures on [0, 1], with numpy and scikit-image's standard-setting SSIM."""
    x, y = a.astype(np.float64) / 255, b.astype(np.float64) / 255
    ssim = structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=1.0
    )
    return float(((x - y) ** 2).mean()), float(ssim)


def test_reconstruct_reports_each_images_error(work, capsys):
    code, out, err = run(capsys, "reconstruct", "pics/0.png", "pics/1.png", "pics/2.png")
    assert code == 0 and err == ""
    rows = read_csv(Path("reconstructions.png.errors.csv"))
    assert [row["file"] for row in rows] == ["pics/0.png", "pics/1.png", "pics/2.png"]
    assert list(rows[0]) == ["index", "file", "mse", "ssim"]  # no LPIPS weights here: no LPIPS column
    pairs = cells(Path("reconstructions.png"), 1, 6)[0]
    for i, row in enumerate(rows):
        mse, ssim = reference(pairs[2 * i], pairs[2 * i + 1])
        assert float(row["mse"]) == pytest.approx(mse, rel=1e-6) and float(row["ssim"]) == pytest.approx(
            ssim, rel=1e-6
        )
    assert "wrote reconstructions.png.errors.csv" in out and "LPIPS left out" in out and "alexnet" in out
    for row in rows:
        assert row["file"] in out and f"{float(row['mse']):.4f}" in out
    mean = np.mean([float(row["mse"]) for row in rows])
    assert "mean" in out and f"{mean:.4f}" in out


def test_the_errors_file_is_never_silently_replaced(work, capsys):
    Path("reconstructions.png.errors.csv").write_text("mine")
    code, _, err = run(capsys, "reconstruct", "pics/0.png")
    assert (
        code == 2
        and "reconstructions.png.errors.csv" in err
        and "--force" in err
        and len(err.splitlines()) == 1
    )
    assert (
        not Path("reconstructions.png").exists()
        and Path("reconstructions.png.errors.csv").read_text() == "mine"
    )
    assert run(capsys, "reconstruct", "pics/0.png", "--force")[0] == 0
    assert len(read_csv(Path("reconstructions.png.errors.csv"))) == 1
    # another format of the same name keeps its own errors file
    assert run(capsys, "reconstruct", "pics/0.png", "-o", "reconstructions.webp")[0] == 0
    assert Path("reconstructions.webp.errors.csv").is_file()


def test_mix_reports_the_reconstructions_its_grid_shows(work, capsys):
    code, out, _ = run(
        capsys, "mix", "--rows", "pics/0.png", "--rows", "pics/1.png", "--cols", "pics/2.png", "-o", "g.png"
    )
    assert code == 0 and "wrote g.png.errors.csv" in out
    rows = read_csv(Path("g.png.errors.csv"))
    assert [(row["role"], row["file"]) for row in rows] == [
        ("A", "pics/0.png"),
        ("A", "pics/1.png"),
        ("B", "pics/2.png"),
    ]
    figure = cells(Path("g.png"), 3, 2)
    inputs = ops.load_images([Path(f"pics/{i}.png") for i in range(3)], R)
    shown = [figure[1, 0], figure[2, 0], figure[0, 1]]  # left column: A; top row: B
    for row, original, recon in zip(rows, inputs, shown):
        as_file = ((original.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
        mse, ssim = reference(as_file, recon)
        assert float(row["mse"]) == pytest.approx(mse, rel=1e-6) and float(row["ssim"]) == pytest.approx(
            ssim, rel=1e-6
        )
    code, _, _ = run(capsys, "mix", "pics/0.png", "pics/2.png")
    assert code == 0 and [row["file"] for row in read_csv(Path("mix-grid.png.errors.csv"))] == [
        "pics/0.png",
        "pics/2.png",
    ]


def test_errors_name_files_as_given_with_their_folder(work, capsys):
    for folder in ("rowsA", "colsB"):
        Path(folder).mkdir()
        shutil.copy("pics/0.png", f"{folder}/x.png")
    code, _, _ = run(capsys, "mix", "--rows", "rowsA/", "--cols", "colsB", "-o", "g.png")
    assert code == 0 and [row["file"] for row in read_csv(Path("g.png.errors.csv"))] == [
        "rowsA/x.png",
        "colsB/x.png",
    ]
    code, _, _ = run(capsys, "reconstruct", "rowsA", "colsB/x.png", "-o", "r.png")
    assert code == 0 and [row["file"] for row in read_csv(Path("r.png.errors.csv"))] == [
        "rowsA/x.png",
        "colsB/x.png",
    ]


def test_folders_go_in_batches_with_progress_and_a_rate(work, capsys):
    code, out, _ = run(capsys, "reconstruct", "pics", "--batch", "2", "-o", "small.png")
    assert code == 0 and "reconstructed 5 images in" in out and "images/s)" in out
    lines = out.strip().splitlines()  # the timing ends the output, after the files written and the table
    assert lines[-1].startswith("reconstructed 5 images in") and lines[-2] == "wrote small.png.errors.csv", (
        out
    )
    assert run(capsys, "reconstruct", "pics", "-o", "one.png")[0] == 0
    small, one = read_csv(Path("small.png.errors.csv")), read_csv(Path("one.png.errors.csv"))
    assert [r["file"] for r in small] == [f"pics/{i}.png" for i in range(5)]
    assert all(abs(float(a["mse"]) - float(b["mse"])) < 1e-4 for a, b in zip(small, one))
    seen = []
    model = ops.load_model(Path("m.safetensors"))
    inputs = ops.check_inputs([Path("pics")])
    done = ops.reconstruct_files(model, inputs, batch_size=2, progress=lambda *step: seen.append(step))
    assert seen == [("reconstructing", 2, 5), ("reconstructing", 4, 5), ("reconstructing", 5, 5)]
    assert done.seconds > 0 and done.images_per_second > 0 and len(done.used.paths) == 5
    # the same reconstructions as one batch, up to float rounding between batch sizes
    assert torch.allclose(done.reconstructions, ops.reconstruct(model, done.images), atol=1e-4)


def lpips_reference(x: torch.Tensor, y: torch.Tensor, alexnet_state: dict) -> torch.Tensor:
    """LPIPS v0.1 (Zhang et al. 2018) written out: torchvision's AlexNet ReLU outputs 1–5 of inputs scaled by the
    paper's constants, unit-normalised over channels, squared differences weighted by lpips' linear layers, averaged
    over positions and summed over layers."""
    net = torchvision.models.alexnet()
    net.load_state_dict(alexnet_state)
    linear = torch.load(
        Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu", weights_only=True
    )
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def features(images: torch.Tensor) -> list[torch.Tensor]:
        h, out = (images - shift) / scale, []
        for i, layer in enumerate(net.features[:12]):
            h = layer(h)
            if i in (1, 4, 7, 9, 11):
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    with torch.no_grad():
        total = 0
        for k, (a, b) in enumerate(zip(features(x), features(y))):
            weight = linear[f"lin{k}.model.1.weight"]
            total = total + ((a - b) ** 2 * weight.view(1, -1, 1, 1)).sum(1).mean((1, 2))
    return total


def test_lpips_is_reported_when_its_weights_are_here(work, capsys, monkeypatch):
    pytest.importorskip("lpips")

    torch.manual_seed(3)
    state = torchvision.models.alexnet().state_dict()  # random weights in the file's layout: no download
    torch.save(state, "alexnet.pth")
    monkeypatch.setenv("AUTOMOD_ALEXNET_WEIGHTS", str(Path("alexnet.pth").resolve()))
    code, out, _ = run(capsys, "reconstruct", "pics/0.png", "pics/3.png")
    assert code == 0 and "LPIPS left out" not in out and "LPIPS" in out
    rows = read_csv(Path("reconstructions.png.errors.csv"))
    assert list(rows[0]) == ["index", "file", "mse", "ssim", "lpips"]
    pairs = (
        torch.from_numpy(cells(Path("reconstructions.png"), 1, 4)[0]).permute(0, 3, 1, 2).float() / 127.5 - 1
    )
    expected = lpips_reference(pairs[0::2], pairs[1::2], state)
    assert [float(row["lpips"]) for row in rows] == pytest.approx(expected.tolist(), rel=1e-4)


def test_ssim_is_left_out_below_its_window_and_long_reports_show_the_worst():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    errors = image_errors(x, x.flip(0))
    assert errors["ssim"] is None and errors["lpips"] is None and errors["mse"].shape == (2,)
    report = ErrorReport()
    report.add([f"{i}.png" for i in range(25)], {"mse": torch.arange(25.0) / 100, "ssim": None})
    assert report.metrics == ["mse"] and report.worst(3) == [24, 23, 22]
    table = errors_table(report, "errors")
    assert table.row_count == 11 and "10 worst of 25" in table.caption  # ten rows and the mean
