"""How the training networks run on the device: numeric precision, memory layout and compilation.

`--precision bf16` runs the encoder's and decoder's forward passes under `torch.autocast` in bfloat16: their
convolutions and matrix products compute in bf16 with fp32 accumulation. The weights, the gradients, Adam's
moments and the decoder's EMA stay fp32 (autocast casts a weight copy per use; nothing is stored in bf16), and
every network output is cast back to fp32, so the losses fed from them (the empirical KL, d_ρ with its
log-partition, d_cos) compute in fp32. bf16 keeps fp32's exponent range, so no loss scaling is needed. `--precision
auto` (the `builtin` preset's) is bf16 on a device that computes it natively and fp32 elsewhere.

On CUDA the networks' 4-D weights are kept channels-last (NHWC), the layout tensor cores read directly; the
convolutions then hand channels-last activations on. `--compile` compiles the decoder's forward with torch.compile
(off by default: measured on a 2-core CPU it did not help, see benchmarks/RESULTS.md, and it pays a long first step).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from automod_cli.config import check_precision

# CPU features with which oneDNN computes bf16 convolutions and matrix products natively (AVX-512 BF16, AMX); without
# them bf16 is emulated and slower than fp32
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no /proc/cpuinfo (macOS, Windows)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16(device_type: str) -> bool:
    """Whether the device computes bf16 natively: a CUDA GPU that supports it, or a CPU with AVX-512 BF16 or AMX."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return bool(CPU_BF16_FLAGS & cpu_flags())
    return False


def resolve_precision(name: str, device_type: str) -> str:
    """A run's precision on a device: "auto" becomes bf16 where the device computes it natively, else fp32 (the
    `builtin` preset's: on this project's CPU bf16 trains 1.3× the images per second, benchmarks/RESULTS.md)."""
    check_precision(name)
    if name != "auto":
        return name
    return "bf16" if native_bf16(device_type) else "fp32"


def _outputs_to_fp32(module: nn.Module, inputs: tuple, output):
    """Forward hook: a bf16 network output becomes fp32 before any loss sees it (fp32 outputs pass unchanged)."""
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output.float()
    return output


@dataclass(frozen=True)
class Precision:
    """The numerics of one run on one device: `autocast()` wraps the training steps, `prepare` the networks."""

    device_type: str  # "cpu" or "cuda"
    precision: str = "fp32"  # one of PRECISIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", resolve_precision(self.precision, self.device_type))

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

    @property
    def channels_last(self) -> bool:
        """Channels-last pays on CUDA (tensor cores); on the 2-core CPU it was slower (benchmarks/RESULTS.md)."""
        return self.device_type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context the encoder and decoder steps run in: bf16 autocast, or nothing for fp32."""
        if self.bf16:
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(
        self, encoder: nn.Module, decoder: nn.Module, ema: nn.Module | None = None, compile: bool = False
    ) -> None:
        """Set up the trained networks: the layout (shared by the decoder's `ema` copy, so its in-place update
        runs on like tensors), fp32 outputs under bf16, and the compiled decoder when asked. Call after the EMA copy
        is made (a copy of a compiled module would run the original's forward). The encoder is not compiled: its
        spectral norm updates the power-iteration vectors in place on every call, which compiled autograd refuses
        when the encoder runs twice before a backward pass, as in the encoder step."""
        self.prepare_modules(encoder, decoder, copies=() if ema is None else (ema,))
        if compile:
            decoder.compile()

    def prepare_modules(self, *trained: nn.Module, copies: tuple[nn.Module, ...] = ()) -> None:
        """Layout and bf16 outputs for networks run under `autocast()` (`trained`); `copies` (EMA networks, run
        outside it) only take the layout."""
        if self.channels_last:
            for module in (*trained, *copies):
                module.to(memory_format=torch.channels_last)
        if self.bf16:
            for module in trained:
                module.register_forward_hook(_outputs_to_fp32)
