"""`automod serve` in process (Starlette's test client): every view gives the pixels of the command it prints, and
every bad request (no token, a foreign Host, bad uploads, unknown ids, bad values) is a 4xx with one line while the
server goes on serving."""

from __future__ import annotations

import io
import shlex
import socket
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import tiny_model

pytest.importorskip("starlette", reason="automod serve's web framework: pip install 'automod[serve]'")
from starlette.testclient import TestClient  # noqa: E402

from automod_cli import ops  # noqa: E402
from automod_cli.checkpoint import save_model  # noqa: E402
from automod_cli.cli import main  # noqa: E402
from automod_cli.commands.serve import address, model_argument
from automod_cli.config import ModelConfig
from automod_cli.images import to_uint8  # noqa: E402
from automod_cli.models.lia import LiaConfig, LiaModel
from automod_cli.serve import guard  # noqa: E402
from automod_cli.serve import studio as studio_module
from automod_cli.serve.app import create_app  # noqa: E402
from automod_cli.serve.studio import Studio  # noqa: E402
from data_prep import align
from data_prep.builtin import generate  # noqa: E402

TOKEN = "test-token"
HEADERS = {"X-Automod-Token": TOKEN}


def png_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A folder with the tiny model and three built-in pictures a.png, b.png, c.png (64², as a user's files)."""
    monkeypatch.chdir(tmp_path)
    save_model(tmp_path / "m.safetensors", tiny_model())
    save_model(tmp_path / "classic.safetensors", tiny_model("classic"))
    for name, picture in zip("abc", generate(3, seed=5)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / f"{name}.png")
    return tmp_path


def open_studio(work: Path, model: str = "m.safetensors") -> Studio:
    return Studio(ops.open_model(work / model), model, folder=work)


@pytest.fixture
def client(work):
    studio = open_studio(work)
    with TestClient(create_app(studio, TOKEN), base_url="http://127.0.0.1:8765") as test_client:
        test_client.studio = studio
        yield test_client


def add(client, name: str, data: bytes | None = None):
    data = Path(name).read_bytes() if data is None else data
    return client.post(f"/api/photos?name={name}", content=data, headers=HEADERS)


def view(client, kind: str, **body):
    return client.post(f"/api/view/{kind}", json=body, headers=HEADERS)


def run_command(line: str, output: str) -> np.ndarray:
    """Run the page's command line with the CLI (as a user would paste it) and read the image it wrote."""
    words = shlex.split(line)
    assert words[0] == "automod"
    assert main(words[1:] + ["--force"]) == 0
    return np.asarray(Image.open(output).convert("RGB"))


def same_as_command(response, output: str) -> None:
    """The view's PNG holds exactly the pixels its command writes."""
    assert response.status_code == 200, response.text

    page = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    written = run_command(unquote(response.headers["x-automod-command"]), output)
    assert page.shape == written.shape and (page == written).all()


def test_every_view_gives_the_pixels_of_the_command_it_shows(client, work):
    ids = [add(client, f"{name}.png").json()["photo"]["id"] for name in "abc"]
    a, b, c = ids
    same_as_command(view(client, "mix", a=a, b=b, scales="coarse"), "mix.png")
    same_as_command(view(client, "mix", a=b, b=c, scales="1:3"), "mix.png")
    same_as_command(view(client, "grid", rows=[a, b], cols=[c, a, b], scales="mid"), "mix-grid.png")
    same_as_command(view(client, "reconstruct", photo=c), "reconstructions.png")
    same_as_command(
        view(client, "edit", photo=c, direction={"pos": [a, b], "neg": [c]}, strength=1.5, scales="mid"),
        "edit.png",
    )
    same_as_command(
        view(client, "edit", photo=a, direction={"pos": [b], "neg": [c]}, strength=0.1234567891), "edit.png"
    )  # more digits than a caption shows: the command carries them all
    same_as_command(view(client, "interpolate", a=a, b=c, steps=5, scales="coarse"), "interpolation.png")
    same_as_command(view(client, "sample", n=5, seed=3), "samples/grid.png")
    same_as_command(view(client, "sample", n=3, seed=1, fix=b, scales="mid"), "samples/grid.png")


def test_an_added_direction_file_edits_as_edit_direction_does(client, work):
    a = add(client, "a.png").json()["photo"]["id"]
    vector = torch.randn(16, generator=torch.Generator().manual_seed(2))
    ops.save_vector(work / "smile.safetensors", vector, {})
    added = client.post(
        "/api/directions?name=smile.safetensors",
        content=(work / "smile.safetensors").read_bytes(),
        headers=HEADERS,
    )
    assert added.status_code == 200 and added.json()["dim"] == 16
    response = view(client, "edit", photo=a, direction=added.json()["id"], strength=-0.7)
    assert "--direction smile.safetensors" in response.headers["x-automod-command"].replace("%20", " ")
    same_as_command(response, "edit.png")
    wrong = client.post("/api/directions?name=d.pt", content=b"not a tensor file", headers=HEADERS)
    assert wrong.status_code == 400 and "d.pt" in wrong.json()["error"]


def test_a_photo_is_encoded_once_as_the_cli_encodes_it(client, work):
    body = add(client, "a.png").json()["photo"]
    model = client.studio.net
    x = ops.load_images([work / "a.png"], 32)
    recon = ops.reconstruct(model, x)
    image = np.asarray(
        Image.open(
            io.BytesIO(client.get(f"/api/photos/{body['id']}/reconstruction.png", headers=HEADERS).content)
        )
    )
    assert (image == to_uint8(recon[0])).all()
    expected_mse = float(((to_uint8(x[0]).astype(float) - to_uint8(recon[0])) / 255).__pow__(2).mean())
    assert body["errors"]["mse"] == pytest.approx(expected_mse)
    assert body["name"] == "a.png" and "automod reconstruct a.png" in body["command"]


def test_the_slider_frames_are_the_strips_images(client, work):
    a, b = (add(client, f"{name}.png").json()["photo"]["id"] for name in "ab")
    model = client.studio.net
    z = ops.encode(model, ops.load_images([work / "a.png", work / "b.png"], 32))
    strip = ops.interpolate(model, z[0], z[1], 6)
    for k in (0, 3, 5):
        frame = view(client, "frame", a=a, b=b, steps=6, frame=k)
        assert (np.asarray(Image.open(io.BytesIO(frame.content))) == to_uint8(strip[k])).all()
    assert view(client, "frame", a=a, b=b, steps=6, frame=6).status_code == 400


def error_of(response, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    assert "\n" not in message and "Traceback" not in message and all(w in message for w in words), message
    return message


def test_requests_without_the_token_or_for_another_host_are_refused(client, work):
    error_of(client.get("/"), 403, "token")
    error_of(client.get("/api/info", headers={"X-Automod-Token": "wrong"}), 403, "wrong token")
    error_of(
        client.get("/?token=" + TOKEN, headers={"host": "attacker.example:8765"}), 403, "attacker.example"
    )
    error_of(client.post("/api/photos?name=a.png", content=Path("a.png").read_bytes()), 403, "token")
    assert client.studio.photos == {}  # nothing was added without the token
    page = client.get("/?token=" + TOKEN, headers={"host": "localhost:8765"})
    assert page.status_code == 200 and TOKEN in page.text
    assert client.get(f"/static/app.js?token={TOKEN}").status_code == 200
    assert client.get("/api/info", headers={**HEADERS, "host": "[::1]:8765"}).status_code == 200


def test_bad_uploads_get_one_line_and_the_server_keeps_serving(client, work):
    error_of(add(client, "x.png", b""), 400, "empty")
    error_of(add(client, "notes.png", b"this is text, not a picture"), 400, "not an image")
    error_of(add(client, "cut.png", Path("a.png").read_bytes()[:60]), 400, "cannot be used")
    error_of(add(client, "huge.bin", b"\0" * (studio_module.MAX_UPLOAD_BYTES + 1)), 413, "limit")
    bomb = io.BytesIO()
    Image.new("1", (9000, 6000)).save(bomb, format="PNG")  # 54 megapixels in a few kB
    error_of(add(client, "bomb.png", bomb.getvalue()), 400, "megapixels")
    assert client.studio.photos == {} and list(client.studio.folder.iterdir()) == []
    sneaky = add(client, "../../evil/a.png", Path("a.png").read_bytes())
    assert sneaky.status_code == 200 and sneaky.json()["photo"]["name"] == "a.png"
    assert [p.parent for p in client.studio.folder.iterdir()] == [client.studio.folder]
    assert client.get("/api/info", headers=HEADERS).status_code == 200


def test_unknown_ids_and_bad_values_are_4xx_with_a_message(client, work):
    a = add(client, "a.png").json()["photo"]["id"]
    error_of(view(client, "mix", a=a, b="0123456789ab"), 404, "no photo")
    error_of(client.delete("/api/photos/nope", headers=HEADERS), 404, "no photo")
    error_of(client.get("/api/photos/nope/input.png", headers=HEADERS), 404, "no photo")
    error_of(client.get(f"/api/photos/{a}/secret.png", headers=HEADERS), 404, "input.png")
    error_of(view(client, "mix", a=a, b=a, scales="sideways"), 400, "sideways")
    error_of(view(client, "mix", a=a, b=a, scales="3:9"), 400)
    error_of(view(client, "mix", b=a), 400, "pick a photo")
    error_of(view(client, "edit", photo=a, direction={"pos": [a], "neg": []}), 400, "without")
    error_of(view(client, "edit", photo=a, direction="nope"), 404, "direction")
    error_of(
        view(client, "edit", photo=a, direction={"pos": [a], "neg": [a]}, strength="lots"), 400, "strength"
    )
    error_of(view(client, "sample", n=10_000), 400, "samples")
    error_of(view(client, "interpolate", a=a, b=a, steps=1), 400, "steps")
    error_of(view(client, "teleport"), 404, "teleport")
    error_of(client.post("/api/view/mix", content=b"{not json", headers=HEADERS), 400, "JSON")
    error_of(client.get(f"/static/..%2F..%2Fstudio.py?token={TOKEN}"), 404)
    assert client.delete(f"/api/photos/{a}", headers=HEADERS).status_code == 200
    assert view(client, "sample", n=2, seed=0).status_code == 200  # still serving


def test_an_overtaken_request_is_dropped(client, work):
    a = add(client, "a.png").json()["photo"]["id"]
    assert view(client, "mix", a=a, b=a, request=5, page="p1").status_code == 200
    error_of(view(client, "mix", a=a, b=a, request=4, page="p1"), 409, "newer")
    assert view(client, "sample", n=1, request=1, page="p1").status_code == 200  # numbers are per view
    assert view(client, "mix", a=a, b=a, request=1, page="p2").status_code == 200  # and per page (a reload)


def test_a_classic_decoder_greys_out_mixing_with_the_clis_reason(work):
    studio = open_studio(work, "classic.safetensors")
    with TestClient(create_app(studio, TOKEN), base_url="http://127.0.0.1:8765") as client:
        info = client.get("/api/info", headers=HEADERS).json()["model"]
        assert "classic decoder" in info["cannot"]["mix"]
        a = add(client, "a.png").json()["photo"]["id"]
        error_of(view(client, "mix", a=a, b=a), 400, "classic decoder")
        assert view(client, "reconstruct", photo=a).status_code == 200
    assert not studio.folder.exists()  # the photos are deleted when the server stops


def test_the_model_and_its_training_data_are_named(client, work):
    info = client.get("/api/info", headers=HEADERS).json()
    assert info["model"]["kind"] == "automod" and info["model"]["resolution"] == 32
    assert info["model"]["block_resolutions"] == [4, 8, 16, 32]
    assert "not recorded" in info["model"]["trained_on"] and info["warning"] is None


def test_the_guard_reads_host_headers():
    assert guard.host_name("localhost:8765") == "localhost" and guard.host_name("[::1]:80") == "::1"
    assert (
        guard.is_loopback("127.0.0.1") and guard.is_loopback("localhost") and not guard.is_loopback("0.0.0.0")
    )
    assert (
        guard.Guard("t", "0.0.0.0").refusal("my-laptop.lan:8765", "t") is None
    )  # every interface: token only
    assert guard.Guard("t", "192.168.1.5").refusal("192.168.1.5:80", "t") is None
    assert guard.Guard("t").refusal("192.168.1.5:80", "t")[0] == 403


def test_serve_refuses_a_busy_port_and_names_the_missing_extra(work, capsys, monkeypatch):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        assert main(["serve", "--model", "m.safetensors", "--port", str(busy.getsockname()[1])]) == 2
        assert "--port" in capsys.readouterr().err
    finally:
        busy.close()
    monkeypatch.setitem(__import__("sys").modules, "uvicorn", None)
    assert main(["serve", "--model", "m.safetensors", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "automod[serve]" in err


def test_a_photo_with_faces_of_similar_size_lets_the_user_pick_one(work):
    pytest.importorskip("dlib")
    astronaut = Image.fromarray(pytest.importorskip("skimage.data").astronaut())
    collage = Image.new("RGB", (512 + 410, 512), (90, 90, 90))
    collage.paste(astronaut, (0, 0))
    collage.paste(astronaut.resize((410, 410), Image.LANCZOS), (512, 50))
    collage.save(work / "two.png")
    studio = Studio(ops.open_model(work / "m.safetensors"), "m.safetensors", align=True, folder=work)
    with TestClient(create_app(studio, TOKEN), base_url="http://127.0.0.1:8765") as client:
        photo = add(client, "two.png").json()["photo"]
        assert (photo["face"], photo["faces"], photo["similar"]) == (0, 2, 2)
        b = add(client, "a.png")
        error_of(
            b, 400, "a.png", "no face"
        )  # --align as given: a photo without a face is refused, as in the CLI
        largest = view(client, "mix", a=photo["id"], b=photo["id"], scales="coarse").content
        chosen = client.post(f"/api/photos/{photo['id']}/face", json={"face": 1}, headers=HEADERS)
        assert chosen.status_code == 200 and chosen.json()["photo"]["face"] == 1
        response = view(client, "mix", a=photo["id"], b=photo["id"], scales="coarse")
        assert "--face%20two.png%3D1" in response.headers["x-automod-command"] and response.content != largest
        same_as_command(response, "mix.png")
        error_of(
            client.post(f"/api/photos/{photo['id']}/face", json={"face": 2}, headers=HEADERS), 400, "pick 0"
        )


def test_a_lia_gan_without_its_encoder_samples_and_refuses_photos_with_the_clis_reason(work):
    config = LiaConfig(
        ModelConfig(max_resolution=16, latent_dim=8, channels=(8, 8, 8), latent="gaussian"), coupling_hidden=8
    )
    save_model(work / "gan.safetensors", LiaModel(config, has_encoder=False).eval())
    studio = open_studio(work, "gan.safetensors")
    with TestClient(create_app(studio, TOKEN), base_url="http://127.0.0.1:8765") as client:
        info = client.get("/api/info", headers=HEADERS).json()["model"]
        assert info["kind"] == "lia" and "stage 1" in info["cannot"]["encode"]
        error_of(add(client, "a.png"), 400, "stage 1")
        same_as_command(view(client, "sample", n=4, seed=2), "samples/grid.png")


def test_photos_unlike_the_training_data_get_the_commands_warning(work):
    save_model(
        work / "builtin.safetensors", tiny_model(), {"train_config": {"preset": "builtin", "data": None}}
    )
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    studio = open_studio(work, "builtin.safetensors")
    with TestClient(create_app(studio, TOKEN), base_url="http://127.0.0.1:8765") as client:
        assert (
            "built-in shapes dataset"
            in client.get("/api/info", headers=HEADERS).json()["model"]["trained_on"]
        )
        assert add(client, "a.png").json()["warning"] is None  # a built-in picture
        added = add(client, "noise.png", png_of(noise)).json()
        assert (
            added["photo"]["unlike"]
            and "1 of 2 inputs do not look like the built-in shapes" in added["warning"]
        )


def test_two_photos_of_one_name_are_refused_since_commands_name_files(client, work):
    assert add(client, "a.png").status_code == 200
    error_of(add(client, "a.png", Path("b.png").read_bytes()), 400, "a.png", "rename")


def test_serve_has_help_with_an_example_and_prints_a_loopback_address(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example: automod serve --model runs/demo" in out and "token" in out
    assert address("127.0.0.1", 8765, "t") == "http://127.0.0.1:8765/?token=t"
    assert address("::1", 80, "t") == "http://[::1]:80/?token=t"
    assert model_argument(Path("ffhq256"), Path("/cache/ffhq256.safetensors")) == "ffhq256"
    assert (
        model_argument(Path("."), Path("checkpoints/ckpt-1.safetensors")) == "checkpoints/ckpt-1.safetensors"
    )
    assert model_argument(None, Path("runs/a/checkpoints/ckpt-9.safetensors")).endswith("ckpt-9.safetensors")


def test_values_that_are_not_finite_numbers_are_refused(client, work):
    a = add(client, "a.png").json()["photo"]["id"]
    for bad in (b'{"a": "%s", "b": "%s", "steps": Infinity}', b'{"a": "%s", "b": "%s", "steps": NaN}'):
        error_of(
            client.post("/api/view/interpolate", content=bad % (a.encode(), a.encode()), headers=HEADERS),
            400,
            "steps",
        )


def test_a_face_model_without_the_detector_says_photos_are_used_unaligned(work, monkeypatch):
    monkeypatch.setattr(align, "detector_available", lambda: False)
    save_model(
        work / "faces.safetensors", tiny_model(), {"train_config": {"preset": "ffhq", "data": "ffhq.h5"}}
    )
    info = open_studio(work, "faces.safetensors").info()
    assert not info.aligns_faces and "automod[align]" in info.note and "FFHQ" in info.trained_on
