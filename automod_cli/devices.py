"""`--device NAME` → a torch.device, or one line saying which names are valid here.

Accepted: auto (the first CUDA GPU when one is visible, else the CPU), cpu, cuda (= the current CUDA device),
cuda:N with N below the number of visible GPUs, and mps on Macs where torch can use it. Anything else — another
device type (tpu, xla, meta, ...), a malformed index (cuda:x, cuda:-1, cuda:) — is refused before any work, with
the list of valid names, instead of torch's RuntimeError.
"""

from __future__ import annotations

import re

import torch

from automod_cli.errors import AutomodError

NO_CUDA = "--device {name} was asked for but no CUDA GPU is visible: use --device cpu."  # {name}: as asked
_NAME = re.compile(r"(?P<type>[a-z]+)(?::(?P<index>\d+))?")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def valid_names() -> str:
    """The device names accepted on this machine, for messages: 'auto, cpu, cuda, cuda:0 to cuda:1'."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = [
        "auto",
        "cpu",
        "cuda",
        ("cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}") if count else "cuda:N",
    ]
    names += ["mps"] if _mps_available() else []
    return ", ".join(names) + ("" if count else " (no CUDA GPU is visible here, so auto means cpu)")


def pick_device(name: str) -> torch.device:
    """The torch device for `--device NAME`; AutomodError (one line) for a name this machine cannot use."""
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = _NAME.fullmatch(text)
    kind, index = (match["type"], match["index"]) if match else (None, None)
    if kind not in ("cpu", "cuda", "mps") or (kind != "cuda" and index is not None):
        raise AutomodError(f"--device '{name}' is not a device automod can use: valid are {valid_names()}.")
    if kind == "mps":
        if not _mps_available():
            raise AutomodError(
                f"--device mps was asked for but torch cannot use MPS here: valid are {valid_names()}."
            )
        return torch.device("mps")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise AutomodError(NO_CUDA.format(name=text))
    if index is None:
        return torch.device("cuda")
    count = torch.cuda.device_count()
    if int(index) >= count:
        raise AutomodError(
            f"--device {text}: only {count} CUDA GPU{'s' if count != 1 else ''} "
            f"{'are' if count != 1 else 'is'} visible; valid are {valid_names()}."
        )
    return torch.device("cuda", int(index))
