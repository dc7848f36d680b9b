"""What `automod serve` keeps between requests: one model, and the photos added to the page.

Each photo is checked (size, pixel count, decodable as an image), written unchanged into the studio's temporary
folder (deleted when the server stops: no request names a path on disk) and encoded once, with the same loader and
the same batch of one as `automod mix A B` encodes its A, so the codes and everything decoded from them are the
command's own. Model work runs one request at a time (`Studio.lock`).
"""

from __future__ import annotations

import io
import secrets
import shlex
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from PIL import Image, UnidentifiedImageError

from automod_cli import ops
from automod_cli.ops import provenance as input_check
from automod_cli.provenance import Provenance
from automod_cli.errors import AutomodError
from automod_cli.ops.inputs import IMAGE_SUFFIXES, Align, AlignIfFace, Faces
from automod_cli.ops.report import image_errors
from data_prep.images import SkipImage, load_rgb

MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # a large phone photo is 5-12 MB
MAX_PIXELS = 50_000_000  # 50 megapixels: larger pictures are refused before they are decoded
MAX_PHOTOS = 200  # photos held at once (each keeps its file and three small tensors)
NAME_LENGTH = 120  # characters of a file name kept for display and commands
VIEWS_KEPT = 1000  # (page, view) pairs whose newest request number is remembered
BATCHES_KEPT = 32  # batches of codes kept for views that encode several photos together (`Studio.codes`)


class NotFound(AutomodError):
    """A request named a photo the studio does not hold (HTTP 404)."""


@dataclass
class Photo:
    """One added photo: its name as given, its file in the studio's folder, and what the model made of it."""

    id: str
    name: str
    path: Path
    image: torch.Tensor  # (3, R, R) in [-1, 1], as the model sees it (aligned, cropped, resized)
    z: torch.Tensor  # (D,) its code
    reconstruction: torch.Tensor  # (3, R, R)
    errors: dict[str, Optional[float]]  # mse, ssim (None below SSIM's window)
    unlike: bool  # looks unlike the model's training data
    unaligned: bool = False  # a face model's photo without a face: used as it is (centre crop)
    face: int = 0  # the face aligned (0 = the largest; `--face NAME=N`)
    faces: int = 0  # faces found, when aligning found more than one
    similar: int = 0  # of those, how many are about as large as the largest: the page offers to pick one


@dataclass
class ModelInfo:
    """What the page says about the model, as `automod info` and the image commands say it."""

    checkpoint: str
    argument: str  # what commands pass as --model
    kind: str
    resolution: int
    latent_dim: int
    blocks: int
    block_resolutions: list[int]
    trained_on: str
    aligns_faces: bool
    cannot: dict[str, str] = field(default_factory=dict)  # operation -> the CLI's one-line reason
    note: Optional[str] = None  # a face model whose photos cannot be aligned here


