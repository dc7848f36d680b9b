"""Finding the pretrained feature networks' weight files, offline first.

Order: an explicit path (`--weights`) → an environment variable → the libraries' standard cache
(`$TORCH_HOME/hub/checkpoints/<file>`, where pytorch-fid and torchvision put their downloads) → a download into
that cache, tried only after a short reachability probe so an offline machine fails in seconds instead of
hanging. When nothing works the user gets one line naming the file and where to put it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import torch

from automod_cli.errors import AutomodError

PROBE_SECONDS = 3.0  # reachability probe of the download host, DNS included


def _fid_inception_url() -> str:
    from pytorch_fid.inception import FID_WEIGHTS_URL  # noqa: PLC0415 -- torchvision's second of import only when the URL is asked for

    return FID_WEIGHTS_URL


def _alexnet_url() -> str:
    from torchvision.models import AlexNet_Weights  # noqa: PLC0415 -- torchvision's second of import only when the URL is asked for

    return AlexNet_Weights.IMAGENET1K_V1.url


def _vgg16_url() -> str:
    from torchvision.models import VGG16_Weights  # noqa: PLC0415 -- torchvision's second of import only when the URL is asked for

    return VGG16_Weights.IMAGENET1K_V1.url


@dataclass(frozen=True)
class WeightFile:
    """One pretrained weight file: its name in the torch hub cache, the variable that may point at it, and
    `url`, which asks the owning library where it downloads the file from (no address is kept here)."""

    name: str
    env_var: str
    purpose: str
    url: Callable[[], str]


# pytorch-fid's port of the TensorFlow FID Inception (the network behind published FIDs).
INCEPTION = WeightFile(
    "pt_inception-2015-12-05-6726825d.pth",
    "AUTOMOD_INCEPTION_WEIGHTS",
    "FID's Inception-v3",
    _fid_inception_url,
)
# torchvision's ImageNet backbones, which the lpips package puts under its calibrated linear layers.
ALEXNET = WeightFile("alexnet-owt-7be5be79.pth", "AUTOMOD_ALEXNET_WEIGHTS", "LPIPS (AlexNet)", _alexnet_url)
VGG16 = WeightFile("vgg16-397923af.pth", "AUTOMOD_VGG16_WEIGHTS", "LPIPS (VGG16)", _vgg16_url)


def cache_dir() -> Path:
    """torch's hub checkpoint folder ($TORCH_HOME/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_message(weight: WeightFile) -> str:
    """One line: which file is needed and the three places it may be put."""
    return (
        f"{weight.purpose} needs the weight file {weight.name}, which is not in {cache_dir()} and cannot be downloaded "
        f"here: copy it there, or set {weight.env_var}=/path/to/{weight.name}, or pass --weights PATH "
        "(docs/evaluation.md says where to get it)."
    )


def reachable(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether the URL's host accepts a TCP connection within `timeout` seconds (name lookup included)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((parsed.hostname, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores socket timeouts: bound it here
    worker.start()
    worker.join(timeout)
    return bool(outcome and outcome[0])


def _given(path: Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise AutomodError(f"{what} '{path}' is not a file: give the path of the downloaded weight file.")
    return path


def resolve_weights(weight: WeightFile, explicit: Path | None = None) -> Path:
    """The local path of `weight`, downloading it into the cache when that is possible; else AutomodError."""
    if explicit is not None:
        return _given(explicit, "--weights")
    if os.environ.get(weight.env_var):
        return _given(Path(os.environ[weight.env_var]), f"${weight.env_var}")
    cached = cache_dir() / weight.name
    if cached.is_file():
        return cached
    url = weight.url()
    if not reachable(url):
        raise AutomodError(missing_message(weight))
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cached), progress=True)
    except (OSError, ValueError, RuntimeError):
        raise AutomodError(missing_message(weight)) from None
    return cached


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(path: Path, weight: WeightFile) -> dict[str, torch.Tensor]:
    """The tensors of a weight file, read without unpickling arbitrary objects."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutomodError(f"'{path}' is not a readable {weight.name} ({first}).") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AutomodError(f"'{path}' does not hold a state dict of tensors; it is not {weight.name}.")
    return state


def pick_explicit(paths: list[Path], weight: WeightFile, needed: list[WeightFile]) -> Path | None:
    """Which `--weights` path (if any) is `weight`: the one with its file name, or the only path given when the
    command needs a single network. Paths that match no needed file are refused with one line."""
    names = {w.name for w in needed}
    if len(needed) == 1 and len(paths) == 1:
        return Path(paths[0])
    if len(paths) > len(needed):
        raise AutomodError(
            f"--weights was given {len(paths)} times but this command needs only: {', '.join(sorted(names))}."
        )
    for path in paths:
        if Path(path).name not in names:
            raise AutomodError(
                f"--weights '{path}' is none of {', '.join(sorted(names))}; keep the standard file names."
            )
    return next((Path(p) for p in paths if Path(p).name == weight.name), None)
