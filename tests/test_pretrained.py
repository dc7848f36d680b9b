"""Named pretrained models: resolution through automod's cache, torch.hub's cache and a download, the offline
error, `find_checkpoint` by name, and `automod models`. No test touches the network: the downloader is replaced
(or, for the real one, reads a file:// address) and the authors' converter is a fake that writes a tiny model."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from pathlib import Path
from urllib.error import URLError

import pytest
from PIL import Image

import automod_cli
from automod_cli import pretrained
from automod_cli.checkpoint import read_meta, save_model
from automod_cli.cli import main
from automod_cli.config import ModelConfig
from automod_cli.errors import AutomodError
from automod_cli.locate import find_checkpoint
from automod_cli.models import Automodulator

NAME = "ffhq256"
URL = "https://zenodo.org/record/4298894/files/34740000_state.pth"
REAL_DOWNLOAD = pretrained.download  # kept before any test replaces it; only ever given file:// addresses


class FakeAuthors:
    """Stands in for `automod_cli.authors`: `import_checkpoint` writes a tiny automod checkpoint and counts calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, Path]] = []

    def import_checkpoint(
        self, src: Path, out: Path, force: bool = False, dataset: str | None = None
    ) -> Path:
        assert Path(src).is_file() and dataset == pretrained.dataset_of_file(Path(src).name)
        if Path(out).exists() and not force:  # as the real converter
            raise AutomodError(f"'{out}' already exists.")
        self.calls.append((Path(src), Path(out)))
        config = ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8))
        stat, digest = Path(src).stat(), hashlib.sha256(Path(src).read_bytes()).hexdigest()
        source = {
            "format": "authors",
            "file": Path(src).name,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": digest,
        }
        save_model(
            out, Automodulator(config, level=1), extra_meta={"converted_from": str(src), "source": source}
        )
        return Path(out)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Empty caches under tmp_path, a fake converter, a downloader that fails the test if it is ever called."""
    monkeypatch.setenv("AUTOMOD_HOME", str(tmp_path / "automod"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("AUTOMOD_OFFLINE", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    fake = FakeAuthors()
    module = types.ModuleType("automod_cli.authors")
    module.import_checkpoint = fake.import_checkpoint
    module.file_problem = lambda path: None
    monkeypatch.setitem(sys.modules, "automod_cli.authors", module)
    monkeypatch.setattr(automod_cli, "authors", module, raising=False)

    def no_network(url, dst):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(pretrained, "download", no_network)
    return types.SimpleNamespace(
        tmp=tmp_path,
        fake=fake,
        converted=tmp_path / "automod" / "models" / f"{NAME}.safetensors",
        authors=tmp_path / "torch" / "hub" / "checkpoints" / "34740000_state.pth",
    )


def _put_authors_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stands in for the authors' .pth")


def test_the_five_names_and_their_files():
    assert list(pretrained.MODELS) == ["ffhq256", "ffhq512", "celebahq256", "lsuncars256", "lsunbedrooms256"]
    numbers = {name: m.number for name, m in pretrained.MODELS.items()}
    assert numbers == {
        "ffhq512": 42420000,
        "ffhq256": 34740000,
        "celebahq256": 31877148,
        "lsuncars256": 32057140,
        "lsunbedrooms256": 27574284,
    }
    assert pretrained.MODELS[NAME].url == URL
    assert pretrained.MODELS["ffhq512"].resolution == 512
    with pytest.raises(AutomodError, match="not a pretrained model"):
        pretrained.get("ffhq1024")


def test_cache_locations_follow_the_environment(env):
    assert pretrained.converted_path(NAME) == env.converted
    assert pretrained.authors_path(NAME) == env.authors


def test_converted_file_in_automod_cache_is_used_directly(env):
    env.fake.import_checkpoint(Path(__file__), env.converted)
    env.fake.calls.clear()
    assert pretrained.resolve(NAME) == env.converted
    assert env.fake.calls == []


def test_authors_file_in_torch_cache_is_converted_once(env):
    _put_authors_file(env.authors)
    assert pretrained.resolve(NAME) == env.converted
    assert env.fake.calls == [(env.authors, env.converted)]
    assert read_meta(env.converted)["converted_from"] == str(env.authors)
    assert pretrained.resolve(NAME) == env.converted  # the second time the converted file is there
    assert len(env.fake.calls) == 1


def test_neither_present_downloads_then_converts(env, monkeypatch):
    fetched = []

    def fake_download(url, dst):
        fetched.append((url, Path(dst)))
        _put_authors_file(Path(dst))

    monkeypatch.setattr(pretrained, "download", fake_download)
    assert pretrained.resolve(NAME) == env.converted
    assert fetched == [(URL, env.authors)]
    assert env.fake.calls == [(env.authors, env.converted)]


def test_failed_download_is_one_line_naming_the_address_and_where_to_put_it(env, monkeypatch):
    def offline_download(url, dst):
        raise URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(pretrained, "download", offline_download)
    with pytest.raises(AutomodError) as caught:
        pretrained.resolve(NAME)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert URL in message and str(env.authors) in message and "34740000_state.pth" in message
    assert "name resolution" in message
    assert env.fake.calls == [] and not env.authors.exists()


def test_offline_variable_skips_the_download(env, monkeypatch):
    monkeypatch.setenv("AUTOMOD_OFFLINE", "1")  # the env fixture's downloader would fail the test if called
    with pytest.raises(AutomodError) as caught:
        pretrained.resolve(NAME)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert "AUTOMOD_OFFLINE" in message and URL in message and str(env.authors) in message


def test_offline_variable_still_uses_the_caches(env, monkeypatch):
    monkeypatch.setenv("AUTOMOD_OFFLINE", "1")
    _put_authors_file(env.authors)
    assert pretrained.resolve(NAME) == env.converted


def test_real_downloader_writes_through_a_temporary_file(tmp_path):
    source = tmp_path / "remote.pth"
    source.write_bytes(bytes(range(256)) * 100)
    dst = tmp_path / "hub" / "checkpoints" / "1_state.pth"
    REAL_DOWNLOAD(source.as_uri(), dst)  # file:// address: the real code path without a network
    assert dst.read_bytes() == source.read_bytes()
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temporary file left


def test_real_downloader_failure_leaves_nothing_and_reads_as_one_line(env, monkeypatch):
    monkeypatch.setattr(pretrained, "URL", (env.tmp / "nowhere").as_uri() + "/{number}_state.pth")
    with pytest.raises(AutomodError) as caught:
        pretrained.resolve(NAME, downloader=REAL_DOWNLOAD)
    message = str(caught.value)
    assert (
        len(message.splitlines()) == 1
        and str(env.authors) in message
        and "nowhere/34740000_state.pth" in message
    )
    assert not env.authors.parent.exists() or list(env.authors.parent.iterdir()) == []


def test_find_checkpoint_resolves_a_name(env):
    _put_authors_file(env.authors)
    assert find_checkpoint(Path(NAME)) == env.converted
    assert find_checkpoint(NAME) == env.converted


def test_a_local_folder_named_like_a_model_wins(env):
    run = Path(NAME) / "checkpoints"
    run.mkdir(parents=True)
    save_model(
        run / "ckpt-000000000100.safetensors",
        Automodulator(ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8)), level=1),
    )
    assert find_checkpoint(Path(NAME)) == run / "ckpt-000000000100.safetensors"
    assert env.fake.calls == []


def test_a_local_file_named_like_a_model_wins(env):
    Path(NAME).write_bytes(b"local")
    assert find_checkpoint(Path(NAME)) == Path(NAME)


def test_info_takes_a_name(env, capsys):
    _put_authors_file(env.authors)
    assert main(["info", NAME, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # conversion notes went to stderr, stdout stays JSON
    assert report["checkpoint"] == str(env.converted) and report["resolution"] == 8


def test_info_offline_name_is_one_red_line(env, monkeypatch, capsys):
    monkeypatch.setenv("AUTOMOD_OFFLINE", "1")
    assert main(["info", NAME]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and URL in err


def test_models_command_shows_present_and_missing(env, capsys):
    _put_authors_file(env.authors)  # ffhq256: the authors' file only
    celeba = pretrained.converted_path("celebahq256")
    env.fake.import_checkpoint(Path(__file__), celeba)  # celebahq256: converted
    assert main(["models", "--json"]) == 0
    states = {e["name"]: (e["state"], e["path"]) for e in json.loads(capsys.readouterr().out)}
    assert states["ffhq256"] == (pretrained.AUTHORS, str(env.authors))
    assert states["celebahq256"] == (pretrained.CONVERTED, str(celeba))
    assert states["ffhq512"][0] == pretrained.MISSING
    assert states["ffhq512"][1].endswith("42420000_state.pth")

    assert main(["models"]) == 0  # piped (not a terminal): one line per model, its path whole and last
    out = capsys.readouterr().out
    rows = {
        line.split("  ")[0]: line for line in out.splitlines() if line.split("  ")[0] in pretrained.MODELS
    }
    assert set(rows) == set(pretrained.MODELS)
    assert rows["ffhq256"].endswith(f"  {env.authors}") and rows["celebahq256"].endswith(f"  {celeba}")
    assert rows["ffhq512"].endswith(str(pretrained.authors_path("ffhq512")))
    assert "authors' file" in rows["ffhq256"] and "converted" in rows["celebahq256"]
    assert all("missing" in rows[name] for name in ("ffhq512", "lsuncars256", "lsunbedrooms256"))
    assert "missing" not in rows["ffhq256"] + rows["celebahq256"]
    assert "downloaded" in out


def test_image_commands_take_a_name_as_model(env):
    _put_authors_file(env.authors)
    Image.new("RGB", (20, 12), (200, 30, 90)).save("face.png")
    assert main(["reconstruct", "face.png", "--model", NAME, "--device", "cpu", "-o", "recon.png"]) == 0
    assert Path("recon.png").is_file() and env.fake.calls == [(env.authors, env.converted)]


def test_an_unreadable_converted_file_is_converted_again(env):
    env.converted.parent.mkdir(parents=True)
    env.converted.write_bytes(b"truncated")
    _put_authors_file(env.authors)
    assert pretrained.resolve(NAME) == env.converted
    assert env.fake.calls == [(env.authors, env.converted)] and read_meta(env.converted)["converted_from"]


# --- the real converter on the authors' fixture files (tests/data/authors) -------------------------------------

AUTHORS_DATA = Path(__file__).parent / "data" / "authors"


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty caches under tmp_path, offline, the real converter; the torch cache's checkpoints folder made."""
    monkeypatch.setenv("AUTOMOD_HOME", str(tmp_path / "automod"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("AUTOMOD_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return types.SimpleNamespace(
        folder=folder,
        converted=tmp_path / "automod" / "models" / f"{NAME}.safetensors",
        authors=folder / "34740000_state.pth",
    )


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_authors_file_given_as_a_model_names_the_import_command(caches, capsys):
    source = AUTHORS_DATA / "official-small" / "checkpoint.pth"
    for args in (
        ["info", str(source)],
        ["train", "--init", str(source), "--kimg", "1", "--out", "ft"],
        ["sample", "--model", str(source), "--n", "1", "-o", "s"],
    ):
        assert main(args) == 2
        err = _one_error_line(capsys)
        assert f"automod import {source} --out {source.with_suffix('.safetensors')}" in err, err
        assert "safetensors:" not in err and "header too large" not in err
    assert not Path("ft").exists() and not Path("s").exists()


def test_a_truncated_authors_file_in_the_cache_is_named_as_damaged(caches, capsys):
    whole = (AUTHORS_DATA / "official-default" / "checkpoint.pth").read_bytes()
    partial = caches.folder / "42420000_state.pth"
    partial.write_bytes(whole[:500_000])
    assert main(["info", "ffhq512"]) == 2
    err = _one_error_line(capsys)
    assert "damaged or incomplete" in err and "500,000 bytes" in err and str(partial) in err
    assert pretrained.MODELS["ffhq512"].url in err and "unpickl" not in err
    assert partial.read_bytes() == whole[:500_000]  # left for the user to delete


def test_import_names_a_file_that_is_no_checkpoint_or_a_damaged_one(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["import", str(tmp_path / "a.png"), "--out", str(tmp_path / "x.safetensors")]) == 2
    err = _one_error_line(capsys)
    assert "is not a PyTorch checkpoint" in err and "unpickl" not in err
    whole = (AUTHORS_DATA / "official-small" / "checkpoint.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[: len(whole) // 2])
    assert main(["import", str(tmp_path / "cut.pth"), "--out", str(tmp_path / "x.safetensors")]) == 2
    err = _one_error_line(capsys)
    assert "damaged or incomplete" in err and f"{len(whole) // 2:,} bytes" in err and "again" in err
    assert not (tmp_path / "x.safetensors").exists()


def test_a_replaced_authors_file_is_converted_again(caches, capsys):
    default, small = (
        AUTHORS_DATA / name / "checkpoint.pth" for name in ("official-default", "official-small")
    )
    caches.authors.write_bytes(default.read_bytes())
    assert pretrained.resolve(NAME) == caches.converted
    record = read_meta(caches.converted)["source"]
    assert record["sha256"] == hashlib.sha256(default.read_bytes()).hexdigest()
    assert record["size"] == default.stat().st_size
    assert find_checkpoint(Path(NAME)) == caches.converted and read_meta(caches.converted)["level"] == 4
    written = caches.converted.stat().st_mtime_ns
    # the same bytes copied again (a new time): the SHA-256 matches, nothing is converted
    caches.authors.write_bytes(default.read_bytes())
    os.utime(caches.authors, ns=(1, 1))
    assert pretrained.resolve(NAME) == caches.converted and caches.converted.stat().st_mtime_ns == written
    capsys.readouterr()
    # another file under the same name: converted again, and every command then uses it
    caches.authors.write_bytes(small.read_bytes())
    assert main(["info", NAME, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["resolution"] == 32 and "converting it again" in captured.err
    assert read_meta(caches.converted)["source"]["sha256"] == hashlib.sha256(small.read_bytes()).hexdigest()


def test_eval_weights_shows_the_authors_file_with_its_own_hash(caches, capsys):
    source = AUTHORS_DATA / "official-default" / "checkpoint.pth"
    caches.authors.write_bytes(source.read_bytes())
    pretrained.resolve(NAME)  # converted: both files are here now
    assert main(["eval", "weights", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    ffhq = entries["34740000_state.pth"]
    assert (
        ffhq["path"] == str(caches.authors)
        and ffhq["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    )
    caches.authors.unlink()  # only the converted file: listed under its own name, with its own hash
    assert main(["eval", "weights", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert "34740000_state.pth" not in entries
    converted = entries[f"{NAME}.safetensors"]
    assert converted["path"] == str(caches.converted)
    assert converted["sha256"] == hashlib.sha256(caches.converted.read_bytes()).hexdigest()


def test_info_takes_model_as_an_option_and_words_where_the_dataset_comes_from(caches, capsys):
    caches.authors.write_bytes((AUTHORS_DATA / "official-default" / "checkpoint.pth").read_bytes())
    assert main(["info", "--model", NAME, "--json"]) == 0
    trained_on = json.loads(capsys.readouterr().out)["trained_on"]
    assert trained_on["origin"] == "authors' file 34740000_state.pth (imported)"
    assert main(["info", "-m", NAME]) == 0
    out = capsys.readouterr().out
    assert "FFHQ faces (aligned) at 64²" in out and "the imported" not in out and "authors' file" in out
    assert main(["info", "runs/x", "--model", NAME]) == 2
    assert "give the model once" in _one_error_line(capsys)
