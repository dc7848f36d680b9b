"""Regions that must compute in full precision even inside a bf16 autocast region."""

from __future__ import annotations

import contextlib

import torch


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """A region where autocast is off, on devices that have autocast (the meta device, on which the tests check
    the training loop for host-device synchronisations, has none)."""
    return (
        torch.autocast(device_type, enabled=False)
        if torch.amp.is_autocast_available(device_type)
        else contextlib.nullcontext()
    )