def clean_name(name: str) -> str:
    """The base name of an uploaded file, without folders or control characters, at most NAME_LENGTH characters."""
    base = Path(str(name).replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    if len(base) > NAME_LENGTH:
        stem, suffix = Path(base).stem, Path(base).suffix[:10]
        base = stem[: NAME_LENGTH - len(suffix)] + suffix
    return base or "photo.png"


def check_upload(data: bytes) -> None:
    """Refuse what is not a usable picture before anything is decoded in full: too large, too many pixels, not an
    image (read from its bytes, never from its name)."""
    if not data:
        raise AutomodError("the upload is empty: choose an image file (PNG, JPEG, WebP, ...).")
    if len(data) > MAX_UPLOAD_BYTES:
        raise AutomodError(
            f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width, height = Image.open(io.BytesIO(data)).size  # the header only
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise AutomodError(
            "the file is not an image automod can read (PNG, JPEG, WebP, BMP, TIFF, GIF)."
        ) from None
    if width * height > MAX_PIXELS:
        raise AutomodError(
            f"the image is {width}×{height} ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{MAX_PIXELS // 1_000_000} megapixels: make it smaller first."
        )
    try:
        load_rgb(data)
    except SkipImage as exc:
        raise AutomodError(f"the file cannot be used as an image ({exc}).") from None


def default_alignment(provenance: Provenance, align: Optional[bool]) -> Union[bool, Align]:
    """As the image commands decide it: --align/--no-align when given; else faces are aligned (and a photo without
    one used as it is) for a model trained on aligned faces, when faces can be detected here."""
    if align is not None:
        return Align() if align else False
    if not provenance.aligned_faces:
        return False
    from data_prep.align import detector_available  # noqa: PLC0415 -- scipy's 0.2 s only for faces

    return AlignIfFace() if detector_available() else False


class Studio:
    """The model and the photos of one `automod serve`."""

    def __init__(
        self,
        opened: ops.OpenedModel,
        argument: str,
        align: Optional[bool] = None,
        folder: Optional[Path] = None,
    ):
        self.net = opened.model
        self.checkpoint = opened.checkpoint
        self.argument = argument
        self.align_option = align
        self.provenance = opened.provenance
        self.kind = opened.kind
        self.align = default_alignment(self.provenance, align)
        self.folder = Path(tempfile.mkdtemp(prefix="automod-serve-", dir=folder))
        self.photos: dict[str, Photo] = {}
        self.lock = threading.Lock()
        self.latest: OrderedDict[str, int] = OrderedDict()  # page:view -> the newest request number seen
        self.batches: OrderedDict[tuple, ops.Latents] = OrderedDict()  # `codes`, newest last

    def close(self) -> None:
        """Delete the uploaded photos."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def info(self) -> ModelInfo:
        net = self.net
        cannot = {}
        for operation, what in (("mix", "style mixing"), ("scales", "choosing scales")):
            reason = refusal(lambda: ops.require_mixing(net, what))
            if reason:
                cannot[operation] = reason
        if not net.has_encoder:  # a LIA GAN after stage 1: encode() says why it cannot
            cannot["encode"] = refusal(lambda: net.encode(torch.zeros(1, 3, net.resolution, net.resolution)))
        note = None
        if self.provenance.aligned_faces and self.align_option is None and not self.align:
            from data_prep.align import ALIGN_EXTRA  # noqa: PLC0415 -- scipy's 0.2 s only for faces

            note = (
                f"this model was trained on aligned faces, but photos are used unaligned: face alignment needs "
                f"dlib, {ALIGN_EXTRA}."
            )
        return ModelInfo(
            str(self.checkpoint),
            self.argument,
            self.kind,
            net.resolution,
            net.config.latent_dim,
            net.num_active_blocks,
            [4 * 2**level for level in net.block_levels[: net.num_active_blocks]],
            self.provenance.describe(),
            bool(self.align),
            cannot,
            note,
        )

    def codes(self, photos: list[Photo]) -> ops.Latents:
        """The codes of `photos` encoded in one batch, as a command given these files encodes them (a batch can round
        differently from codes encoded one by one); kept for the next request with the same photos and faces."""
        key = tuple((photo.id, photo.face) for photo in photos)
        if key not in self.batches:
            sources = ops.Sources([photo.path for photo in photos])
            self.batches[key] = ops.source_latents(self.net, sources, self.align_for(photos), exact=True)
            while len(self.batches) > BATCHES_KEPT:
                self.batches.popitem(last=False)
        self.batches.move_to_end(key)
        latents = self.batches[key]
        latents.names = [photo.name for photo in photos]
        return latents

    def photo(self, photo_id: str) -> Photo:
        found = self.photos.get(str(photo_id))
        if found is None:
            raise NotFound(
                f"no photo '{str(photo_id)[:40]}' on this page (it was removed, or the server restarted): "
                "add it again."
            )
        return found

    def remove(self, photo_id: str) -> None:
        photo = self.photo(photo_id)
        with self.lock:  # not while a view reads its file
            del self.photos[photo.id]
            photo.path.unlink(missing_ok=True)

    def add(self, name: str, data: bytes) -> Photo:
        """Check, keep and encode an uploaded file; AutomodError (one line) when it cannot be used."""
        if len(self.photos) >= MAX_PHOTOS:
            raise AutomodError(f"the page holds {MAX_PHOTOS} photos already: remove some first.")
        check_upload(data)
        cannot = self.info().cannot
        if "encode" in cannot:
            raise AutomodError(cannot["encode"])
        name = clean_name(name)
        if any(photo.name == name for photo in self.photos.values()):
            raise AutomodError(
                f"a photo named '{name}' is on the page already: commands name photos by file name, so "
                "rename the file, or remove the other one first."
            )
        photo_id = secrets.token_hex(6)
        suffix = Path(name).suffix.lower()
        path = self.folder / f"{photo_id}{suffix if suffix in IMAGE_SUFFIXES else '.img'}"
        path.write_bytes(data)
        try:
            with self.lock:
                photo = self._encode(photo_id, name, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.photos[photo_id] = photo
        return photo

    def choose_face(self, photo_id: str, face: int) -> Photo:
        """Align another of the photo's faces (0 = the largest) and encode it again."""
        photo = self.photo(photo_id)
        if not self.align:
            raise AutomodError("faces are not aligned for this model, so there is no face to pick.")
        if not isinstance(face, int) or isinstance(face, bool) or not 0 <= face < max(photo.faces, 1):
            raise AutomodError(
                f"'{photo.name}' has {photo.faces or 1} face(s) found; pick 0 to {max(photo.faces, 1) - 1}."
            )
        with self.lock:
            chosen = self._encode(photo.id, photo.name, photo.path, face)
        self.photos[photo.id] = chosen
        return chosen

    def align_for(self, photos: list[Photo]) -> Union[bool, Align]:
        """The `align` value of a command given these photos: the studio's, with each photo's chosen face."""
        return self.aligning({photo.path: photo.face for photo in photos})

    def aligning(self, faces: dict[Path, int]) -> Union[bool, Align]:
        """The studio's `align` value (a fresh one: it collects its own notes) with the face to align per file."""
        if not self.align:
            return False
        chosen = Faces(by_file={str(path): face for path, face in faces.items() if face})
        return AlignIfFace(chosen) if isinstance(self.align, AlignIfFace) else Align(chosen)

    def _encode(self, photo_id: str, name: str, path: Path, face: int = 0) -> Photo:
        """What `automod mix A B` does with its A: load the file (aligned as decided), encode it alone, decode."""
        align = self.aligning({path: face})
        try:
            x, _ = ops.load_inputs(ops.Inputs([path]), self.net.resolution, align, exact=True)
        except AutomodError as exc:
            raise AutomodError(str(exc).replace(f"'{path}'", f"'{name}'")) from None
        found = similar = 0
        if align and align.notes:  # several faces: how many could be the one meant
            from data_prep.align import detect_faces, similar_faces  # noqa: PLC0415 -- scipy's 0.2 s only for faces

            faces = detect_faces(load_rgb(path))
            found, similar = len(faces), similar_faces(faces)
        z = ops.encode(self.net, x)
        reconstruction = ops.decode(self.net, z)
        errors = image_errors(x, reconstruction)
        odd, _ = input_check.unlike_count(self.provenance, x)
        values = {
            key: None if value is None else float(value[0]) for key, value in errors.items() if key != "lpips"
        }
        return Photo(
            photo_id,
            name,
            path,
            x[0].cpu(),
            z[0],
            reconstruction[0].cpu(),
            values,
            bool(odd),
            bool(align) and bool(align.unaligned),
            face,
            found,
            similar,
        )

    def unlike_message(self) -> Optional[str]:
        """The image commands' warning, counted over the photos held."""
        photos = list(self.photos.values())
        if not photos or not self.provenance.known:
            return None
        return input_check.mismatch_message(self.provenance, sum(p.unlike for p in photos), len(photos))

    def fresh(self, view: str, number: Optional[int]) -> bool:
        """Record request `number` of `view`; False when a newer one of the same view has been seen (drop it)."""
        if number is None:
            return True
        newest = self.latest.get(view, -1)
        if number < newest:
            return False
        self.latest[view] = number
        self.latest.move_to_end(view)
        while len(self.latest) > VIEWS_KEPT:  # pages closed long ago
            self.latest.popitem(last=False)
        return True

    def is_current(self, view: str, number: Optional[int]) -> bool:
        """Whether request `number` is still the newest of its view (checked again once the model is free)."""
        return number is None or self.latest.get(view, -1) <= number

    def options(self, photos: list[Photo] = ()) -> list[str]:
        """The options a reproducing command carries: the model, --align/--no-align when serve got one, and the
        face chosen in each of `photos` that is not the largest (`--face NAME=N`)."""
        options = ["--model", self.argument]
        if self.align_option is not None:
            options.append("--align" if self.align_option else "--no-align")
        for name, face in sorted({(photo.name, photo.face) for photo in photos if photo.face}):
            options += ["--face", f"{name}={face}"]
        return options


def refusal(operation) -> Optional[str]:
    """The one-line reason `operation` refuses to run on this model (the CLI's own words), or None."""
    try:
        operation()
    except AutomodError as exc:
        return str(exc)
    return None


def command_line(words: list[str]) -> str:
    """A shell line: `automod` and the words, each quoted where the shell needs it."""
    return " ".join(["automod", *(shlex.quote(str(word)) for word in words)])
